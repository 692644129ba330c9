"""The ``agentmem`` command line: migrate and inspect a memory database.

Every command takes ``--url`` (else ``AGENTMEM_URL``, else the local SQLite default),
``--schema``, ``-h`` / ``--help`` and ``--json`` (one JSON object on stdout; passwords are
never printed). Only ``migrate`` creates a database; the other commands refuse a SQLite
path that does not exist, and say "run `agentmem migrate`" on a database that is not
migrated. Deleting commands count first, ask (``--yes`` skips the question, ``--dry-run``
only counts) and show a progress bar on a terminal.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import click

from ._backends.base import NotMigratedError, redact
from ._core.catalog import TABLES
from ._core.plan import Atomic, Plan
from ._core.plan import run as plan_run
from .dialects import SQL, Body, One, Table
from .engine import Engine, connect

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])


def database_options(func: F) -> F:
    func = click.option(
        "--schema", default="agent_mem", show_default=True, help="Postgres schema of the tables."
    )(func)
    func = click.option(
        "--url",
        envvar="AGENTMEM_URL",
        help="Database URL (postgresql://..., sqlite:///file.db). Default: $AGENTMEM_URL, else the local SQLite file.",
    )(func)
    return func


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(func)


def open_engine(url: str | None, schema: str, *, create: bool = False) -> Engine:
    """Connect, turning bad URLs and unreachable servers into clean CLI errors. Without
    ``create`` a SQLite file that does not exist is refused (never created)."""
    try:
        engine = connect(url, schema=schema)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from exc
    missing = engine.missing_file
    if missing is not None and not create:
        raise click.ClickException(
            f"no database at {missing} (nothing was created): check the path, or run "
            "`agentmem migrate` with this --url to create it"
        )
    return engine


def run(action: Callable[[], Any]) -> Any:
    """``action()``; errors :class:`Main` turns into messages pass through."""
    return action()


def shown_url(engine: Engine) -> str:
    """The engine's URL with any password replaced by ``***``."""
    return redact(engine.url)


def interactive() -> bool:
    """Whether stderr is a terminal (progress bars are drawn only there)."""
    return sys.stderr.isatty()


def progress(items: list[Any], label: str) -> Any:
    """``items`` in a progress bar on stderr when it is a terminal (click's own bar: no
    extra dependency), else as they are."""
    if not interactive():
        return contextlib.nullcontext(items)
    return click.progressbar(items, label=label, file=sys.stderr)


def confirm(question: str, yes: bool) -> None:
    """Ask ``question`` on stderr unless ``yes``; a no (or no answer) deletes nothing."""
    if yes:
        return
    try:
        agreed = click.confirm(question, default=False, err=True)
    except click.Abort:
        agreed = False
    if not agreed:
        raise click.ClickException(
            "not confirmed: nothing was deleted (--yes skips the question, --dry-run only counts)"
        )


class Main(click.Group):
    """The command group: errors every command can meet become one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NotMigratedError as exc:
            reason = str(exc).split(":")[0]
            raise click.ClickException(
                f"the database is not migrated ({reason}): run `agentmem migrate` with the same "
                "--url and --schema first"
            ) from exc
        except ConnectionError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="langchain-agentmem")
def main() -> None:
    """Agent memory for LangChain and LangGraph on Postgres or SQLite."""


@main.command()
@database_options
@json_option
def migrate(url: str | None, schema: str, as_json: bool) -> None:
    """Create or upgrade the memory tables (idempotent).

    Example:

        agentmem migrate --url sqlite:///memory.sqlite3
    """
    engine = open_engine(url, schema, create=True)
    with engine:
        applied = run(engine.migrate)
        version = engine.schema_version()
    if as_json:
        click.echo(json.dumps({"applied": applied, "schema_version": version}))
    elif applied:
        click.echo(f"applied {', '.join(str(v) for v in applied)}; schema version {version}")
    else:
        click.echo(f"up to date; schema version {version}")


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows per table of the shared schema: the catalog's tables that exist (migrated)."""
    return plan_run(engine, None, _counts_plan(engine))


def _counts(engine: Engine) -> Body[dict[str, int]]:
    present = {row[0] for row in (yield engine.dialect.tables())}
    counts: dict[str, int] = {}
    for table in TABLES.values():
        if table.name in present and table.derived_from is None:
            # Names come from the catalog and are quoted by the dialect.
            row = yield One(SQL("SELECT count(*) FROM {}").format(Table(table.name)))
            counts[table.name] = int(row[0])
    return counts


def _counts_plan(engine: Engine) -> Plan[dict[str, int]]:
    return (yield Atomic(_counts(engine), readonly=True, user_id=None, every_tenant=True))


@main.command()
@database_options
@json_option
def status(url: str | None, schema: str, as_json: bool) -> None:
    """Show the applied schema version and the rows in each table (a SQLite path that
    does not exist is reported, not created).

    Example:

        agentmem status --url postgresql://localhost/mydb
    """
    try:
        engine = connect(url, schema=schema)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from exc
    missing = engine.missing_file
    with engine:
        version = 0 if missing else run(engine.schema_version)
        counts = table_counts(engine) if version else {}
    if as_json:
        out = {"url": shown_url(engine), "schema": engine.schema, "schema_version": version}
        click.echo(json.dumps({**out, "exists": missing is None, "tables": counts}))
        return
    click.echo(f"{shown_url(engine)} (schema {engine.schema})\nschema version: {version}")
    if missing:
        click.echo(
            f"no tables yet: no database file at {missing} (not created); check the path, or run `agentmem migrate`"
        )
    elif not version:
        click.echo("no tables yet: run `agentmem migrate`")
    for name, count in counts.items():
        click.echo(f"  {name:<28} {count:>10}")


