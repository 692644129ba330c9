"""KeyValueStore on both backends, sync and async: exact JSON values, literal prefixes,
compare-and-set, atomic increments under concurrent callers, TTL per key, bad input."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from langchain_agentmem import Engine, KeyValueStore

ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -(2**70),
    1.5,
    1e-300,
    "",
    "a\x00b",
    "lone \ud800 surrogate",
    "emoji 😀, RTL \u202e, combining e\u0301",
    [],
    {},
    [1, "two", None, [3.0, {"four": False}]],
    {"nested": {"\x00key": ["\udfff"], "": 1}, "order": {"z": 1, "a": 2}},
]
ODD_KEYS = ["plain", "", "a\x00b", "back\\slash", "\ud800", "50%_off", "ü/ñ/😀"]


def _age(engine: Engine, user_id: str = "alice") -> None:
    """Move every key of ``user_id`` with an expiry into the past (no sleeping)."""
    past = engine.dialect.from_datetime(datetime(2000, 1, 1, tzinfo=timezone.utc))
    with engine.transaction(user_id) as tx:
        tx.execute(
            "UPDATE {kv} SET expires_at = ? WHERE user_id = ? AND expires_at IS NOT NULL",
            [past, user_id],
        )


def _rows(engine: Engine) -> int:
    with engine.transaction(readonly=True) as tx:
        row = tx.fetchone("SELECT count(*) FROM {kv}")
    assert row is not None
    return int(row[0])


def test_values_and_keys_round_trip_exactly(engine: Engine) -> None:
    kv = KeyValueStore(engine, "odd", user_id="alice")
    for i, value in enumerate(ODD_VALUES):
        kv.set(f"v{i}", value)
    for i, value in enumerate(ODD_VALUES):
        got = kv.get(f"v{i}", default=KeyValueStore.MISSING)
        assert got == value and type(got) is type(value)
    assert kv.get("v1") is True and kv.get("v2") == 0 and type(kv.get("v2")) is int
    assert list(kv.get("v13")["order"]) == ["z", "a"]  # object key order kept
    kv.mset([(k, {"key": k}) for k in ODD_KEYS])
    assert kv.mget(ODD_KEYS) == [{"key": k} for k in ODD_KEYS]
    assert set(kv.keys()) == {f"v{i}" for i in range(len(ODD_VALUES))} | set(ODD_KEYS)


async def test_async_round_trip_and_missing_versus_null(aengine: Engine) -> None:
    kv = KeyValueStore(aengine, "odd", user_id="alice")
    await kv.amset({"null": None, "nul": "\x00", "nested": ODD_VALUES})
    assert await kv.aget("null", default="absent") is None
    assert await kv.aget("nope", default="absent") == "absent"
    assert await kv.amget(["nested", "nope", "nul"], default=0) == [ODD_VALUES, 0, "\x00"]
    assert await kv.aitems() == [("nested", ODD_VALUES), ("nul", "\x00"), ("null", None)]
    assert await kv.adelete("nul") is True
    assert await kv.adelete("nul") is False
    assert await kv.amdelete(["null", "nested", "never"]) == 2
    assert await kv.akeys() == []


def test_mset_later_pair_wins_and_delete_counts(engine: Engine) -> None:
    kv = KeyValueStore(engine, "ns", user_id="alice")
    kv.mset([("a", 1), ("b", 2), ("a", 3)])
    assert kv.mget(["a", "b"]) == [3, 2]
    kv.mset({})
    kv.set("a", {"replaced": True})
    assert kv.get("a") == {"replaced": True}
    assert kv.mdelete(["a", "a", "zzz"]) == 1
    assert kv.delete("b") is True and kv.delete("b") is False
    assert kv.mget([]) == [] and kv.mdelete([]) == 0


def test_prefix_is_literal(engine: Engine) -> None:
    kv = KeyValueStore(engine, "p", user_id="alice")
    keys = ["50%off", "50_off", "50\\off", "5000", "50", "a\x00b", "a\x00c", "ab", "A", "a"]
    kv.mset([(k, i) for i, k in enumerate(keys)])
    assert kv.keys("50%") == ["50%off"]
    assert kv.keys("50_") == ["50_off"]
    assert kv.keys("50\\") == ["50\\off"]
    assert sorted(kv.keys("50")) == sorted(["50%off", "50_off", "50\\off", "5000", "50"])
    assert kv.keys("a\x00") == ["a\x00b", "a\x00c"]
    assert sorted(kv.keys("a")) == ["a", "a\x00b", "a\x00c", "ab"]  # case-sensitive
    assert kv.keys("A") == ["A"]
    assert len(kv.keys("50", limit=2)) == 2 and kv.keys(limit=0) == []
    assert kv.items("50%") == [("50%off", 0)]


async def test_async_prefix(aengine: Engine) -> None:
    kv = KeyValueStore(aengine, "p", user_id="alice")
    await kv.amset([("x%1", 1), ("xa1", 2), ("x_1", 3)])
    assert await kv.akeys("x%") == ["x%1"]
    assert await kv.akeys("x_") == ["x_1"]
    assert await kv.aitems("x%", limit=5) == [("x%1", 1)]


def test_users_and_namespaces_are_separate(engine: Engine) -> None:
    a = KeyValueStore(engine, "ns", user_id="alice")
    b = KeyValueStore(engine, "ns", user_id="bob")
    other = KeyValueStore(engine, "ns2", user_id="alice")
    a.set("k", "alice's")
    assert b.get("k") is None and other.get("k") is None
    assert b.keys() == [] and b.delete("k") is False and b.increment("k") == 1
    assert b.compare_and_set("k", 1, "bob's") is True
    assert a.get("k") == "alice's" and b.get("k") == "bob's"


def test_compare_and_set(engine: Engine) -> None:
    kv = KeyValueStore(engine, "cas", user_id="alice")
    missing = KeyValueStore.MISSING
    assert kv.compare_and_set("lock", missing, "w1") is True
    assert kv.compare_and_set("lock", missing, "w2") is False
    assert kv.compare_and_set("lock", "w2", "w3") is False
    assert kv.compare_and_set("lock", "w1", None) is True
    assert kv.get("lock", default="absent") is None
    assert kv.compare_and_set("lock", missing, "w4") is False  # set to null is still set
    assert kv.compare_and_set("lock", None, {"b": 1, "a": [1.0]}) is True
    assert kv.compare_and_set("lock", {"a": [1.0], "b": 1}, 1) is True  # key order ignored
    assert kv.compare_and_set("lock", 1.0, 2) is False  # 1 is not 1.0
    assert kv.compare_and_set("lock", True, 2) is False  # nor True
    assert kv.compare_and_set("lock", 1, "\x00") is True
    assert kv.get("lock") == "\x00"
    assert kv.compare_and_set("never", "x", "y") is False and kv.get("never") is None


async def test_async_compare_and_set_and_expire(aengine: Engine) -> None:
    kv = KeyValueStore(aengine, "cas", user_id="alice")
    assert await kv.acompare_and_set("k", KeyValueStore.MISSING, 1, ttl=timedelta(hours=1))
    assert not await kv.acompare_and_set("k", KeyValueStore.MISSING, 2)
    assert await kv.acompare_and_set("k", 1, 2)
    assert await kv.aexpire("k", timedelta(minutes=5)) is True
    assert await kv.aexpire("nope", None) is False
    _age(aengine)
    assert await kv.aget("k") is None
    assert await kv.acompare_and_set("k", KeyValueStore.MISSING, 3)
    assert await kv.aget("k") == 3


def test_increment(engine: Engine) -> None:
    kv = KeyValueStore(engine, "counters", user_id="alice")
    assert kv.increment("n") == 1
    assert kv.increment("n", 10) == 11
    assert kv.increment("n", -20) == -9
    assert kv.increment("big", 2**62) == 2**62
    assert kv.increment("big", 2**62) == 2**63  # past int64: JSON integers are unbounded
    kv.set("text", "abc")
    kv.set("float", 1.5)
    kv.set("flag", True)
    for key in ("text", "float", "flag"):
        with pytest.raises(TypeError, match=f"cannot increment '{key}'"):
            kv.increment(key)
    assert kv.mget(["text", "float", "flag"]) == ["abc", 1.5, True]  # nothing changed
    for amount in (1.0, True, "1", None):
        with pytest.raises(TypeError, match="amount must be an int"):
            kv.increment("n", amount)  # type: ignore[arg-type]
    assert kv.get("n") == -9


async def test_async_increment(aengine: Engine) -> None:
    kv = KeyValueStore(aengine, "counters", user_id="alice")
    assert await kv.aincrement("n") == 1
    assert await kv.aincrement("n", 41) == 42
    await kv.aset("s", "x")
    with pytest.raises(TypeError, match="not an integer"):
        await kv.aincrement("s")
    assert await kv.aget("s") == "x"


def test_concurrent_increments_from_threads_lose_nothing(engine: Engine) -> None:
    kv = KeyValueStore(engine, "counters", user_id="alice")
    kv.set("seeded", 100)
    start = threading.Barrier(16)

    def work(i: int) -> list[int]:
        start.wait()
        return [kv.increment("hits"), kv.increment("seeded", 2), kv.increment(f"own{i % 4}")]

    with ThreadPoolExecutor(16) as pool:
        results = [r for rs in pool.map(work, range(64)) for r in rs[:1]]
    assert kv.get("hits") == 64
    assert sorted(results) == list(range(1, 65))  # every caller saw its own new value
    assert kv.get("seeded") == 100 + 2 * 64
    assert sum(kv.mget([f"own{i}" for i in range(4)])) == 64


async def test_concurrent_increments_from_coroutines_lose_nothing(aengine: Engine) -> None:
    kv = KeyValueStore(aengine, "counters", user_id="alice")
    results = await asyncio.gather(*(kv.aincrement("hits") for _ in range(64)))
    assert sorted(results) == list(range(1, 65))
    assert await kv.aget("hits") == 64


def test_concurrent_compare_and_set_has_one_winner(engine: Engine) -> None:
    kv = KeyValueStore(engine, "locks", user_id="alice")
    start = threading.Barrier(16)

    def claim(i: int) -> bool:
        start.wait()
        return kv.compare_and_set("leader", KeyValueStore.MISSING, f"w{i}")

    with ThreadPoolExecutor(16) as pool:
        won = list(pool.map(claim, range(16)))
    assert won.count(True) == 1
    assert kv.get("leader") == f"w{won.index(True)}"

    # A read-modify-write loop on compare_and_set loses no update either.
    kv.set("list", [])

    def push(i: int) -> None:
        while True:
            current = kv.get("list")
            if kv.compare_and_set("list", current, [*current, i]):
                return

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(push, range(24)))
    assert sorted(kv.get("list")) == list(range(24))


async def test_concurrent_async_compare_and_set_has_one_winner(aengine: Engine) -> None:
    kv = KeyValueStore(aengine, "locks", user_id="alice")
    won = await asyncio.gather(
        *(kv.acompare_and_set("leader", KeyValueStore.MISSING, i) for i in range(32))
    )
    assert won.count(True) == 1 and await kv.aget("leader") == won.index(True)


def test_ttl_expired_keys_are_never_returned(engine: Engine) -> None:
    kv = KeyValueStore(engine, "ttl", user_id="alice", ttl=timedelta(minutes=10))
    kv.set("short", "s")  # the store's ttl
    kv.set("forever", "f", ttl=None)
    kv.mset({"m1": 1, "m2": 2})
    kv.increment("count")
    persistent = KeyValueStore(engine, "ttl", user_id="alice")
    persistent.set("plain", "p")  # no store ttl: never expires
    assert sorted(kv.keys()) == ["count", "forever", "m1", "m2", "plain", "short"]
    _age(engine)
    assert kv.get("short") is None and kv.get("m1", default=0) == 0
    assert kv.mget(["short", "m2", "forever", "plain"]) == [None, None, "f", "p"]
    assert kv.keys() == ["forever", "plain"] and kv.items("s") == []
    assert kv.delete("short") is False  # expired: not set
    assert kv.expire("m1", timedelta(hours=1)) is False
    assert kv.increment("count") == 1  # starts afresh
    assert kv.compare_and_set("m2", KeyValueStore.MISSING, "again") is True
    assert kv.get("m2") == "again"
    kv.set("short", "back")
    assert kv.get("short") == "back"


def test_expire_sets_and_clears_a_ttl(engine: Engine) -> None:
    kv = KeyValueStore(engine, "ttl", user_id="alice")
    kv.mset({"a": 1, "b": 2})
    assert kv.expire("a", timedelta(seconds=30)) is True
    assert kv.expire("b", timedelta(seconds=30)) is True
    assert kv.expire("b", None) is True  # persistent again
    _age(engine)
    assert kv.mget(["a", "b"]) == [None, 2]


def test_increment_keeps_an_existing_expiry_unless_given(engine: Engine) -> None:
    kv = KeyValueStore(engine, "rate", user_id="alice", ttl=timedelta(minutes=1))
    kv.increment("window")  # new: the store's ttl
    kv.increment("window")  # existing: keeps it
    kv.increment("sliding")
    kv.increment("sliding", ttl=None)  # given: now persistent
    _age(engine)
    assert kv.get("window") is None and kv.get("sliding") == 2


def test_cleanup_expired_deletes_in_batches(engine: Engine) -> None:
    kv = KeyValueStore(engine, "ttl", user_id="alice", ttl=timedelta(hours=1))
    other_ns = KeyValueStore(engine, "other", user_id="alice", ttl=timedelta(hours=1))
    kv.mset({f"k{i}": i for i in range(5)})
    kv.set("keep", 1, ttl=None)
    other_ns.set("x", 1)
    assert kv.cleanup_expired() == 0
    _age(engine)
    assert _rows(engine) == 7
    assert kv.cleanup_expired(batch_size=2) == 5
    assert _rows(engine) == 2  # "keep" and the other namespace's expired key
    assert other_ns.cleanup_expired() == 1 and _rows(engine) == 1


async def test_async_cleanup_expired(aengine: Engine) -> None:
    kv = KeyValueStore(aengine, "ttl", user_id="alice", ttl=timedelta(hours=1))
    await kv.amset({"a": 1, "b": 2, "c": 3})
    _age(aengine)
    assert await kv.acleanup_expired(batch_size=1) == 3
    assert _rows(aengine) == 0


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (float("nan"), ValueError, "value is nan: JSON has no NaN or infinity"),
        ({"x": [float("inf")]}, ValueError, r"value\['x'\]\[0\] is inf"),
        ((1, 2), TypeError, "is a tuple \\(use a list\\)"),
        ({1: "a"}, TypeError, "has the key 1 of type int"),
        ({"s": {1, 2}}, TypeError, "is a set"),
        (b"bytes", TypeError, "is a bytes"),
        (datetime(2025, 1, 1), TypeError, "is a datetime"),
    ],
)
def test_values_that_would_not_read_back_equal_are_refused(
    engine: Engine, value: Any, error: type[Exception], message: str
) -> None:
    kv = KeyValueStore(engine, "bad", user_id="alice")
    kv.set("k", "old")
    with pytest.raises(error, match=message):
        kv.set("k", value)
    with pytest.raises(error, match=message.replace("value", "value of 'n'", 1)):
        kv.mset([("m", 1), ("n", value)])
    with pytest.raises(error):
        kv.compare_and_set("k", "old", value)
    assert kv.mget(["k", "m", "n"]) == ["old", None, None]  # nothing was written


def test_bad_keys_ttls_and_arguments_are_refused(engine: Engine) -> None:
    kv = KeyValueStore(engine, "bad", user_id="alice")
    kv.set("k", 1)
    with pytest.raises(TypeError, match="key must be a str, got int: 5"):
        kv.set(5, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a list of keys, got the str 'abc'"):
        kv.mget("abc")
    with pytest.raises(TypeError, match="expected \\(key, value\\) pairs"):
        kv.mset(["ab"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="ttl must be a positive timedelta"):
        kv.set("k", 2, ttl=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="ttl must be a positive timedelta"):
        kv.set("k", 2, ttl=timedelta(0))
    with pytest.raises(ValueError, match="ttl must be at most 365000 days"):
        kv.set("k", 2, ttl=timedelta.max)
    with pytest.raises(TypeError, match="ttl must be a timedelta or None, got int: 60"):
        kv.set("k", 2, ttl=60)
    with pytest.raises(TypeError, match="prefix must be a str"):
        kv.keys(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit must be at least 0"):
        kv.keys(limit=-1)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        kv.cleanup_expired(batch_size=0)
    with pytest.raises(TypeError, match="expected"):
        kv.compare_and_set("k", {1, 2}, 3)
    assert kv.get("k") == 1
    with pytest.raises(ValueError, match="ttl must be a positive timedelta"):
        KeyValueStore(engine, "bad", user_id="alice", ttl=timedelta(hours=-1))
    with pytest.raises(TypeError, match="namespace must be a str"):
        KeyValueStore(engine, ("a",), user_id="alice")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="user_id must be a str"):
        KeyValueStore(engine, "ns", user_id=None)  # type: ignore[arg-type]


async def test_async_bad_input_is_refused(aengine: Engine) -> None:
    kv = KeyValueStore(aengine, "bad", user_id="alice")
    with pytest.raises(ValueError, match="JSON has no NaN"):
        await kv.aset("k", float("-inf"))
    with pytest.raises(ValueError, match="ttl must be a positive"):
        await kv.aincrement("k", ttl=timedelta(days=-1))
    assert await kv.akeys() == []


def test_repr(engine: Engine) -> None:
    kv = KeyValueStore(engine, "ns", user_id="alice", ttl=timedelta(seconds=5))
    assert repr(kv) == (
        "KeyValueStore(namespace='ns', user_id='alice', ttl=datetime.timedelta(seconds=5))"
    )
    assert repr(KeyValueStore.MISSING) == "KeyValueStore.MISSING"
