"""One shared request budget for a service: a cap on requests in flight and a pace for their starts.

Callers wait here, outside httpx, so a connection pool never sees thousands of queued requests.
Each wait is observed in `itinerabot_circle_budget_wait_seconds`.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from itinerabot.metrics import BUDGET_WAITS


class RequestBudget:
    """Admit requests at most `rate_per_second` starts per second, `max_concurrent` at a time.

    `async with budget.slot():` waits for a free slot (FIFO), then for the next start time on a
    fixed grid (`epoch + n / rate`, so starts never drift), then for any pause set by
    `pause_until`; the slot is held until the block ends. After an idle spell the grid restarts
    at the next caller, so there is no burst credit: starts are always at least 1/rate apart.
    Only the trio clock is used, so timings are exact under `autojump_clock`.
    """

    def __init__(self, rate_per_second: float, max_concurrent: int) -> None:
        if not (math.isfinite(rate_per_second) and rate_per_second > 0):
            raise ValueError("rate_per_second must be a positive number")
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.rate_per_second = rate_per_second
        self.max_concurrent = max_concurrent
        self._slots = trio.Semaphore(max_concurrent)
        # Only the caller at the head of the line sleeps towards its start time; a pause set
        # while it sleeps is seen when it wakes, because it re-reads the state under the lock.
        self._head = trio.Lock()
        self._epoch = -math.inf
        self._count = 0
        self._paused_until = -math.inf

    @property
    def in_flight(self) -> int:
        """How many slots are taken right now."""
        return self.max_concurrent - self._slots.value

    def pause_until(self, deadline: float) -> None:
        """Hold every request not yet started until trio time `deadline` (never shortens one)."""
        self._paused_until = max(self._paused_until, deadline)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a slot and a start time, then hold the slot for the duration of the block."""
        asked = trio.current_time()
        async with self._slots:
            async with self._head:
                await self._wait_for_start()
            BUDGET_WAITS.observe(trio.current_time() - asked)
            yield

    async def _wait_for_start(self) -> None:
        slept = False
        while True:
            due = self._epoch + self._count / self.rate_per_second
            if self._paused_until > due:
                # After a pause, starts are spaced from the pause's end, not bunched at it.
                self._epoch, self._count = self._paused_until, 0
                due = self._paused_until
            now = trio.current_time()
            if now >= due:
                break
            await trio.sleep_until(due)
            slept = True
        if not slept and now > due:
            # Idle: nobody was queued, so start a new grid here instead of granting a burst.
            self._epoch, self._count = now, 0
        self._count += 1
