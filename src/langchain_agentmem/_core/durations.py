"""Checked durations and batch sizes for memories with a time to live.

Example:
    >>> ttl_minutes(timedelta(hours=1), "ttl")
    60.0
    >>> ttl_minutes(timedelta(0), "ttl")
    Traceback (most recent call last):
    ...
    ValueError: ttl must be a positive timedelta, got datetime.timedelta(0)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

__all__ = ["MAX_TTL", "batch_size", "ttl_minutes"]

#: The longest time to live accepted: expiry times stay within every backend's range.
MAX_TTL = timedelta(days=365_000)


def ttl_minutes(ttl: Any, what: str = "ttl", *, optional: bool = False) -> float | None:
    """``ttl`` (a positive ``timedelta``; ``None`` when ``optional``) in minutes, as the
    dialects' ``now_plus_minutes`` takes it."""
    if ttl is None and optional:
        return None
    if not isinstance(ttl, timedelta):
        expected = "a timedelta or None" if optional else "a timedelta"
        raise TypeError(f"{what} must be {expected}, got {type(ttl).__name__}: {ttl!r}")
    if ttl <= timedelta(0):
        raise ValueError(f"{what} must be a positive timedelta, got {ttl!r}")
    if ttl > MAX_TTL:
        raise ValueError(f"{what} must be at most {MAX_TTL.days} days, got {ttl!r}")
    return ttl.total_seconds() / 60.0


def batch_size(value: Any) -> int:
    """A positive ``int`` batch size, else ``TypeError`` / ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"batch_size must be an int, got {type(value).__name__}: {value!r}")
    if value < 1:
        raise ValueError(f"batch_size must be at least 1, got {value}")
    return value
