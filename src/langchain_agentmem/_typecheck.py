"""Checks of what mypy sees of the public API, run by ``mypy src`` (nothing here runs).

* The lazily imported ``MemoryMiddleware`` is its class, not ``object``.
* ``connect()``'s settings are typed: an unknown one fails type-checking. The ignore below
  is the expected error; ``warn_unused_ignores`` (pyproject, this module) fails the check
  if it stops being one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import assert_type

    from langchain_agentmem import Engine, MemoryMiddleware, connect, middleware

    assert_type(MemoryMiddleware, type[middleware.MemoryMiddleware])
    assert_type(connect("sqlite://", max_size=3, timeout=1.0), Engine)
    connect("sqlite://", max_pool=3)  # type: ignore[call-arg]