@main.command()
@database_options
@click.argument("user_id")
@click.argument("name", required=False)
@click.option("--entity-system", default="default", show_default=True, help="Entity namespace.")
@click.option(
    "--graph", "graph_name", default="default", show_default=True, help="Graph namespace."
)
@click.option(
    "--as-of", "as_of", default=None, help="ISO time with zone for graph facts (default: now)."
)
@click.option("--limit", default=20, show_default=True, help="Most rows per section.")
@json_option
def recall(
    url: str | None,
    schema: str,
    user_id: str,
    name: str | None,
    entity_system: str,
    graph_name: str,
    as_of: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Show what is remembered about USER_ID: session summaries, entities and graph facts
    (about NAME only, when given). Reads only; no model is called.

    Example:

        agentmem recall alice Bob --as-of 2025-01-01T00:00:00+00:00
    """
    from .entities import EntityMemory
    from .graph import GraphMemory
    from .summary import SummaryMemory

    when = None
    if as_of is not None:
        try:
            when = datetime.fromisoformat(as_of)
        except ValueError as exc:
            raise click.BadParameter(
                f"expected an ISO time like 2025-01-01T00:00:00+00:00, got {as_of!r}",
                param_hint="--as-of",
            ) from exc
        if when.tzinfo is None:
            raise click.BadParameter(
                f"expected a time with a zone (e.g. +00:00), got {as_of!r}", param_hint="--as-of"
            )
    engine = open_engine(url, schema)
    with engine:
        entities = EntityMemory(engine, user_id=user_id, entity_system=entity_system)
        kg = GraphMemory(engine, user_id=user_id, graph=graph_name)
        summaries = run(lambda: SummaryMemory.list_summaries(engine, user_id, limit=limit))
        if name is None:
            found = run(lambda: entities.list_entities(limit=limit))
            facts = run(lambda: kg.edges(as_of=when))[:limit]
        else:
            one = run(lambda: entities.get(name))
            found = [one] if one is not None else []
            # An entity alias ("Bobby") also finds the graph node of the entity's name.
            node = one.name if one is not None else name
            facts = run(lambda: kg.facts(node, as_of=when, limit=limit))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "summaries": [
                        {
                            "session_id": x.session_id,
                            "summary": x.summary,
                            "message_count": x.message_count,
                        }
                        for x in summaries
                    ],
                    "entities": [
                        {"name": e.name, "type": e.type, "aliases": e.aliases, "summary": e.summary}
                        for e in found
                    ],
                    "facts": [
                        {"subject": e.source_name, "relation": e.relation, "object": e.target_name}
                        for e in facts
                    ],
                }
            )
        )
        return
    click.echo(f"sessions summarized: {len(summaries)}")
    for x in summaries:
        click.echo(f"  [{x.session_id}] {x.summary}")
    click.echo(f"entities: {len(found)}")
    for e in found:
        click.echo(f"  {e.name}: {e.summary}")
    click.echo(f"facts: {len(facts)}")
    for e in facts:
        click.echo(f"  {e.as_text()}")


_DURATION = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` as a ``timedelta``.

    Example:
        >>> parse_duration("36h")
        datetime.timedelta(days=1, seconds=43200)
    """
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in _DURATION or not text[:-1].isdigit():
        raise click.BadParameter(
            f"expected a number and a unit (s, m, h, d, w) such as 30d, got {text!r}"
        )
    return timedelta(seconds=int(text[:-1]) * _DURATION[text[-1]])


@main.command()
@database_options
@click.option(
    "--older-than", help="Delete checkpoints saved longer ago than this: 30d, 12h, 90m, 2w."
)
@click.option(
    "--keep-latest/--no-keep-latest",
    default=True,
    show_default=True,
    help="With --older-than: never delete the newest checkpoint of a thread (its current state).",
)
@click.option(
    "--thread",
    "threads",
    multiple=True,
    help="Only these threads (repeatable; without --older-than).",
)
@click.option(
    "--user", "users", multiple=True, help="Only these tenants (repeatable). Default: every tenant."
)
@click.option(
    "--working-memory",
    "working_memory",
    is_flag=True,
    help="Instead of checkpoints: deactivate expired working-memory sessions.",
)
@click.option(
    "--delete",
    is_flag=True,
    help="With --working-memory: delete expired and ended sessions, thoughts included.",
)
@click.option(
    "--kv", is_flag=True, help="Instead of checkpoints: delete expired key-value entries."
)
@click.option(
    "--batch-size",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="With --working-memory or --kv: rows per transaction.",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before deleting.")
@json_option
def prune(
    url: str | None,
    schema: str,
    older_than: str | None,
    keep_latest: bool,
    threads: tuple[str, ...],
    users: tuple[str, ...],
    working_memory: bool,
    delete: bool,
    kv: bool,
    batch_size: int,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Remove old LangGraph checkpoints: by age, or all but each thread's latest; or,
    with --working-memory and/or --kv, expired working memory and key-value entries.

    Without --older-than every thread (or each --thread) keeps only its newest checkpoint
    per namespace, with that checkpoint's pending writes. Channel values no remaining
    checkpoint uses are deleted too.

    Expired working-memory sessions are never read as active anyway; --working-memory
    marks them inactive (--delete removes them, with the sessions already inactive).

    Checkpoints are counted first and the deletion confirmed (--yes: without asking;
    --dry-run: only count); a progress bar shows on a terminal.

    Example:

        agentmem prune --older-than 30d --dry-run --url postgresql://localhost/mydb

        agentmem prune --older-than 30d --yes --url postgresql://localhost/mydb

        agentmem prune --user alice --thread support-42 --url sqlite:///memory.sqlite3

        agentmem prune --working-memory --delete --kv --url postgresql://localhost/mydb
    """
    if working_memory or kv:
        if older_than or threads or not keep_latest:
            raise click.UsageError(
                "--working-memory and --kv prune expired rows; they do not combine with "
                "--older-than, --thread or --no-keep-latest"
            )
        prune_expired(
            url, schema, users, working_memory, delete, kv, batch_size, dry_run, yes, as_json
        )
        return
    if delete:
        raise click.UsageError("--delete needs --working-memory")
    from .checkpoint import CheckpointSaver

    age = parse_duration(older_than) if older_than else None
    if age is not None and threads:
        raise click.UsageError(
            "--thread prunes to the latest checkpoint; it does not combine with --older-than"
        )
    if age is None and not keep_latest:
        raise click.UsageError("--no-keep-latest needs --older-than")
    engine = open_engine(url, schema)
    with engine:
        saver = CheckpointSaver(engine)
        tenants = list(users) or run(saver.list_users)
        cutoff = datetime.now(timezone.utc) - age if age is not None else None
        # Units of work: one tenant (by age), or up to 100 threads of a tenant.
        work: list[tuple[str, list[str] | None]] = []
        for user in tenants:
            if cutoff is not None:
                work.append((user, None))
            else:
                ids = list(threads) or saver.list_threads(user_id=user)
                work += [(user, ids[i : i + 100]) for i in range(0, len(ids), 100)]

        def prune_unit(unit: tuple[str, list[str] | None], dry: bool) -> int:
            user, ids = unit
            if ids is None:
                assert cutoff is not None
                return saver.prune_before(
                    cutoff, keep_latest=keep_latest, user_id=user, dry_run=dry
                )
            return saver.prune(ids, strategy="keep_latest", user_id=user, dry_run=dry)

        count = sum(prune_unit(unit, True) for unit in work)
        deleted = 0
        if not dry_run and count:
            confirm(
                f"Delete {_plural(count, 'checkpoint')} of {_plural(len(tenants), 'tenant')}?", yes
            )
            with progress(work, "pruning checkpoints") as bar:
                for unit in bar:
                    deleted += prune_unit(unit, False)
    if as_json:
        key = "would_delete" if dry_run else "deleted"
        click.echo(
            json.dumps(
                {key: count if dry_run else deleted, "tenants": len(tenants), "dry_run": dry_run}
            )
        )
        return
    verb, n = ("would delete", count) if dry_run else ("deleted", deleted)
    click.echo(f"{verb} {_plural(n, 'checkpoint')} of {_plural(len(tenants), 'tenant')}")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def prune_expired(
    url: str | None,
    schema: str,
    users: tuple[str, ...],
    working_memory: bool,
    delete: bool,
    kv: bool,
    batch_size: int,
    dry_run: bool = False,
    yes: bool = False,
    as_json: bool = False,
) -> None:
    """``agentmem prune --working-memory / --kv``: per tenant, in batches. ``dry_run``
    names the tenants that have such rows; deleting asks first unless ``yes``."""
    from . import kv as kv_module
    from . import working_memory as wm_module
    from ._encoding.keys import encode_key

    engine = open_engine(url, schema)
    report: dict[str, Any] = {"dry_run": dry_run}
    with engine:
        wm_tenants = (
            list(users)
            or run(lambda: plan_run(engine, None, wm_module.users_to_clean_plan(delete)))
            if working_memory
            else []
        )
        kv_tenants = (
            list(users) or run(lambda: plan_run(engine, None, kv_module.users_with_expired_plan()))
            if kv
            else []
        )
        if dry_run:
            lines = []
            if working_memory:
                report["working_memory_tenants"] = wm_tenants
                lines.append(f"would clean working memory of {_plural(len(wm_tenants), 'tenant')}")
            if kv:
                report["kv_tenants"] = kv_tenants
                lines.append(f"would delete expired keys of {_plural(len(kv_tenants), 'tenant')}")
            click.echo(json.dumps(report) if as_json else "\n".join(lines))
            return
        if (delete and wm_tenants) or kv_tenants:
            what = " and ".join(
                w
                for w, on in (
                    ("expired or ended working-memory sessions", delete and wm_tenants),
                    ("expired keys", kv_tenants),
                )
                if on
            )
            confirm(
                f"Delete {what} of {_plural(len(set(wm_tenants) | set(kv_tenants)), 'tenant')}?",
                yes,
            )
        if working_memory:
            changed = 0
            with progress(wm_tenants, "working memory") as bar:
                for user in bar:
                    uid = encode_key(user)
                    plan = wm_module.cleanup_plan(uid, delete, batch_size)
                    changed += run(functools.partial(plan_run, engine, uid, plan))
            what = "expired or ended" if delete else "expired"
            report["working_memory"] = {
                "deleted" if delete else "deactivated": changed,
                "tenants": len(wm_tenants),
            }
            if not as_json:
                click.echo(
                    f"{'deleted' if delete else 'deactivated'} "
                    f"{_plural(changed, what + ' working-memory session')} of "
                    f"{_plural(len(wm_tenants), 'tenant')}"
                )
        if kv:
            deleted = 0
            with progress(kv_tenants, "expired keys") as bar:
                for user in bar:
                    uid = encode_key(user)
                    plan = kv_module.cleanup_plan(uid, None, batch_size)
                    deleted += run(functools.partial(plan_run, engine, uid, plan))
            report["kv"] = {"deleted": deleted, "tenants": len(kv_tenants)}
            if not as_json:
                click.echo(
                    f"deleted {_plural(deleted, 'expired key')} of {_plural(len(kv_tenants), 'tenant')}"
                )
    if as_json:
        click.echo(json.dumps(report))


# --- drop-in: checkpoint tenancy ---


@main.group()
def checkpoints() -> None:
    """LangGraph checkpoints: move threads between tenants.

    Example:

        agentmem checkpoints move-user alice --to default --url sqlite:///memory.sqlite3
    """


@checkpoints.command("move-user")
@database_options
@click.argument("from_user")
@click.option("--to", "to_user", default="default", show_default=True, help="Target tenant.")
@click.option("--thread", "threads", multiple=True, help="Only these threads (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show what would move; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def move_user(
    url: str | None,
    schema: str,
    from_user: str,
    to_user: str,
    threads: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
) -> None:
    """Move FROM_USER's checkpoint threads under another tenant (default "default"), e.g.
    threads an earlier version stored under configurable["user_id"]. Idempotent.

    Example:

        agentmem checkpoints move-user alice --dry-run --url sqlite:///memory.sqlite3
    """
    from .checkpoint import CheckpointSaver

    engine = open_engine(url, schema)
    with engine:
        saver = CheckpointSaver(engine, user_id=to_user)
        found = run(lambda: saver.list_threads(user_id=from_user))
        selected = [t for t in found if not threads or t in threads]
        moved = 0
        if not dry_run and selected:
            moved = run(lambda: saver.move_threads(from_user, thread_ids=selected))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "from": from_user,
                    "to": to_user,
                    "threads": selected,
                    "dry_run": dry_run,
                    "checkpoints_moved": moved,
                }
            )
        )
        return
    verb = "would move" if dry_run else "moved"
    detail = "" if dry_run else f" ({_plural(moved, 'checkpoint')})"
    click.echo(
        f"{verb} {_plural(len(selected), 'thread')} from {from_user!r} to {to_user!r}{detail}"
    )


# --- data lifecycle: export, import, forget, retention, backup, restore ---


def _progress(total: int, label: str) -> Any:
    """A progress bar on stderr (stdout stays for the result, e.g. --json)."""
    return click.progressbar(length=max(total, 1), label=label, file=sys.stderr, show_pos=True)


def _print_counts(counts: dict[str, Any], as_json: bool, verb: str, extra: dict[str, Any]) -> None:
    if as_json:
        click.echo(json.dumps({**extra, "tables": counts}))
        return
    done = sum(v for v in counts.values() if v)
    click.echo(f"{verb} {_plural(done, 'row')}")
    for name, n in counts.items():
        if n:
            click.echo(f"  {name:<28} {n:>10}")


@main.command("export")
@database_options
@click.argument("user_id")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def export_user(url: str | None, schema: str, user_id: str, path: str, as_json: bool) -> None:
    """Write every row of USER_ID to the archive PATH (a zip of JSON lines per table).

    Example:

        agentmem export alice alice.zip --url sqlite:///memory.sqlite3
    """
    engine = open_engine(url, schema)
    with engine:
        total = sum(run(lambda: engine.count_user(user_id)).values())
        with _progress(total, f"exporting {user_id}") as bar:
            counts = run(
                lambda: engine.export_user(user_id, path, progress=lambda _t, n: bar.update(n))
            )
    _print_counts(counts, as_json, f"exported to {path}:", {"user_id": user_id, "path": path})


@main.command("import")
@database_options
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--user", "user_id", default=None, help="Import as this user (default: the archive's)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def import_user(
    url: str | None, schema: str, path: str, user_id: str | None, as_json: bool
) -> None:
    """Load an archive written by `agentmem export` (into SQLite or Postgres, of the same or
    a newer schema version), in one transaction. Moves a user from the SQLite dev file to
    Postgres: export there, import here.

    Example:

        agentmem import alice.zip --url postgresql://localhost/mydb
    """
    from ._core.lifecycle import read_manifest

    try:
        manifest = read_manifest(path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    total = sum(int(t["rows"]) for t in manifest["tables"])
    engine = open_engine(url, schema)
    with engine:
        with _progress(total, "importing") as bar:
            try:
                counts = run(
                    lambda: engine.import_user(
                        path, user_id=user_id, progress=lambda _t, n: bar.update(n)
                    )
                )
            except ValueError as exc:
                raise click.ClickException(str(exc)) from exc
    _print_counts(counts, as_json, "imported", {"path": path})


@main.command("forget")
@database_options
@click.argument("user_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def forget_user(url: str | None, schema: str, user_id: str, yes: bool, as_json: bool) -> None:
    """Delete every row of USER_ID in every table, in one transaction.

    Example:

        agentmem forget alice --yes --url postgresql://localhost/mydb
    """
    engine = open_engine(url, schema)
    with engine:
        total = sum(run(lambda: engine.count_user(user_id)).values())
        if not yes:
            click.confirm(
                f"delete {_plural(total, 'row')} of user {user_id!r} for good?",
                abort=True,
                err=True,
            )
        counts = run(lambda: engine.forget_user(user_id))
    _print_counts(counts, as_json, f"forgot {user_id!r}:", {"user_id": user_id})


@main.command()
@database_options
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def retention(url: str | None, schema: str, dry_run: bool, batch_size: int, as_json: bool) -> None:
    """Apply the default retention policy to every tenant, in short batches: sessions
    ended over 90 days ago (completed, failed, abandoned), events over 30 days old with
    importance under 0.3, failed sync-log rows over 7 days old, checkpoints over 30 days
    old (each thread keeps its newest), expired and ended working memory.

    Example:

        agentmem retention --dry-run --url postgresql://localhost/mydb
    """
    from .retention import Retention

    engine = open_engine(url, schema)
    with engine:
        counts = run(lambda: Retention(engine, {"batch_size": batch_size}).apply(dry_run=dry_run))
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "rules": counts}))
        return
    verb = "would delete" if dry_run else "deleted"
    for rule, n in counts.items():
        click.echo(
            f"  {rule:<16} " + ("skipped (not in this schema)" if n is None else f"{verb} {n}")
        )


@main.command()
@database_options
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def backup(url: str | None, schema: str, path: str, as_json: bool) -> None:
    """Back the memory database up to PATH: `pg_dump --format=custom --schema` on
    Postgres, the online backup API on SQLite.

    Example:

        agentmem backup memory.dump --url postgresql://localhost/mydb
    """
    from ._backends.backup import backup as do_backup

    engine = open_engine(url, schema)
    with engine:
        try:
            run(lambda: do_backup(engine, path))
        except (RuntimeError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({"url": shown_url(engine), "backup": path}))
    else:
        click.echo(f"backed up {shown_url(engine)} to {path}")


@main.command()
@database_options
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def restore(url: str | None, schema: str, path: str, as_json: bool) -> None:
    """Restore a backup of `agentmem backup` into a database holding no memory tables yet.

    Example:

        agentmem restore memory.dump --url postgresql://localhost/fresh
    """
    from ._backends.backup import restore as do_restore

    engine = open_engine(url, schema, create=True)  # restoring makes the database
    with engine:
        try:
            run(lambda: do_restore(engine, path))
        except (RuntimeError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
        version = engine.schema_version()
    if as_json:
        click.echo(
            json.dumps({"url": shown_url(engine), "restored": path, "schema_version": version})
        )
    else:
        click.echo(f"restored {path} into {shown_url(engine)}; schema version {version}")


# --- hybrid mode (sync) ---


def _sync_options(func: F) -> F:
    func = click.option(
        "--remote",
        envvar="AGENTMEM_REMOTE_URL",
        help="The canonical Postgres (postgresql://...). Default: $AGENTMEM_REMOTE_URL.",
    )(func)
    return database_options(func)


def open_hybrid(url: str | None, remote: str | None, schema: str, **options: Any) -> Any:
    from .hybrid import connect_hybrid

    if not remote:
        raise click.UsageError(
            "give the canonical Postgres: --remote postgresql://... (or $AGENTMEM_REMOTE_URL)"
        )

    if url is None or not url.startswith("sqlite:"):
        raise click.BadParameter(
            f"expected the local cache as sqlite:///file.db, got {url!r}", param_hint="--url"
        )
    try:
        engine = connect_hybrid(url, remote, schema=schema, **options)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    engine.migrate()
    return engine


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.now(timezone.utc) - parse_duration(text)
    except click.BadParameter:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"expected a duration (30m, 12h, 2d) or an ISO date, got {text!r}",
            param_hint="--since",
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@main.group(invoke_without_command=True)
@_sync_options
@click.option("--daemon", is_flag=True, help="Keep syncing every --interval seconds.")
@click.option("--interval", default=300.0, show_default=True, help="Seconds between runs.")
@click.option("--session-id", help="Only this session's writes (the rest stay queued).")
@click.option("--since", help="Only writes made since: a duration (12h, 2d) or an ISO date.")
@click.option("--min-importance", type=float, help="Keep rows whose importance is below it local.")
@click.option("--runs", type=int, hidden=True, help="With --daemon: stop after this many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print each run's report as JSON.")
@click.pass_context
def sync(
    ctx: click.Context,
    url: str | None,
    schema: str,
    remote: str | None,
    daemon: bool,
    interval: float,
    session_id: str | None,
    since: str | None,
    min_importance: float | None,
    runs: int | None,
    as_json: bool,
) -> None:
    """Deliver a hybrid cache's outbox to Postgres (once, or --daemon).

    Example: agentmem sync --url sqlite:///cache.db --remote postgresql://db/mem --min-importance 0.3
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = (url, schema, remote)
        return
    import time

    after = _since(since)
    engine = open_hybrid(url, remote, schema)
    done = 0
    with contextlib.closing(engine):
        while True:
            depth = engine.outbox_depth()
            with click.progressbar(
                length=depth, label="syncing", file=sys.stderr, show_pos=True
            ) as bar:
                try:
                    report = engine.sync(
                        session_id=session_id,
                        since=after,
                        min_importance=min_importance,
                        progress=bar.update,
                    )
                except Exception as exc:  # in the sync log; the daemon retries
                    if not daemon:
                        raise click.ClickException(str(exc)) from exc
                    click.echo(f"run failed: {exc}", err=True)
                    report = None
            if report is not None and as_json:
                click.echo(json.dumps({
                    "run_id": report.run_id, "status": report.status,
                    "events_synced": report.events_synced, "rows_synced": report.rows_synced,
                    "batches": report.batches, "queued": engine.outbox_depth(),
                }))  # fmt: skip
            elif report is not None:
                left = engine.outbox_depth()
                click.echo(
                    f"run {report.run_id}: {report.status}, {_plural(report.events_synced, 'event')}"
                    f" and {_plural(report.rows_synced, 'row')} synced in "
                    f"{_plural(report.batches, 'batch')}, {left} queued"
                )
            done += 1
            if not daemon or (runs is not None and done >= runs):
                return
            time.sleep(interval)


@sync.command("status")
@click.option("--runs", default=5, show_default=True, help="How many of the last runs to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def sync_status(obj: tuple[str | None, str, str | None], runs: int, as_json: bool) -> None:
    """Outbox depth, lag and the last runs of a hybrid cache.

    Example: agentmem sync --url sqlite:///cache.db --remote postgresql://db/mem status
    """
    url, schema, remote = obj
    engine = open_hybrid(url, remote, schema)
    with contextlib.closing(engine):
        info = engine.status(runs)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    click.echo(f"outbox: {_plural(info['outbox'], 'row')} queued, lag {info['lag_seconds']} s")
    for r in info["runs"]:
        error = f" ({r['error'].splitlines()[0]})" if r["error"] else ""
        click.echo(
            f"run {r['run_id']} {r['started_at']}: {r['status']}, "
            f"{_plural(r['events_synced'], 'event')}, {_plural(r['rows_synced'], 'row')}{error}"
        )


# --- skills registry and agent log (issue 14) ---


def _user_option(func: F) -> F:
    return click.option(
        "--user", "user_id", default="default", show_default=True, help="The tenant (user_id)."
    )(func)


@main.group()
def skills() -> None:
    """Skills (MCP tool definitions) and the agents bound to them.

    Example:

        agentmem skills load examples/skills.yaml --user acme
    """


def _registry(url: str | None, schema: str, user_id: str) -> tuple[Engine, Any]:
    from .skills import SkillRegistry

    engine = open_engine(url, schema)
    return engine, SkillRegistry(engine, user_id=user_id)


def _skill_errors(action: Callable[[], Any]) -> Any:
    try:
        return run(action)
    except (ValueError, TypeError, LookupError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from exc


@skills.command("load")
@database_options
@_user_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def skills_load(url: str | None, schema: str, user_id: str, file: str, as_json: bool) -> None:
    """Register the skills and bindings of a YAML or JSON file.

    Example:

        agentmem skills load examples/skills.yaml --user acme
    """
    from .skills import read_skills_file

    document = _skill_errors(lambda: read_skills_file(file))
    engine, registry = _registry(url, schema, user_id)
    with engine:
        n_skills, n_bindings = _skill_errors(lambda: registry.load(document))
    if as_json:
        click.echo(json.dumps({"skills": n_skills, "bindings": n_bindings}))
    else:
        click.echo(f"loaded {_plural(n_skills, 'skill')} and {_plural(n_bindings, 'binding')}")


@skills.command("list")
@database_options
@_user_option
@click.option("--agent", default=None, help="Only this agent's usable skills, in priority order.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def skills_list(
    url: str | None, schema: str, user_id: str, agent: str | None, as_json: bool
) -> None:
    """List skills (latest versions), or an agent's skills in priority order.

    Example:

        agentmem skills list --user acme --agent devops_engineer
    """
    engine, registry = _registry(url, schema, user_id)
    with engine:
        if agent is None:
            found = _skill_errors(registry.list_skills)
            rows = [
                {
                    "name": k.name,
                    "version": k.version,
                    "category": k.category,
                    "active": k.is_active,
                    "description": k.description,
                }
                for k in found
            ]
        else:
            bound = _skill_errors(lambda: registry.skills_for(agent))
            rows = [
                {
                    "priority": b.priority,
                    "skill": b.skill_name,
                    "version": b.skill.version if b.skill else None,
                    "category": b.skill.category if b.skill else None,
                    "config": json.dumps(b.config, ensure_ascii=False),
                }
                for b in bound
            ]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        click.echo(format_table(rows))


@skills.command("bind")
@database_options
@_user_option
@click.argument("agent")
@click.argument("skill")
@click.option("--priority", default=0, show_default=True, type=int, help="Higher first.")
@click.option("--disabled", is_flag=True, help="Bind it disabled.")
@click.option("--config", "config_json", default=None, help="The binding's config, a JSON object.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def skills_bind(
    url: str | None,
    schema: str,
    user_id: str,
    agent: str,
    skill: str,
    priority: int,
    disabled: bool,
    config_json: str | None,
    as_json: bool,
) -> None:
    """Let AGENT use SKILL (binding it again replaces the binding).

    Example:

        agentmem skills bind devops_engineer log_analysis --priority 90 --user acme
    """
    try:
        config = json.loads(config_json) if config_json is not None else None
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--config") from exc
    engine, registry = _registry(url, schema, user_id)
    with engine:
        _skill_errors(
            lambda: registry.bind(
                agent, skill, enabled=not disabled, priority=priority, config=config
            )
        )
    if as_json:
        click.echo(
            json.dumps(
                {"agent": agent, "skill": skill, "priority": priority, "enabled": not disabled}
            )
        )
    else:
        click.echo(
            f"bound {agent} -> {skill} (priority {priority}{', disabled' if disabled else ''})"
        )


@skills.command("unbind")
@database_options
@_user_option
@click.argument("agent")
@click.argument("skill")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def skills_unbind(
    url: str | None, schema: str, user_id: str, agent: str, skill: str, as_json: bool
) -> None:
    """Remove AGENT's binding to SKILL.

    Example:

        agentmem skills unbind devops_engineer log_analysis --user acme
    """
    engine, registry = _registry(url, schema, user_id)
    with engine:
        removed = _skill_errors(lambda: registry.unbind(agent, skill))
    if as_json:
        click.echo(json.dumps({"agent": agent, "skill": skill, "removed": bool(removed)}))
    else:
        click.echo(
            f"unbound {agent} -> {skill}" if removed else f"{agent} was not bound to {skill}"
        )


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows as an aligned text table (columns of the first row); ``(no rows)`` when empty."""
    if not rows:
        return "(no rows)"
    columns = list(rows[0])

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, datetime):
            return value.isoformat(timespec="seconds")
        return str(value)

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


@main.command()
@database_options
@click.option(
    "--user", "user_id", default=None, help="Only this tenant's rows (default: every tenant)."
)
@click.option(
    "--view",
    "views",
    multiple=True,
    help="Only these views (repeatable); default: all five.",
)
@click.option("--limit", default=20, show_default=True, help="Most rows per view.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def stats(
    url: str | None,
    schema: str,
    user_id: str | None,
    views: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """Print the analytics views (agent performance, skill usage, important events,
    hourly activity, importance distribution) as tables.

    Example:

        agentmem stats --user acme --view agent_performance_summary
    """
    from .analytics import VIEWS, Analytics

    unknown = [v for v in views if v not in VIEWS]
    if unknown:
        raise click.BadParameter(
            f"unknown view {unknown[0]!r}: expected one of {', '.join(VIEWS)}", param_hint="--view"
        )
    engine = open_engine(url, schema)
    with engine:
        analytics = Analytics(engine, user_id=user_id)
        report = run(lambda: analytics.report(limit=limit))
    chosen = {name: report[name] for name in (views or VIEWS)}
    if as_json:
        click.echo(json.dumps(chosen, indent=2, ensure_ascii=False, default=str))
        return
    for i, (name, rows) in enumerate(chosen.items()):
        if i:
            click.echo("")
        click.echo(f"== {name} ==")
        click.echo(format_table(rows))


# --- tenant isolation: the application role and the Citus DDL ---


@main.command("grant-app-role")
@database_options
@click.argument("name")
@click.option(
    "--password-env",
    metavar="VAR",
    help="Set the role's password from this environment variable (else it is left as it is).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def grant_app_role_command(
    url: str | None, schema: str, name: str, password_env: str | None, as_json: bool
) -> None:
    """Create or update NAME, the role an application connects as under row-level
    security: LOGIN, no SUPERUSER or BYPASSRLS, owning nothing, with exactly the
    privileges the package needs on the schema's tables. Run it as a superuser (or a
    role with CREATEROLE) after `agentmem migrate`, and again after a migration adds
    tables. The application then connects as NAME with row_level_security=True.

    Example:

        AGENTMEM_APP_PASSWORD=... agentmem grant-app-role agentmem_app --password-env AGENTMEM_APP_PASSWORD
    """
    import os

    from .tenancy import grant_app_role

    password = None
    if password_env is not None:
        password = os.environ.get(password_env)
        if not password:
            raise click.BadParameter(
                f"${password_env} is not set or empty", param_hint="--password-env"
            )
    engine = open_engine(url, schema)
    with engine:
        try:
            grants = run(lambda: grant_app_role(engine, name, password=password))
        except (ValueError, RuntimeError, NotImplementedError) as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({"role": name, "schema": schema, "grants": dict(grants)}))
        return
    for table, privileges in grants:
        click.echo(f"  {table:<28} {privileges}")
    click.echo(f"role {name}: {len(grants)} tables granted in schema {schema}")


@main.command("citus-ddl")
@click.option(
    "--schema", default="agent_mem", show_default=True, help="Postgres schema of the tables."
)
@click.option("--json", "as_json", is_flag=True, help="Print the statements as a JSON list.")
def citus_ddl_command(schema: str, as_json: bool) -> None:
    """Print the Citus statements distributing the schema by user_id (reference tables
    replicated), from the table catalog. Run them on the coordinator after migrating.

    Example:

        agentmem citus-ddl | psql postgresql://coordinator/mydb
    """
    from ._core.tenancy import citus_statements
    from .dialects import PostgresDialect, check_identifier

    try:
        dialect = PostgresDialect(check_identifier(schema, "schema"))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--schema") from exc
    statements = list(citus_statements(dialect))
    if as_json:
        click.echo(json.dumps(statements))
        return
    for statement in statements:
        click.echo(statement + ";")


# --- importers: langchain-postgres and LangGraph's Postgres savers (issue 12) ---


def _import_options(func: F) -> F:
    for option in reversed(
        [
            click.option(
                "--to",
                "to",
                envvar="AGENTMEM_URL",
                help="Target database URL. Default: $AGENTMEM_URL, else the local SQLite file.",
            ),
            click.option(
                "--schema",
                default="agent_mem",
                show_default=True,
                help="Target Postgres schema of the tables.",
            ),
            click.option(
                "--user-id",
                "user_id",
                default="default",
                show_default=True,
                help="The tenant the data is imported for.",
            ),
            click.option(
                "--source-schema",
                default="public",
                show_default=True,
                help="Schema of the source tables (PostgresSaver's: the URL's search_path).",
            ),
            click.option("--dry-run", is_flag=True, help="Only count what would be written."),
            json_option,
        ]
    ):
        func = option(func)
    return func


class _Bar:
    """Progress of one import on stderr, drawn only on a terminal (as :func:`progress`)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.shown = 0

    def __call__(self, done: int, total: int) -> None:
        if not interactive():
            return
        if self.bar is None:
            self.bar = click.progressbar(
                length=max(total, 1), label=self.label, file=sys.stderr, show_pos=True
            )
            self.bar.__enter__()
        self.bar.update(done - self.shown)
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _run_imports(
    source: str,
    to: str | None,
    schema: str,
    user_id: str,
    source_schema: str,
    dry_run: bool,
    as_json: bool,
    steps: list[tuple[str, Any]],
) -> None:
    from .importers import Importer, MissingSourceError

    engine = open_engine(to, schema)
    try:
        importer = Importer(source, to=engine, user_id=user_id, source_schema=source_schema)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="URL_OR_DSN") from exc
    reports = []
    with engine, importer:
        for label, step in steps:
            bar = _Bar(label)
            try:
                reports.append(run(functools.partial(step, importer, bar)))
            except (MissingSourceError, ValueError, TypeError) as exc:
                raise click.ClickException(str(exc).strip("'\"")) from exc
            finally:
                bar.close()
    if as_json:
        click.echo(json.dumps({"user_id": user_id, "dry_run": dry_run,
                               "imports": [r.as_dict() for r in reports]}))  # fmt: skip
        return
    verb = "would write" if dry_run else "wrote"
    for r in reports:
        writes = f", {_plural(r.writes, 'pending write')}" if r.kind == "checkpoints" else ""
        click.echo(
            f"{r.kind} {r.source}: {r.found} found, {verb} {r.written}{writes}, "
            f"{r.unchanged} unchanged ({r.groups} {'group' if r.groups == 1 else 'groups'})"
        )


@main.group("import-from")
def import_from() -> None:
    """Bring data over from langchain-postgres or LangGraph's Postgres savers
    (idempotent: a second run writes nothing).

    Example:

        agentmem import-from langchain-postgres postgresql://localhost/app --pgvector --to sqlite:///memory.sqlite3
    """


@import_from.command("langchain-postgres")
@click.argument("source", metavar="URL_OR_DSN")
@click.option(
    "--vectorstore-table",
    "tables",
    multiple=True,
    help="A PGVectorStore table (PGEngine.init_vectorstore_table); repeatable. Its collection has the table's name.",
)
@click.option("--pgvector", is_flag=True, help="The legacy PGVector collections (every one).")
@click.option(
    "--pgvector-collection",
    "collections",
    multiple=True,
    help="Only this legacy PGVector collection (repeatable; implies --pgvector).",
)
@click.option(
    "--chat-table",
    "chat_tables",
    multiple=True,
    help="A PostgresChatMessageHistory table (repeatable).",
)
@click.option(
    "--session-id",
    "session_ids",
    multiple=True,
    help="With --chat-table: only this session (repeatable).",
)
@click.option(
    "--distance",
    type=click.Choice(["cosine", "l2", "inner_product"]),
    default="cosine",
    show_default=True,
    help="Distance of the target vector collections (the source store's distance_strategy).",
)
@_import_options
def import_langchain_postgres(
    source: str,
    tables: tuple[str, ...],
    pgvector: bool,
    collections: tuple[str, ...],
    chat_tables: tuple[str, ...],
    session_ids: tuple[str, ...],
    distance: Any,
    to: str | None,
    schema: str,
    user_id: str,
    source_schema: str,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Import PGVectorStore tables, legacy PGVector collections and
    PostgresChatMessageHistory tables from URL_OR_DSN into MemoryVectorStore
    collections and ChatMessageHistory sessions of --user-id.

    Example:

        agentmem import-from langchain-postgres postgresql://localhost/app --vectorstore-table my_docs --chat-table message_store --user-id alice --dry-run
    """
    if session_ids and not chat_tables:
        raise click.UsageError("--session-id needs --chat-table")
    steps: list[tuple[str, Any]] = []
    for table in tables:
        steps.append((f"vectors {table}", lambda imp, bar, t=table: imp.vectorstore(
            t, distance=distance, dry_run=dry_run, progress=bar)))  # fmt: skip
    if pgvector or collections:
        steps.append(("PGVector", lambda imp, bar: imp.pgvector(
            list(collections) or None, distance=distance, dry_run=dry_run, progress=bar)))  # fmt: skip
    for table in chat_tables:
        steps.append((f"chat {table}", lambda imp, bar, t=table: imp.chat_history(
            t, list(session_ids) or None, dry_run=dry_run, progress=bar)))  # fmt: skip
    if not steps:
        raise click.UsageError(
            "name what to import: --vectorstore-table TABLE, --pgvector (or "
            "--pgvector-collection NAME) and/or --chat-table TABLE"
        )
    _run_imports(source, to, schema, user_id, source_schema, dry_run, as_json, steps)


@import_from.command("langgraph-postgres")
@click.argument("source", metavar="URL_OR_DSN")
@click.option("--thread", "threads", multiple=True, help="Only this thread (repeatable).")
@click.option(
    "--checkpoints/--no-checkpoints",
    default=True,
    show_default=True,
    help="Import the PostgresSaver threads.",
)
@click.option(
    "--store",
    is_flag=True,
    help="Also import the PostgresStore items (without their embeddings).",
)
@_import_options
def import_langgraph_postgres(
    source: str,
    threads: tuple[str, ...],
    checkpoints: bool,
    store: bool,
    to: str | None,
    schema: str,
    user_id: str,
    source_schema: str,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Import the threads of a LangGraph PostgresSaver (checkpoints, blobs and pending
    writes of every namespace) and, with --store, the items of a PostgresStore (their
    embeddings are not copied: items are stored without vectors) into CheckpointSaver
    threads and LangGraphStore items of --user-id.

    Example:

        agentmem import-from langgraph-postgres postgresql://localhost/app --store --to postgresql://localhost/mem
    """
    steps: list[tuple[str, Any]] = []
    if checkpoints:
        steps.append(("checkpoints", lambda imp, bar: imp.checkpoints(
            list(threads) or None, dry_run=dry_run, progress=bar)))  # fmt: skip
    if store:
        steps.append(("store items", lambda imp, bar: imp.store_items(
            dry_run=dry_run, progress=bar)))  # fmt: skip
    if not steps:
        raise click.UsageError("nothing to import: drop --no-checkpoints or add --store")
    _run_imports(source, to, schema, user_id, source_schema, dry_run, as_json, steps)


# --- monitoring: Prometheus metrics and the operators' queries ---


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise click.ClickException(
            "`agentmem metrics` needs prometheus_client: pip install 'langchain-agentmem[monitoring]'"
        ) from exc
    return prometheus_client


def _tenant_errors(action: Callable[[], Any]) -> Any:
    from ._core.tenancy import TenantRequiredError

    try:
        return run(action)
    except TenantRequiredError as exc:
        raise click.ClickException(f"{exc} (or pass --user)") from exc


@main.command("metrics")
@database_options
@click.option(
    "--user",
    "user_id",
    default=None,
    help="Only this tenant's operation metrics (default: every tenant, aggregated).",
)
@click.option(
    "--serve",
    "port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve /metrics on this port until interrupted (0: any free port).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@json_option
def metrics_command(
    url: str | None, schema: str, user_id: str | None, port: int | None, host: str, as_json: bool
) -> None:
    """Print the Prometheus metrics once (operation latency, errors and results per
    memory type, table and index sizes, sync health), or serve them with --serve.

    Operation metrics are what an engine connected with metrics=True recorded.

    Example:

        agentmem metrics --serve 9464 --url postgresql://monitor@db/app
    """
    if as_json:  # what the collector would expose, as one JSON object; no prometheus_client
        if port is not None:
            raise click.UsageError("--json prints once; it does not go with --serve")
        from .monitoring import Monitor

        with open_engine(url, schema) as engine:
            snap = _tenant_errors(lambda: Monitor(engine, user_id=user_id).snapshot())
        click.echo(json.dumps(snap, default=str))
        return
    prometheus = _prometheus()
    from .monitoring import MemoryCollector

    engine = open_engine(url, schema)
    registry = prometheus.CollectorRegistry()
    registry.register(MemoryCollector(engine, user_id=user_id))
    if port is None:
        with engine:
            text = _tenant_errors(lambda: prometheus.generate_latest(registry))
        click.echo(text.decode(), nl=False)
        return
    _tenant_errors(lambda: MemoryCollector(engine, user_id=user_id).collect())  # fail early
    server, thread = prometheus.start_http_server(port, addr=host, registry=registry)
    click.echo(f"serving http://{host}:{server.server_port}/metrics (Ctrl-C stops)", err=True)
    try:
        thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        engine.close()


@main.group()
def monitor() -> None:
    """The operators' queries: sync health, database size, index usage.

    Example:

        agentmem monitor db-size --url postgresql://monitor@db/app
    """


def _monitor(url: str | None, schema: str) -> tuple[Engine, Any]:
    from .monitoring import Monitor

    engine = open_engine(url, schema)
    return engine, Monitor(engine)


def _size(n: int | None) -> str:
    if n is None:
        return "n/a"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)  # pragma: no cover


@monitor.command("sync-health")
@database_options
@click.option(
    "--hours",
    default=24.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Window of the run counts.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def monitor_sync_health(url: str | None, schema: str, hours: float, as_json: bool) -> None:
    """Hybrid sync per cache (source): runs by status in the last --hours, the last run
    and the last success; on a SQLite cache the outbox depth and lag, on Postgres each
    cache's last delivery.

    Example:

        agentmem monitor sync-health --hours 1 --url sqlite:///cache.db
    """
    engine, mon = _monitor(url, schema)
    with engine:
        health = run(lambda: mon.sync_health(hours=hours))
    if as_json:
        click.echo(json.dumps(health, indent=2, default=str))
        return
    if health["outbox"] is not None:
        click.echo(f"outbox: {health['outbox']} writes queued, lag {health['lag_seconds']} s")
    columns = ("source", "runs", "ok", "failed", "interrupted", "rows_synced", "avg_seconds")
    rows = [
        {
            **{c: s[c] for c in columns},
            "last_status": s["last_status"],
            "last_ok_at": s["last_ok_at"],
        }
        for s in health["sources"]
    ]
    click.echo(format_table(rows) if rows else "no sync runs logged")


@monitor.command("db-size")
@database_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def monitor_db_size(url: str | None, schema: str, as_json: bool) -> None:
    """Bytes of the database and of each table of the catalog (data, indexes, total),
    largest first. SQLite measures pages with its dbstat table (n/a without it).

    Example:

        agentmem monitor db-size --json
    """
    engine, mon = _monitor(url, schema)
    with engine:
        size = run(mon.db_size)
    if as_json:
        click.echo(json.dumps(size, indent=2))
        return
    click.echo(f"database: {_size(size['database_bytes'])}")
    rows = [
        {
            "table": t["table"],
            "data": _size(t["table_bytes"]),
            "indexes": _size(t["index_bytes"]),
            "total": _size(t["total_bytes"]),
        }
        for t in size["tables"]
    ]
    click.echo(format_table(rows))


@monitor.command("index-usage")
@database_options
@click.option("--unused", is_flag=True, help="Only indexes never scanned (Postgres).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def monitor_index_usage(url: str | None, schema: str, unused: bool, as_json: bool) -> None:
    """Every index of the catalog's tables with its size and, on Postgres, scans and
    tuples read and fetched since the statistics were reset (SQLite keeps no counters:
    n/a there).

    Example:

        agentmem monitor index-usage --unused --url postgresql://monitor@db/app
    """
    engine, mon = _monitor(url, schema)
    with engine:
        indexes = run(mon.index_usage)
    if unused:
        indexes = [i for i in indexes if i["scans"] == 0]
    if as_json:
        click.echo(json.dumps(indexes, indent=2))
        return
    rows = [
        {
            **{k: i[k] for k in ("table", "index")},
            **{
                k: "n/a" if i[k] is None else i[k]
                for k in ("scans", "tuples_read", "tuples_fetched")
            },
            "size": _size(i["bytes"]),
        }
        for i in indexes
    ]
    click.echo(format_table(rows))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
