"""Monitoring: operation metrics, sizes, index usage and sync health, for an operator and
for Prometheus."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from langchain_agentmem import (
    Engine,
    KeyValueStore,
    MemoryCollector,
    Monitor,
    TenantRequiredError,
    connect_hybrid,
)
from langchain_agentmem._core.catalog import TABLES
from langchain_agentmem.cli import main

from conftest import fresh_schema, make_engine, make_rls_engine


@pytest.fixture
def measured(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else ""
    eng = make_engine(backend, url, tmp_path)
    eng.migrate()
    eng.metrics = True
    yield eng
    eng.close()


def workload(engine: Engine) -> None:
    """alice: 3 sets, 2 gets (one missing), 1 failed set; bob: 1 set."""
    alice = KeyValueStore(engine, "settings", user_id="alice")
    for i in range(3):
        alice.set(f"k{i}", i)
    alice.get("k0")
    alice.get("missing")
    with pytest.raises((TypeError, ValueError)):
        alice.set("bad", object())  # not JSON: refused, recorded as an error
    KeyValueStore(engine, "settings", user_id="bob").set("k", 1)


def by_operation(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{r['memory_type']}.{r['operation']}": r for r in rows}


def metric_rows(engine: Engine) -> int:
    with engine.transaction(readonly=True) as tx:
        return int(tx.fetchone("SELECT count(*) FROM {agent_memory_metrics}")[0])


def test_operations_aggregate_every_tenant_or_read_one(measured: Engine) -> None:
    workload(measured)
    ops = by_operation(Monitor(measured).operations())
    assert set(ops) == {"KeyValueStore.get", "KeyValueStore.set"}
    assert ops["KeyValueStore.set"]["calls"] == 5 and ops["KeyValueStore.set"]["errors"] == 1
    assert ops["KeyValueStore.get"]["results"] == 1  # the value found; the miss returns none
    buckets = ops["KeyValueStore.set"]["buckets"]
    assert [b for b, _ in buckets][:2] == [0.001, 0.005]
    counts = [n for _, n in buckets]
    assert counts == sorted(counts) and counts[-1] <= 5  # cumulative, at most every call
    assert ops["KeyValueStore.set"]["latency_seconds"] > 0
    alice = by_operation(Monitor(measured, user_id="alice").operations())
    assert alice["KeyValueStore.set"]["calls"] == 4
    assert (
        by_operation(Monitor(measured, user_id="bob").operations())["KeyValueStore.set"]["calls"]
        == 1
    )
    assert Monitor(measured, user_id="carol").operations() == []
    # Reading the numbers records nothing (a scrape writes no row).
    before = metric_rows(measured)
    Monitor(measured).snapshot()
    Monitor(measured, user_id="alice").snapshot()
    assert metric_rows(measured) == before


def test_sizes_and_indexes_cover_every_catalog_table(engine: Engine) -> None:
    KeyValueStore(engine, "n", user_id="alice").mset({f"k{i}": "x" * 500 for i in range(200)})
    size = Monitor(engine).db_size()
    names = {t["table"] for t in size["tables"]}
    assert names == {t.name for t in TABLES.values() if engine.dialect.name in t.dialects}
    kv = next(t for t in size["tables"] if t["table"] == "kv")
    assert kv["table_bytes"] >= 100_000 and kv["total_bytes"] >= kv["table_bytes"]
    assert size["database_bytes"] >= kv["total_bytes"]
    sizes = [t["total_bytes"] for t in size["tables"]]
    assert sizes == sorted(sizes, reverse=True)  # largest first
    indexes = Monitor(engine).index_usage()
    events = [i for i in indexes if i["table"] == "events"]
    assert events and all(i["bytes"] > 0 for i in events)
    if engine.dialect.supports_index_stats:
        assert all(isinstance(i["scans"], int) for i in indexes)
    else:  # SQLite keeps no usage counters
        assert all(i["scans"] is None and i["tuples_read"] is None for i in indexes)


async def test_async_forms(aengine: Engine) -> None:
    aengine.metrics = True
    await KeyValueStore(aengine, "n", user_id="alice").aset("k", 1)
    monitor = Monitor(aengine)
    assert [o["calls"] for o in await monitor.aoperations()] == [1]
    assert (await monitor.adb_size())["database_bytes"] > 0
    assert len(await monitor.aindex_usage()) == len(monitor.index_usage())
    assert (await monitor.async_health())["sources"] == []
    snapshot = await monitor.asnapshot()
    assert snapshot["operations"][0]["operation"] == "set"
    names = {f.name for f in await MemoryCollector(aengine).acollect()}
    assert "agentmem_operation_duration_seconds" in names


def scrape(collector: MemoryCollector) -> dict[str, Any]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(family: Any, name: str, **labels: str) -> list[float]:
    return [
        s.value
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def test_the_collector_exposes_operations_sizes_and_indexes(measured: Engine) -> None:
    workload(measured)
    families = scrape(MemoryCollector(measured))
    latency = families["agentmem_operation_duration_seconds"]
    assert latency.type == "histogram"
    key = {"memory_type": "KeyValueStore", "operation": "set"}
    assert samples(latency, "agentmem_operation_duration_seconds_count", **key) == [5.0]
    assert samples(latency, "agentmem_operation_duration_seconds_bucket", le="+Inf", **key) == [5.0]
    assert samples(
        families["agentmem_operation_errors"], "agentmem_operation_errors_total", **key
    ) == [1.0]
    assert samples(families["agentmem_operations"], "agentmem_operations_total", **key) == [5.0]
    tables = {s.labels["table"] for s in families["agentmem_table_total_bytes"].samples}
    assert "events" in tables and "kv" in tables
    assert samples(families["agentmem_database_size_bytes"], "agentmem_database_size_bytes")[0] > 0
    indexes = families["agentmem_index_size_bytes"].samples
    assert any(s.labels["table"] == "events" for s in indexes)
    scans = families["agentmem_index_scans"].samples
    assert bool(scans) == measured.dialect.supports_index_stats
    # Every SQLite database has the outbox table (empty unless it is a hybrid cache).
    outbox = families.get("agentmem_sync_outbox_depth")
    assert (outbox is not None) == (measured.dialect.name in TABLES["sync_outbox"].dialects)
    # One tenant's collector counts its operations only.
    alice = scrape(MemoryCollector(measured, user_id="bob"))
    assert samples(alice["agentmem_operations"], "agentmem_operations_total", **key) == [1.0]


def test_an_operator_view_under_row_level_security_is_refused(
    postgres_url: str, app_role: str
) -> None:
    engine = make_rls_engine(postgres_url, app_role)
    engine.metrics = True
    KeyValueStore(engine, "n", user_id="alice").set("k", 1)
    with pytest.raises(TenantRequiredError, match="every tenant"):
        Monitor(engine).operations()
    assert [o["calls"] for o in Monitor(engine, user_id="alice").operations()] == [1]
    assert Monitor(engine, user_id="alice").db_size()["database_bytes"] > 0
    engine.close()


def test_sync_health_of_a_cache_and_of_postgres(postgres_url: str, tmp_path: Path) -> None:
    schema = fresh_schema()
    cache = connect_hybrid(f"sqlite:///{tmp_path / 'c.db'}", postgres_url, schema=schema)
    cache.migrate()
    KeyValueStore(cache, "n", user_id="u").mset({"a": 1, "b": 2})
    before = Monitor(cache).sync_health()
    assert before["outbox"] == 2 and before["lag_seconds"] >= 0 and before["sources"] == []
    assert cache.sync().status == "ok"
    local = Monitor(cache).sync_health()
    assert local["outbox"] == 0 and local["lag_seconds"] == 0.0
    (source,) = local["sources"]
    assert (source["runs"], source["ok"], source["failed"], source["rows_synced"]) == (1, 1, 0, 2)
    assert source["last_status"] == "ok" and source["last_ok_at"] is not None
    remote = Monitor(cache.remote).sync_health()
    assert remote["outbox"] is None  # Postgres has no outbox
    (seen,) = remote["sources"]
    assert seen["source"] == source["source"] and seen["delivered_seq"] == 2
    result = CliRunner().invoke(main, ["monitor", "sync-health", "--url", cache.url])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("outbox: 0 writes queued, lag 0.0 s\n")
    assert re.search(source["source"] + r"\s+1\s+1\s+0\s+0\s+2\s", result.output)
    families = scrape(MemoryCollector(cache))
    assert samples(families["agentmem_sync_outbox_depth"], "agentmem_sync_outbox_depth") == [0.0]
    runs = families["agentmem_sync_runs"]
    assert samples(runs, "agentmem_sync_runs_total", status="ok") == [1.0]
    cache.close()


def test_bad_input_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="buckets must be increasing positive numbers"):
        Monitor(engine, buckets=[0.1, 0.05])
    with pytest.raises(ValueError, match="hours must be a positive number or None, got -1"):
        Monitor(engine).sync_health(hours=-1)


def migrated_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    if backend == "postgres":
        url, schema = request.getfixturevalue("postgres_url"), fresh_schema()
        db = ["--url", url, "--schema", schema]
    else:
        db = ["--url", f"sqlite:///{tmp_path / 'cli.db'}"]
    assert CliRunner().invoke(main, ["migrate", *db]).exit_code == 0
    return db


def test_cli_monitor_commands(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    db = migrated_url(backend, request, tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["monitor", "db-size", *db])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("database: ") and re.search(r"\nevents\s", result.output)
    size = json.loads(runner.invoke(main, ["monitor", "db-size", "--json", *db]).output)
    assert {t["table"] for t in size["tables"]} >= {"events", "sessions", "kv"}
    result = runner.invoke(main, ["monitor", "index-usage", *db])
    assert result.exit_code == 0 and "events" in result.output
    assert ("n/a" in result.output) != (backend == "postgres")
    indexes = json.loads(runner.invoke(main, ["monitor", "index-usage", "--json", *db]).output)
    assert indexes and all(i["index"] for i in indexes)
    result = runner.invoke(main, ["monitor", "sync-health", *db])
    assert result.exit_code == 0 and "no sync runs logged" in result.output
    health = json.loads(runner.invoke(main, ["monitor", "sync-health", "--json", *db]).output)
    assert health["sources"] == []
    result = runner.invoke(main, ["monitor", "sync-health", "--hours", "0", *db])
    assert result.exit_code == 2 and "--hours" in result.output
    result = runner.invoke(main, ["metrics", *db])
    assert result.exit_code == 0, result.output
    assert "# TYPE agentmem_operation_duration_seconds histogram" in result.output
    assert 'agentmem_table_total_bytes{table="events"}' in result.output


def test_cli_metrics_serves_prometheus(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'served.db'}"
    engine = connect_hybrid(url, "postgresql://127.0.0.1:1/none")  # a cache; Postgres down
    engine.migrate()
    KeyValueStore(engine, "n", user_id="u").set("k", 1)
    engine.close()
    server = subprocess.Popen(
        [sys.executable, "-m", "langchain_agentmem.cli", "metrics", "--url", url, "--serve", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        found = re.search(r"serving (http://127\.0\.0\.1:\d+/metrics)", line)
        assert found, line
        with urllib.request.urlopen(found.group(1), timeout=30) as response:
            text = response.read().decode()
        assert "agentmem_database_size_bytes " in text
        assert re.search(r"^agentmem_sync_outbox_depth 1\.0$", text, re.M)
    finally:
        server.terminate()
        server.wait(timeout=30)
        assert server.stderr is not None
        server.stderr.close()
