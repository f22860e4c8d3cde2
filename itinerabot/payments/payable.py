"""What both payment methods do when a traveller taps "Pay": find the order (refused when it is
not theirs, paid or cancelled), then ask the provider for a payment under a time limit.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import trio

from itinerabot.errors import ServiceError
from itinerabot.i18n import Texts
from itinerabot.messages import Text
from itinerabot.models import Order
from itinerabot.payments.texts import not_payable, order_not_found
from itinerabot.store import Store
from itinerabot.store import orders as order_rows

log = logging.getLogger(__name__)

#: longest a "Pay" tap may wait for Stripe or Circle, seconds (its payment request waits;
#: no update does)
CREATE_TIME_LIMIT = 20.0

Attempt = TypeVar("Attempt")
Created = TypeVar("Created")


async def payable_order(
    store: Store,
    t: Texts,
    chat_id: int,
    reference: str,
    latest: Callable[[sqlite3.Connection, int], Attempt | None],
) -> tuple[Order, Attempt | None] | Text:
    """The order `reference` of `chat_id` with its latest payment attempt (`latest(conn,
    order_id)`), read in one store call; or the sentence that refuses the tap: no such order
    in this chat, already paid, or cancelled (said in `t`). Raises StoreError."""

    def read(conn: sqlite3.Connection) -> tuple[Order | None, Attempt | None]:
        order = order_rows.get_order_by_reference(conn, reference)
        return order, (latest(conn, order.id) if order else None)

    order, attempt = await store.run(read)
    if order is None or order.chat_id != chat_id:
        return Text(order_not_found(t, reference))
    refusal = not_payable(t, order.status, reference)
    return Text(refusal) if refusal else (order, attempt)


async def create_in_time(
    create: Callable[[], Awaitable[Created]], *, what: str, reference: str
) -> Created | None:
    """`await create()` within CREATE_TIME_LIMIT (in a payment request, once the tap's update
    has committed; a retry sends the stored request again); None, logged as `what` failed,
    when the provider failed or was too slow. Raises StoreError (from `create`)."""
    try:
        with trio.fail_after(CREATE_TIME_LIMIT):
            return await create()
    except (ServiceError, trio.TooSlowError) as exc:
        log.error(f"{what} failed", extra={"order": reference, "error": str(exc) or "timed out"})
        return None


class OrderLocks:
    """One lock per order reference, held while a tap asks its provider: a double tap waits
    and then reuses what the first made, while taps on other orders go ahead (a slow provider
    call for one traveller holds up nobody else). A lock is forgotten once nobody holds or
    waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, trio.Lock] = {}

    @asynccontextmanager
    async def hold(self, reference: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(reference, trio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(reference, None)
