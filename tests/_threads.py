"""Concurrent writers for the tests: ``n`` threads released at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_threads(n: int, work: Callable[[int], object]) -> None:
    """Start ``n`` threads that call ``work(i)`` at the same moment; re-raise any error."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
