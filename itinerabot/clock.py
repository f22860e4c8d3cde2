"""Wall-clock time for records (paid_at, created_at), injected so tests can pin it.

Scheduling never uses this: it uses trio's clock (`trio.current_time`, `trio.sleep_until`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

WallClock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)
