"""A key-value store: JSON values per user and namespace, with compare-and-set, atomic
increments and a time to live per key.

``KeyValueStore`` keeps small, exact state an agent reads and writes by name: settings,
counters, flags, locks with an expiry, cursors. Values are any JSON (``None``, ``bool``,
``int``, finite ``float``, ``str``, ``list``, ``dict`` with ``str`` keys) and read back equal,
NUL characters and lone surrogates included; keys are any strings.

It has a table of its own, ``kv``, rather than sharing LangGraph's ``store_items`` or the
``documents`` table:

* ``store_items`` belongs to :class:`~langchain_agentmem.LangGraphStore`, whose rows follow
  LangGraph's rules: tuple namespaces, a TTL that reads refresh (``refresh_ttl``), indexed
  fields with vectors. A counter that one read would keep alive, or a key that LangGraph's
  ``search`` and ``list_namespaces`` would list, is not what a key-value store promises.
* ``documents`` holds LangChain's ``BaseStore`` values (``kind`` is ``bytes`` or
  ``document``, checked by the table) and has no expiry.
* A table of its own has exactly the columns the operations need (the value, its expiry),
  an index on expiry for clean-up, and its own retention and sync policy in the catalog.

Every operation is one transaction. :meth:`KeyValueStore.compare_and_set` and
:meth:`KeyValueStore.increment` lock the key's row (``FOR UPDATE`` on Postgres; SQLite runs
one writer at a time), so concurrent callers never lose an update. An expired key is never
returned, even before :meth:`KeyValueStore.cleanup_expired` deletes it; a write to it
starts it afresh.

Example:
    >>> from datetime import timedelta
    >>> from langchain_agentmem import connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> kv = KeyValueStore(engine, "settings", user_id="alice")
    >>> kv.set("theme", {"dark": True, "font": 14})
    >>> kv.get("theme")
    {'dark': True, 'font': 14}
    >>> kv.increment("visits"), kv.increment("visits", 2)
    (1, 3)
    >>> kv.compare_and_set("theme", {"dark": True, "font": 14}, {"dark": False})
    True
    >>> kv.compare_and_set("theme", {"dark": True, "font": 14}, {"dark": True})
    False
    >>> kv.compare_and_set("lock", KeyValueStore.MISSING, "worker-1", ttl=timedelta(seconds=30))
    True
    >>> kv.keys(prefix="th"), kv.mget(["visits", "nope"])
    (['theme'], [3, None])
    >>> import asyncio; asyncio.run(kv.aget("visits"))
    3
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from ._core.durations import batch_size as check_batch_size
from ._core.durations import ttl_minutes
from ._core.plan import Atomic, Plan, dual
from ._encoding.json import check_exact, dumps_exact, loads
from ._encoding.keys import decode_key, encode_key
from .dialects import SQL, Body, Composed, Dialect, Many, One, Stmt, Template, Unnest
from .engine import EngineLike, as_engine

__all__ = ["MISSING", "KeyValueStore"]


class _Missing:
    """The ``expected`` value of :meth:`KeyValueStore.compare_and_set` for a key that is
    not set (``None`` is a JSON value a key can hold)."""

    def __repr__(self) -> str:
        return "KeyValueStore.MISSING"


class _StoreTTL:
    def __repr__(self) -> str:
        return "<the store's ttl>"


#: ``compare_and_set(key, MISSING, value)`` sets ``key`` only if it is not set.
MISSING: Final = _Missing()
_STORE_TTL: Any = _StoreTTL()
_KEYS = [("key", "text")]
_UNNEST_KEYS = Unnest(_KEYS)


_LIVE = SQL("(expires_at IS NULL OR expires_at > {now})")
_LIVE_K = SQL("(k.expires_at IS NULL OR k.expires_at > {now})")


def _expires(dialect: Dialect) -> SQL:
    """The expiry of a written key: now plus ``?`` minutes, NULL when the parameter is."""
    return SQL(dialect.now_plus_minutes("CAST(? AS double precision)"))


def _canonical(value: Any) -> str:
    # Equal as JSON: same types (True is not 1, 1 is not 1.0), object key order ignored.
    return json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


# -- query builders (pure) ------------------------------------------------------------


def upsert_sql(dialect: Dialect) -> Composed:
    """Insert or replace one key (``user_id, namespace, key, value, ttl minutes``)."""
    return SQL(
        "INSERT INTO {kv} AS k (user_id, namespace, key, value, expires_at) VALUES (?, ?, ?, ?, "
        "{expires}) ON CONFLICT (user_id, namespace, key) DO UPDATE SET value = excluded.value, "
        "expires_at = excluded.expires_at, updated_at = {now}, created_at = CASE WHEN "
        "k.expires_at IS NOT NULL AND k.expires_at <= {now} THEN {now} ELSE k.created_at END"
    ).format(expires=_expires(dialect))


def insert_if_absent_sql(dialect: Dialect) -> Composed:
    """Like :func:`upsert_sql`, but only where the key is not set or has expired; one row
    (``1``) when it wrote. On Postgres the row is locked either way."""
    return SQL(
        "INSERT INTO {kv} AS k (user_id, namespace, key, value, expires_at) VALUES (?, ?, ?, ?, "
        "{expires}) ON CONFLICT (user_id, namespace, key) DO UPDATE SET value = excluded.value, "
        "expires_at = excluded.expires_at, updated_at = {now}, created_at = {now} "
        "WHERE k.expires_at IS NOT NULL AND k.expires_at <= {now} RETURNING 1"
    ).format(expires=_expires(dialect))


def _get_many(dialect: Dialect, uid: str, ns: str, keys: Sequence[str]) -> Body[list[Any]]:
    rows = yield Stmt(
        SQL(
            "SELECT k.key, k.value FROM {kv} k WHERE k.user_id = ? AND k.namespace = ? AND "
            "{live} AND k.key IN (SELECT m.key FROM {keys})"
        ).format(live=_LIVE_K, keys=_UNNEST_KEYS),
        [uid, ns, *dialect.unnest_params(_KEYS, [(k,) for k in keys])],
        fetch=True,
    )
    return list(rows)


def _list(
    dialect: Dialect, uid: str, ns: str, prefix: str, limit: int | None, values: bool
) -> Body[list[Any]]:
    parts = [
        SQL("SELECT key, value" if values else "SELECT key"),
        SQL(" FROM {kv} WHERE user_id = ? AND namespace = ? AND "),
        _LIVE,
    ]
    params: list[Any] = [uid, ns]
    if prefix:
        parts += [SQL(" AND "), SQL(dialect.starts_with("key"))]
        params += dialect.starts_with_params(encode_key(prefix))
    parts.append(SQL(" ORDER BY key"))
    if limit is not None:
        parts.append(SQL(" LIMIT ?"))
        params.append(limit)
    return list((yield Stmt(Composed(parts), params, fetch=True)))


def _delete_many(dialect: Dialect, uid: str, ns: str, keys: Sequence[str]) -> Body[int]:
    where = SQL(
        "WHERE user_id = ? AND namespace = ? AND key IN (SELECT m.key FROM {keys}) AND "
    ).format(keys=_UNNEST_KEYS)
    params = [uid, ns, *dialect.unnest_params(_KEYS, [(k,) for k in keys])]
    # Two statements, not one with RETURNING: SQLite 3.40 computes expressions in the
    # RETURNING clause of a DELETE on a WITHOUT ROWID table wrongly.
    n = yield Stmt(SQL("DELETE FROM {kv} ") + where + _LIVE, params)
    yield Stmt(SQL("DELETE FROM {kv} ") + where + SQL("NOT ") + _LIVE, params)
    return int(n)


def _compare_and_set(
    dialect: Dialect, scope: list[str], expected: Any, new: str, minutes: float | None
) -> Body[bool]:
    if expected is MISSING:
        row = yield One(insert_if_absent_sql(dialect), [*scope, new, minutes])
        return row is not None
    row = yield One(
        SQL(
            "SELECT value FROM {kv} WHERE user_id = ? AND namespace = ? AND key = ? AND "
            "{live} {for_update}"
        ).format(live=_LIVE),
        scope,
    )
    if row is None or _canonical(loads(row[0])) != _canonical(expected):
        return False
    yield Stmt(
        SQL(
            "UPDATE {kv} SET value = ?, updated_at = {now}, expires_at = {expires} "
            "WHERE user_id = ? AND namespace = ? AND key = ?"
        ).format(expires=_expires(dialect)),
        [new, minutes, *scope],
    )
    return True


def _increment(
    dialect: Dialect, scope: list[str], key: str, amount: int, minutes: float | None, keep: bool
) -> Body[int]:
    # A new (or expired) key starts at ``amount``; on Postgres the statement also locks an
    # existing row, so the read and write below run alone.
    row = yield One(insert_if_absent_sql(dialect), [*scope, dumps_exact(amount), minutes])
    if row is not None:
        return amount
    row = yield One(
        "SELECT value FROM {kv} WHERE user_id = ? AND namespace = ? AND key = ? {for_update}",
        scope,
    )
    current = loads(row[0]) if row is not None else None
    if isinstance(current, bool) or not isinstance(current, int):
        raise TypeError(
            f"cannot increment {key!r}: its value is {current!r}, not an integer (nothing changed)"
        )
    value = current + amount
    expiry = SQL("") if keep else SQL(", expires_at = ") + _expires(dialect)
    yield Stmt(
        SQL(
            "UPDATE {kv} SET value = ?, updated_at = {now}{expiry} "
            "WHERE user_id = ? AND namespace = ? AND key = ?"
        ).format(expiry=expiry),
        [dumps_exact(value), *([] if keep else [minutes]), *scope],
    )
    return value


def _expire(dialect: Dialect, scope: list[str], minutes: float | None) -> Body[bool]:
    n = yield Stmt(
        SQL(
            "UPDATE {kv} SET expires_at = {expires}, updated_at = {now} "
            "WHERE user_id = ? AND namespace = ? AND key = ? AND {live}"
        ).format(expires=_expires(dialect), live=_LIVE),
        [minutes, *scope],
    )
    return bool(n)


def delete_expired_batch(uid: str, namespace: str | None, size: int) -> Body[int]:
    """Delete up to ``size`` expired keys of a user (of one stored ``namespace``, or all)."""
    where = SQL("user_id = ? AND expires_at <= {now}")
    scope = [uid]
    if namespace is not None:
        where = SQL("user_id = ? AND expires_at <= {now} AND namespace = ?")
        scope.append(namespace)
    n = yield Stmt(
        SQL(
            "DELETE FROM {kv} WHERE {where} AND (namespace, key) IN (SELECT namespace, key "
            "FROM {kv} WHERE {where} ORDER BY namespace, key LIMIT ?)"
        ).format(where=where),
        [*scope, *scope, size],
    )
    return int(n)


def cleanup_plan(uid: str, namespace: str | None, size: int) -> Plan[int]:
    """Delete a user's expired keys, ``size`` per transaction; the number deleted."""
    total = 0
    while True:
        n = yield Atomic(delete_expired_batch(uid, namespace, size))
        total += n
        if n < size:
            return total


