"""Plans run in the background: a queue drained by one worker thread, nothing lost at
shutdown (an ``atexit`` hook drains the queue before the interpreter stops), errors raised
by the next :meth:`BackgroundRunner.flush`."""

from __future__ import annotations

import atexit
import queue
import sys
import threading
import time
import weakref
from typing import Any

from .plan import Plan, run

__all__ = ["BackgroundRunner", "BackgroundWriteError"]


class BackgroundWriteError(RuntimeError):
    """One or more background writes failed; ``errors`` holds every exception."""

    def __init__(self, errors: list[BaseException]) -> None:
        first = errors[0]
        super().__init__(
            f"{len(errors)} background memory write(s) failed; the first: "
            f"{type(first).__name__}: {first}"
        )
        self.errors = errors


class BackgroundRunner:
    """Runs ``(user_id, plan)`` items on ``engine`` in submission order, in one thread."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._queue: queue.Queue[tuple[str | None, Plan[Any]] | None] = queue.Queue()
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        atexit.register(_drain_at_exit, weakref.ref(self))

    def submit(self, user_id: str | None, plan: Plan[Any]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="agentmem-background-writes", daemon=True
                )
                self._thread.start()
        self._queue.put((user_id, plan))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                run(self.engine, *item)
            except BaseException as exc:  # kept for flush(): raised there, never dropped
                with self._lock:
                    self._errors.append(exc)
            finally:
                self._queue.task_done()

    @property
    def pending(self) -> int:
        """Writes submitted and not finished yet."""
        return self._queue.unfinished_tasks

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every submitted write has finished; False if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._queue.all_tasks_done.wait(left)
        return True

    def flush(self, timeout: float | None = None) -> None:
        """:meth:`wait`, then raise :class:`BackgroundWriteError` for writes that failed
        since the last flush; ``TimeoutError`` if writes are still running."""
        if not self.wait(timeout):
            raise TimeoutError(f"{self.pending} background memory write(s) still running")
        with self._lock:
            errors, self._errors = self._errors, []
        if errors:
            raise BackgroundWriteError(errors)


def _drain_at_exit(ref: weakref.ref[BackgroundRunner]) -> None:
    runner = ref()
    if runner is None:
        return
    try:
        runner.flush()
    except BaseException as exc:  # at exit there is no caller left to raise to
        print(f"agentmem: {exc}", file=sys.stderr)
