"""Rounds on a fixed grid of trio's clock, for the payment services: a point is computed from
the origin, never summed, so nothing drifts; a round that overran skips the points it missed
rather than running late ones back to back. And the backoff the refund services share, with
the one loop that retries a store call until the store answers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar

import trio

from itinerabot.errors import StoreError
from itinerabot.store import Store
from itinerabot.store.interface import Connection
from itinerabot.store.orders import chat_of

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

#: seconds before the first retry of a transient failure; doubled each time up to the cap
FIRST_RETRY = 5.0
RETRY_CAP = 600.0


def retry_delay(failures: int) -> float:
    """The wait after `failures` consecutive transient failures (1 → FIRST_RETRY)."""
    return min(RETRY_CAP, FIRST_RETRY * 2.0 ** (failures - 1))


async def until_stored(
    store: Store,
    fn: Callable[Concatenate[Connection, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """`store.run(fn, *args)`, again after each StoreError (logged) with `retry_delay`
    backoff, until the store answers. What `fn` raises itself (a bug) comes back."""
    failures = 0
    while True:
        try:
            return await store.run(fn, *args, **kwargs)
        except StoreError as exc:
            failures += 1
            log.warning(
                "the store failed; trying again",
                extra={"call": fn.__name__, "error": str(exc), "retry_in": retry_delay(failures)},
            )
            await trio.sleep(retry_delay(failures))


def next_tick(origin: float, k: int, interval: float, now: float) -> int:
    """The index of the next point of the grid origin + k·interval after point `k`: k + 1, or
    the first not before `now` when ticks were missed. Each point is computed from the origin,
    never summed, so a window of n intervals ends exactly on the nth point."""
    k += 1
    late = now - (origin + k * interval)
    if late > 0:
        k += math.ceil(late / interval)
    return k


async def every(interval: float, one_round: Callable[[], Awaitable[object]]) -> None:
    """Run `one_round` now and then at each point of the grid, until cancelled."""
    origin, k = trio.current_time(), 0
    while True:
        await one_round()
        k = next_tick(origin, k, interval, trio.current_time())
        await trio.sleep_until(origin + k * interval)


async def wake_chat_of(store: Store, notify: Callable[[int], None], order_id: int) -> None:
    """Wake the sender for the chat of `order_id`, whose message a refund has queued. A store
    that cannot answer only delays it: the sender's rescan finds the message anyway."""
    try:
        chat_id = await store.run(chat_of, order_id)
    except StoreError as exc:
        log.warning("could not look up the order's chat", extra={"error": str(exc)})
        return
    if chat_id is not None:
        notify(chat_id)