def _users() -> Body[list[str]]:
    rows = yield Stmt(
        "SELECT DISTINCT user_id FROM {kv} WHERE expires_at <= {now} ORDER BY user_id",
        fetch=True,
    )
    return [decode_key(r[0]) for r in rows]


def users_with_expired_plan() -> Plan[list[str]]:
    """Every tenant with expired keys (for ``agentmem prune``)."""
    return (yield Atomic(_users(), readonly=True, user_id=None, every_tenant=True))


# -- the store -------------------------------------------------------------------------


def _limit(limit: Any) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int or None, got {type(limit).__name__}: {limit!r}")
    if limit < 0:
        raise ValueError(f"limit must be at least 0, got {limit}")
    return limit


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}: {value!r}")
    return value


class KeyValueStore:
    """JSON values by key, for one user and namespace.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        namespace: separates stores of one user (any string).
        user_id: the tenant.
        ttl: time to live of every key this store writes (a positive ``timedelta``), or
            ``None`` (the default): keys never expire. Each write can give its own.

    Every method has an ``a``-prefixed async form. See the module docstring for an
    example.
    """

    #: ``expected`` of :meth:`compare_and_set` for a key that is not set.
    MISSING: Final = MISSING

    def __init__(
        self, engine: EngineLike, namespace: str, *, user_id: str, ttl: Any = None
    ) -> None:
        engine = as_engine(engine)
        self.engine = engine
        self.namespace = _str(namespace, "namespace")
        self.user_id = _str(user_id, "user_id")
        self._minutes = ttl_minutes(ttl, "ttl", optional=True)
        self.ttl = ttl
        self._ns = encode_key(namespace)
        self._uid = encode_key(user_id)

    def __repr__(self) -> str:
        return f"KeyValueStore(namespace={self.namespace!r}, user_id={self.user_id!r}, ttl={self.ttl!r})"

    def _scope(self, key: str) -> list[str]:
        return [self._uid, self._ns, encode_key(_str(key, "key"))]

    def _ttl(self, ttl: Any) -> float | None:
        return self._minutes if ttl is _STORE_TTL else ttl_minutes(ttl, "ttl", optional=True)

    def _key_list(self, keys: Iterable[str]) -> list[str]:
        if isinstance(keys, str):
            raise TypeError(f"expected a list of keys, got the str {keys!r}")
        return [encode_key(_str(k, "key")) for k in keys]

    # -- reads ---------------------------------------------------------------------------
    @dual
    def get(self, key: str, default: Any = None) -> Plan[Any]:
        """The value of ``key``, or ``default`` when it is not set (or has expired)."""
        rows = yield Atomic(
            _get_many(self.engine.dialect, self._uid, self._ns, self._scope(key)[2:]),
            readonly=True,
        )
        return loads(rows[0][1]) if rows else default

    aget = get.async_

    @dual
    def mget(self, keys: Sequence[str], default: Any = None) -> Plan[list[Any]]:
        """The values of ``keys`` in order; ``default`` for keys not set."""
        encoded = self._key_list(keys)
        if not encoded:
            return []
        rows = yield Atomic(
            _get_many(self.engine.dialect, self._uid, self._ns, encoded), readonly=True
        )
        found = {r[0]: loads(r[1]) for r in rows}
        return [found.get(k, default) for k in encoded]

    amget = mget.async_

    @dual
    def keys(self, prefix: str = "", *, limit: int | None = None) -> Plan[list[str]]:
        """The keys set, in stored order; those starting with ``prefix`` when given,
        compared literally (``%``, ``_`` and ``\\`` are ordinary characters); at most
        ``limit``."""
        rows = yield Atomic(
            _list(
                self.engine.dialect,
                self._uid,
                self._ns,
                _str(prefix, "prefix"),
                _limit(limit),
                False,
            ),
            readonly=True,
        )
        return [decode_key(r[0]) for r in rows]

    akeys = keys.async_

    @dual
    def items(self, prefix: str = "", *, limit: int | None = None) -> Plan[list[tuple[str, Any]]]:
        """``(key, value)`` pairs, like :meth:`keys`."""
        rows = yield Atomic(
            _list(
                self.engine.dialect,
                self._uid,
                self._ns,
                _str(prefix, "prefix"),
                _limit(limit),
                True,
            ),
            readonly=True,
        )
        return [(decode_key(r[0]), loads(r[1])) for r in rows]

    aitems = items.async_

    # -- writes --------------------------------------------------------------------------
    @dual
    def set(self, key: str, value: Any, *, ttl: Any = _STORE_TTL) -> Plan[None]:
        """Set ``key`` to ``value`` (JSON); ``ttl`` is its time to live (default the
        store's; ``None``: never expires)."""
        params = [*self._scope(key), dumps_exact(value), self._ttl(ttl)]
        yield Atomic(_one(Stmt(upsert_sql(self.engine.dialect), params)), single=True)

    aset = set.async_

    @dual
    def mset(
        self, items: Mapping[str, Any] | Iterable[tuple[str, Any]], *, ttl: Any = _STORE_TTL
    ) -> Plan[None]:
        """Set many keys in one transaction; a later pair wins over an earlier one with the
        same key. Nothing is written if any key or value is invalid."""
        pairs = items.items() if isinstance(items, Mapping) else items
        minutes = self._ttl(ttl)
        rows: dict[str, list[Any]] = {}
        for pair in pairs:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise TypeError(f"expected (key, value) pairs, got {pair!r}")
            key, value = pair
            scope = self._scope(key)
            rows[scope[2]] = [*scope, dumps_exact(value, f"value of {key!r}"), minutes]
        if not rows:
            return
        # Rows are written in key order, so concurrent batches lock them in one order.
        ordered = [rows[k] for k in sorted(rows)]
        yield Atomic(_many(upsert_sql(self.engine.dialect), ordered))

    amset = mset.async_

    @dual
    def delete(self, key: str) -> Plan[bool]:
        """Delete ``key``; whether it was set."""
        scope = self._scope(key)
        n = yield Atomic(_delete_many(self.engine.dialect, self._uid, self._ns, scope[2:]))
        return n > 0

    adelete = delete.async_

    @dual
    def mdelete(self, keys: Sequence[str]) -> Plan[int]:
        """Delete ``keys``; how many of them were set."""
        encoded = self._key_list(keys)
        if not encoded:
            return 0
        return (
            yield Atomic(
                _delete_many(self.engine.dialect, self._uid, self._ns, sorted(set(encoded)))
            )
        )

    amdelete = mdelete.async_

    @dual
    def compare_and_set(
        self, key: str, expected: Any, value: Any, *, ttl: Any = _STORE_TTL
    ) -> Plan[bool]:
        """Set ``key`` to ``value`` only if its value is ``expected`` now (or, with
        ``expected=KeyValueStore.MISSING``, only if it is not set); whether it did.

        Values compare as JSON: same types (``True`` is not ``1``, ``1`` is not ``1.0``),
        object key order ignored. Atomic under concurrent callers: of many racing with the
        same ``expected``, exactly one succeeds.
        """
        scope = self._scope(key)
        if expected is not MISSING:
            check_exact(expected, "expected")
        new = dumps_exact(value)
        minutes = self._ttl(ttl)
        return (yield Atomic(_compare_and_set(self.engine.dialect, scope, expected, new, minutes)))

    acompare_and_set = compare_and_set.async_

    @dual
    def increment(self, key: str, amount: int = 1, *, ttl: Any = _STORE_TTL) -> Plan[int]:
        """Add ``amount`` to the integer at ``key`` (a key not set starts at 0); the new
        value. Atomic under concurrent callers. A new key gets ``ttl`` (default the
        store's); an existing one keeps its expiry unless ``ttl`` is given. ``TypeError``
        (nothing changed) when the value is not an integer."""
        scope = self._scope(key)
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError(f"amount must be an int, got {type(amount).__name__}: {amount!r}")
        keep = ttl is _STORE_TTL
        minutes = self._ttl(ttl)
        return (yield Atomic(_increment(self.engine.dialect, scope, key, amount, minutes, keep)))

    aincrement = increment.async_

    @dual
    def expire(self, key: str, ttl: Any) -> Plan[bool]:
        """Give ``key`` a new time to live from now (``None``: never expires); whether the
        key is set."""
        minutes = ttl_minutes(ttl, "ttl", optional=True)
        return (yield Atomic(_expire(self.engine.dialect, self._scope(key), minutes), single=True))

    aexpire = expire.async_

    @dual
    def cleanup_expired(self, *, batch_size: int = 1000) -> Plan[int]:
        """Delete this namespace's expired keys, ``batch_size`` per transaction; how many.
        (Expired keys are never returned anyway; this frees their rows.)"""
        return (yield from cleanup_plan(self._uid, self._ns, check_batch_size(batch_size)))

    acleanup_expired = cleanup_expired.async_


def _one(stmt: Stmt) -> Body[Any]:
    return (yield stmt)


def _many(sql: Template, rows: list[list[Any]]) -> Body[None]:
    yield Many(sql, rows)
