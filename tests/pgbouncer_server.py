"""A real PgBouncer (Debian's ``pgbouncer``) in transaction mode, started for a test or a
benchmark in front of a Postgres URL: config and auth file in a fresh directory, a free
port, stopped on exit. As root it runs as ``nobody`` (PgBouncer refuses to run as root).

    with pgbouncer(url, pool_size=4) as bouncer_url:
        ...  # connect with prepare_threshold=None (transaction mode)
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote as _quote

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def quote_url(text: str) -> str:
    return _quote(text, safe="")


def available() -> bool:
    return os.path.exists(PGBOUNCER)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def pgbouncer(url: str, *, pool_size: int, max_client_conn: int = 2000) -> Iterator[str]:
    """Run PgBouncer (transaction pooling, ``pool_size`` server connections per user and
    database) in front of ``url``; yield the URL that reaches the server through it, with
    ``url``'s user and password (which the auth file holds)."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(url)
    user = str(info.get("user") or "postgres")
    password = str(info.get("password") or "")
    dbname = str(info.get("dbname") or "postgres")
    host = str(info.get("host") or "localhost")
    folder = Path(tempfile.mkdtemp(prefix="agentmem-pgbouncer-"))
    run_as: int | None = None
    if os.geteuid() == 0:
        # As the owner of the server's socket directory (the embedded server's own user),
        # else nobody: PgBouncer refuses to run as root.
        run_as = os.stat(host).st_uid if host.startswith("/") else pwd.getpwnam("nobody").pw_uid
        gid = pwd.getpwuid(run_as).pw_gid
        os.chown(folder, run_as, gid)
    port = _free_port()
    quote = lambda s: '"' + s.replace('"', '""') + '"'  # noqa: E731
    (folder / "userlist.txt").write_text(f"{quote(user)} {quote(password)}\n", "utf-8")
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
{dbname} = host={host} port={info.get("port") or 5432} dbname={dbname}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = plain
auth_file = {folder / "userlist.txt"}
pool_mode = transaction
default_pool_size = {int(pool_size)}
max_client_conn = {int(max_client_conn)}
logfile = {folder / "pgbouncer.log"}
pidfile = {folder / "pgbouncer.pid"}
""",
        "utf-8",
    )
    if run_as is not None:
        for f in folder.iterdir():
            os.chown(f, run_as, gid)
    proc = subprocess.Popen([PGBOUNCER, "-q", str(folder / "pgbouncer.ini")], user=run_as)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = folder / "pgbouncer.log"
                    err = log.read_text("utf-8") if log.exists() else "(no log)"
                    raise RuntimeError(f"pgbouncer did not start: {err}") from None
                time.sleep(0.05)
        yield f"postgresql://{quote_url(user)}:{quote_url(password)}@127.0.0.1:{port}/{quote_url(dbname)}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)
