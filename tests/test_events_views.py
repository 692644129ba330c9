"""Migration 0019 (issue 14, the important-events view at size): the view returns exactly
what 0012's definition returns, on both backends, over importances where 0012's
``real::numeric::double precision`` rounds (ties at the 7th digit, float32 neighbours of
the tenths, random reals of [0.8, 1]) and over events inside and outside its window; and
:class:`Analytics` gives its rows with keys decoded."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import numpy as np
from test_events_speed import _edges, _released

from langchain_agentmem import Analytics, Engine, SessionLog
from langchain_agentmem.analytics import _ORDER

VIEW = "important_events_recent"


def _importances() -> list[float]:
    """float32 values of [0.79, 1]: the tenths' edges, the exact ties m/128 (0.8046875
    rounds half to even at 6 decimals) and their neighbours, and random reals."""
    out = [v for v in _edges() if v >= 0.79]
    for m in range(101, 129):
        v = np.float32(m / 128)
        for step in (-2, -1, 0, 1, 2):
            w = v
            for _ in range(abs(step)):
                w = np.nextafter(w, np.float32(2 if step > 0 else 0))
            if w <= 1:
                out.append(float(w))
    rng = random.Random(5)
    out += [float(np.float32(rng.uniform(0.8, 1.0))) for _ in range(200)]
    return out


def _workload(engine: Engine) -> list[str]:
    values = _importances()
    sessions = ["plain", "back\\slash", "nul\x00id"]
    for s, sid in enumerate(sessions):
        log = SessionLog(engine, sid, user_id="acme" if s else "other", agent_name=f"a{s}")
        log.log_many(
            [
                {
                    "event_type": "decision",
                    "content": f"c{i} «{s}»",
                    "importance": v,
                    "tags": ["x", "y"],
                }
                for i, v in enumerate(values)
            ]
            + [{"event_type": "observation", "content": "unscored"}]
        )
    old = datetime.now(timezone.utc) - timedelta(days=8)
    with engine.transaction(None) as tx:
        tx.execute(
            "UPDATE {events} SET created_at = ? WHERE user_id = 'other' AND seq % 2 = 0",
            [engine.dialect.from_datetime(old)],
        )
    return sessions


def test_important_events_view_returns_what_the_released_one_does(engine: Engine) -> None:
    _workload(engine)
    with engine.transaction(None, readonly=True) as tx:
        now = tx.fetchall("SELECT * FROM {" + VIEW + "} ORDER BY " + _ORDER[VIEW])  # noqa: S608 (constants)
        then = tx.fetchall(
            f"SELECT * FROM ({_released(engine.dialect.name, VIEW)}) v ORDER BY {_ORDER[VIEW]}"  # noqa: S608
        )
    assert now == then
    # Every session, inside the window only, and the rounding cases among the rows.
    assert len(now) > 900 and {r[1] for r in now} == {"plain", "back\\\\slash", "nul\\0id"}
    shown = {r[7] for r in now}
    assert {0.804688, 0.820312, 1.0} <= shown and min(shown) >= 0.8


def test_analytics_decodes_the_views_keys(engine: Engine) -> None:
    sessions = _workload(engine)
    rows = Analytics(engine, user_id="acme").view(VIEW)
    assert {r["session_id"] for r in rows} == set(sessions[1:]) and rows
    assert all(r["user_id"] == "acme" and r["tags"] == "x, y" for r in rows)
    keys = [(r["created_at"], r["session_id"], r["seq"]) for r in rows]
    assert keys == sorted(keys, key=lambda k: (-k[0].timestamp(), k[1], k[2]))
    assert all(isinstance(r["seq"], int) and isinstance(r["importance"], float) for r in rows)
    top = Analytics(engine, user_id=None).view(VIEW, limit=5)
    assert [r["seq"] for r in top] == [
        r["seq"] for r in Analytics(engine, user_id=None).view(VIEW)[:5]
    ]
    assert Analytics(engine, user_id="nobody").view(VIEW) == []
