"""One shared request budget for a service: a cap on requests in flight and a pace for their
starts, served in two lanes so a traveller's requests go ahead of the routine checks.

Callers wait here, outside httpx, so a connection pool never sees thousands of queued requests.
Each wait is observed in `itinerabot_circle_budget_wait_seconds`.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from itinerabot.metrics import BUDGET_WAITS


class Lane(enum.Enum):
    """Whose request it is. Every caller names its lane: the budget serves TRAVELLER first."""

    #: someone is waiting on it now: creating an intent, its checks until the deposit address
    #: shows, an expiry or refund a person asked for, the receipt's transaction hash
    TRAVELLER = "traveller"
    #: the steady watch: a poller's checks once the address is shown, the late watcher's,
    #: refund look-ups
    ROUTINE = "routine"


#: while routine requests wait, at most this many traveller requests start in a row; then one
#: routine request starts. Routine work so keeps at least 1/(TRAVELLER_RUN + 1) of the rate.
TRAVELLER_RUN = 9
#: the share of the rate routine work plans for (`routine_rate`); the rest is headroom for
#: travellers and the late watcher, so the routine queue drains instead of growing
ROUTINE_SHARE = 0.9


class _Waiter:
    __slots__ = ("gone", "lane", "wake")

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self.wake = trio.Event()
        self.gone = False  # cancelled while queued: skipped when it reaches the front


class RequestBudget:
    """Admit requests at most `rate_per_second` starts per second, `max_concurrent` at a time.

    `async with budget.slot(lane):` queues in `lane` (FIFO within it), and when at the head
    of the line waits for a free slot, then for the next start time on a fixed grid
    (`epoch + n / rate`, so starts never drift), then for any pause set by `pause_until`; the
    slot is held until the block ends. After an idle spell the grid restarts at the next
    caller, so there is no burst credit: starts are always at least 1/rate apart. Only the
    trio clock is used, so timings are exact under `autojump_clock`.

    The head of the line is the first TRAVELLER waiter, unless TRAVELLER_RUN travellers have
    started in a row while routine waiters waited: then the first ROUTINE one. Why not strict
    priority: traveller demand is small (a create and a few address checks per tap), so it
    rarely matters, but a flood of taps (one user, or a bug) must not stop every routine
    check for as long as it lasts; this way routine keeps at least a tenth of the rate and a
    traveller waits at most one extra start in ten.

    Invariants: only the head waiter ever sleeps towards a start time, and every change that
    may let a waiter go (a start, a slot freed, a head cancelled) wakes the head.
    """

    def __init__(self, rate_per_second: float, max_concurrent: int) -> None:
        if not (math.isfinite(rate_per_second) and rate_per_second > 0):
            raise ValueError("rate_per_second must be a positive number")
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.rate_per_second = rate_per_second
        self.max_concurrent = max_concurrent
        self._lines: dict[Lane, deque[_Waiter]] = {lane: deque() for lane in Lane}
        self._waiting = dict.fromkeys(Lane, 0)
        self._in_flight = 0
        self._travellers_in_a_row = 0
        self._epoch = -math.inf
        self._count = 0
        self._paused_until = -math.inf

    @property
    def in_flight(self) -> int:
        """How many slots are taken right now."""
        return self._in_flight

    @property
    def routine_rate(self) -> float:
        """Starts per second that routine work should plan for: ROUTINE_SHARE of the rate."""
        return self.rate_per_second * ROUTINE_SHARE

    def waiting(self, lane: Lane) -> int:
        """How many requests of `lane` wait for their start right now."""
        return self._waiting[lane]

    def pause_until(self, deadline: float) -> None:
        """Hold every request not yet started until trio time `deadline` (never shortens one)."""
        self._paused_until = max(self._paused_until, deadline)

    @asynccontextmanager
    async def slot(self, lane: Lane) -> AsyncIterator[None]:
        """Wait in `lane` for a slot and a start time, then hold the slot for the block."""
        asked = trio.current_time()
        await self._admit(lane)
        BUDGET_WAITS.observe(trio.current_time() - asked)
        try:
            yield
        finally:
            self._in_flight -= 1
            self._wake_head()

    async def _admit(self, lane: Lane) -> None:
        waiter = _Waiter(lane)
        self._lines[lane].append(waiter)
        self._waiting[lane] += 1
        slept = False
        try:
            while True:
                waiter.wake = trio.Event()
                if self._head() is not waiter or self._in_flight >= self.max_concurrent:
                    await waiter.wake.wait()
                    slept = False
                    continue
                due = self._due()
                now = trio.current_time()
                if now >= due:
                    break
                # woken early if the line changes; a pause set meanwhile is read on waking
                with trio.move_on_at(due):
                    await waiter.wake.wait()
                slept = True
        except BaseException:
            waiter.gone = True
            self._waiting[lane] -= 1
            self._wake_head()
            raise
        self._lines[lane].popleft()
        self._waiting[lane] -= 1
        if not slept and now > due:
            # Idle: nobody was queued, so start a new grid here instead of granting a burst.
            self._epoch, self._count = now, 0
        self._count += 1
        self._in_flight += 1
        if lane is Lane.TRAVELLER and self._waiting[Lane.ROUTINE]:
            self._travellers_in_a_row += 1
        else:
            self._travellers_in_a_row = 0
        self._wake_head()

    def _due(self) -> float:
        """The next start time on the grid, moved past any pause."""
        due = self._epoch + self._count / self.rate_per_second
        if self._paused_until > due:
            # After a pause, starts are spaced from the pause's end, not bunched at it.
            self._epoch, self._count = self._paused_until, 0
            due = self._paused_until
        return due

    def _head(self) -> _Waiter | None:
        """The waiter whose turn it is (see the class docstring), or None."""
        travellers = self._front(Lane.TRAVELLER)
        routine = self._front(Lane.ROUTINE)
        if travellers is not None and (
            routine is None or self._travellers_in_a_row < TRAVELLER_RUN
        ):
            return travellers
        return routine

    def _front(self, lane: Lane) -> _Waiter | None:
        line = self._lines[lane]
        while line and line[0].gone:
            line.popleft()
        return line[0] if line else None

    def _wake_head(self) -> None:
        head = self._head()
        if head is not None:
            head.wake.set()
