"""The card services' rounds: one at once, then one every `interval` on trio's clock, on a
fixed grid (a round that overran skips the points it missed rather than running late ones
back to back).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import trio


def next_round(tick: float, interval: float, now: float) -> float:
    """The first point of the grid tick + k·interval (k ≥ 1) not before `now`."""
    tick += interval
    if tick < now:
        tick += math.ceil((now - tick) / interval) * interval
    return tick


async def every(interval: float, one_round: Callable[[], Awaitable[None]]) -> None:
    """Run `one_round` now and then at each point of the grid, until cancelled."""
    tick = trio.current_time()
    while True:
        await one_round()
        tick = next_round(tick, interval, trio.current_time())
        await trio.sleep_until(tick)
