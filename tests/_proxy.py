"""A small TCP proxy on 127.0.0.1 in front of the test Postgres, that a test can cut.

``Proxy(target)`` listens on a free port and forwards every connection to ``target``
(``("unix", path)`` or ``(host, port)``). ``cut()`` drops every open connection and refuses
new ones until ``restore()``; ``drop_after(n)`` drops the first new connection that carries ``n``
bytes towards the server; ``flaky(p, seed)`` drops a connection at any
chunk it forwards after its start-up, with probability ``p`` each.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from urllib.parse import parse_qs, urlsplit


def target_of(url: str) -> tuple[str, object]:
    """Where a libpq URL's server listens: ``("unix", socket path)`` or ``("tcp", (host, port))``."""
    parts = urlsplit(url)
    host = parse_qs(parts.query).get("host", [parts.hostname or "localhost"])[0]
    port = parts.port or 5432
    if host.startswith("/"):
        return "unix", f"{host}/.s.PGSQL.{port}"
    return "tcp", (host, port)


class Proxy:
    def __init__(self, url: str) -> None:
        self.kind, self.address = target_of(url)
        parts = urlsplit(url)
        self.user = parts.username or "postgres"
        self.dbname = parts.path.lstrip("/") or "postgres"
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._open = True
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._drop_after: int | None = None
        self._flaky = 0.0
        self._random = random.Random(0)
        self.drops = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.dbname}?connect_timeout=2"

    def _upstream(self) -> socket.socket:
        if self.kind == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            s = socket.socket()
        s.connect(self.address)  # type: ignore[arg-type]
        return s

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open:
                client.close()
                continue
            try:
                server = self._upstream()
            except OSError:
                client.close()
                continue
            budget = self._drop_after
            with self._lock:
                self._conns.update((client, server))
            state = {"budget": budget}
            threading.Thread(target=self._pipe, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, None), daemon=True).start()

    def _pipe(
        self, src: socket.socket, dst: socket.socket, state: dict[str, int | None] | None
    ) -> None:
        chunks = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if state is not None and state["budget"] is not None:
                    if len(data) >= state["budget"]:
                        dst.sendall(data[: state["budget"]])
                        self.drops += 1
                        self._drop_after = None  # disarmed: one connection is dropped
                        break
                    state["budget"] -= len(data)
                chunks += 1
                # Past the start-up exchange (a few chunks), any chunk may end the link.
                if self._flaky and chunks > 4 and self._random.random() < self._flaky:
                    self.drops += 1
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)

    def cut(self) -> None:
        """Drop every connection; refuse new ones."""
        self._open = False
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        self._open = True
        self._flaky = 0.0

    def drop_after(self, n: int) -> None:
        """The first connection opened from now on that carries ``n`` bytes towards the
        server is dropped there (connections carrying less, such as a probe, pass)."""
        self._drop_after = n

    def flaky(self, p: float, seed: int = 0) -> None:
        self._flaky = p
        self._random = random.Random(seed)

    def close(self) -> None:
        self.cut()
        self._listener.close()
