"""A network hop for benchmarks: a TCP proxy in its own process that delays every packet
by a fixed time in each direction, so that a local Postgres behaves like one a network
hop away (a managed database in the same region is 0.5-2 ms away). Order is kept, and
bytes in flight are not held back by those behind them, so pipelined traffic pipelines.

    with delayed_url(url, one_way_ms=0.5) as slow_url:
        ...  # connect to slow_url; measure_rtt_ms(slow_url) tells the round trip

The delay is at least the one asked for (a thread sleeps until a chunk is due);
measure_rtt_ms reports the round trip it really gives.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict


def _pipe(source: socket.socket, sink: socket.socket, delay: float) -> None:
    """Forward ``source`` to ``sink``, each chunk ``delay`` seconds after it arrived
    (a reader thread and a writer thread: ``time.sleep`` is precise to well under 0.1 ms,
    unlike an event loop's timers)."""
    chunks: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

    def send() -> None:
        with contextlib.suppress(OSError):
            while data := (item := chunks.get())[1]:
                wait = item[0] - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    threading.Thread(target=send, daemon=True).start()
    with contextlib.suppress(OSError):
        while data := source.recv(1 << 16):
            chunks.put((time.monotonic() + delay, data))
    chunks.put((0.0, b""))


def _serve(target: dict[str, str], delay: float) -> None:
    host, port = target.get("host") or "/tmp", target.get("port") or "5432"
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    while True:
        client, _ = listener.accept()
        if host.startswith("/"):
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(f"{host}/.s.PGSQL.{port}")
        else:
            server = socket.create_connection((host, int(port)))
        for sock in (client, server):
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_pipe, args=(client, server, delay), daemon=True).start()
        threading.Thread(target=_pipe, args=(server, client, delay), daemon=True).start()


@contextlib.contextmanager
def delayed_url(url: str, one_way_ms: float) -> Iterator[str]:
    """A URL for the server at ``url`` through a proxy that adds ``one_way_ms`` each way."""
    proc = subprocess.Popen(
        [sys.executable, __file__, url, str(one_way_ms)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        info = conninfo_to_dict(url)
        user = quote(str(info.get("user") or ""), safe="")
        password = quote(str(info.get("password") or ""), safe="")
        auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
        yield f"postgresql://{auth}127.0.0.1:{port}/{quote(str(info.get('dbname') or 'postgres'), safe='')}"
    finally:
        proc.terminate()
        proc.wait()


def measure_rtt_ms(url: str, n: int = 50) -> float:
    """Median milliseconds of ``SELECT 1`` on one connection to ``url``."""
    with psycopg.connect(url, autocommit=True) as conn:
        times = []
        for _ in range(n):
            start = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


if __name__ == "__main__":
    _serve(conninfo_to_dict(sys.argv[1]), float(sys.argv[2]) / 1000)
