"""Hardening (issue 11): cancellation, a dead server, odd values, long keys, misuse, secrets.

Each test here failed on the code before the fix it names; all run on real databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from langchain_agentmem import ChatMessageHistory, Engine

# -- 1. a cancelled async write ends its transaction ----------------------------------


async def test_cancelled_async_writes_leave_the_engine_clean(
    aengine: Engine, backend: str, tmp_path: Path
) -> None:
    """Cancel ``aadd_messages`` at every point it can be cancelled (after 0, 1, 2 ...
    event-loop turns): each batch is written whole or not at all, and afterwards the
    engine (sync and async) and another connection to the same database can still write."""
    history = ChatMessageHistory(aengine, "cancelled", user_id="u")
    batch = [HumanMessage("one"), HumanMessage("two"), HumanMessage("three")]
    cancelled = 0
    for turns in range(40):
        task = asyncio.ensure_future(history.aadd_messages(batch))
        for _ in range(turns):
            await asyncio.sleep(0)
        if not task.cancel():  # it was done already
            await task
            continue
        cancelled += 1
        with pytest.raises(asyncio.CancelledError):
            await task
    assert cancelled > 0
    # The same with a timeout, as a program would write it.
    for _ in range(10):
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(history.aadd_messages(batch), timeout=0.0005)
    messages = await history.aget_messages()
    assert len(messages) % 3 == 0  # whole batches only
    n = len(messages)
    history.add_messages([HumanMessage("sync after")])
    await history.aadd_messages([HumanMessage("async after")])
    assert len(history.messages) == n + 2
    if backend == "sqlite":  # another connection (another process would be the same)
        other = sqlite3.connect(str(tmp_path / "memory.sqlite3"), timeout=0)
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.close()
