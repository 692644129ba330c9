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
from .dialects import Body, One
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
            row = yield One("SELECT count(*) FROM {" + table.name + "}")  # noqa: S608 (catalog names)
            counts[table.name] = int(row[0])
    return counts


def _counts_plan(engine: Engine) -> Plan[dict[str, int]]:
    return (yield Atomic(_counts(engine), readonly=True, user_id=None))


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
