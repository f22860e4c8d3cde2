"""`stripe.refunds: automatic`: every second card payment of an order already paid is refunded
at once, and at start-up whatever a previous run left undone is finished.

Each refund is stored (with its idempotency key) before Stripe is asked, so a crash between
the two is repaired by asking again with the same key: Stripe makes one refund. Transient
failures are retried with capped backoff for as long as the process runs; a refusal is
recorded as failed, for the operator.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from datetime import datetime

import stripe
import trio

from itinerabot.bot.sender import Sender
from itinerabot.card.refunds import refund_card
from itinerabot.clock import WallClock
from itinerabot.errors import StoreError, TransientServiceError
from itinerabot.models import PaymentMethod
from itinerabot.store import Store, money
from itinerabot.store import orders as order_rows
from itinerabot.store.money import RefundStatus

log = logging.getLogger(__name__)

#: seconds before the first retry of a transient failure; doubled each time up to the cap
FIRST_RETRY = 5.0
RETRY_CAP = 600.0


def retry_delay(failures: int) -> float:
    """The wait after `failures` consecutive transient failures (1 → FIRST_RETRY)."""
    return min(RETRY_CAP, FIRST_RETRY * 2.0 ** (failures - 1))


class AutomaticCardRefunds:
    """Refunds second card payments: `extra_payment` is fulfilment's extra listener."""

    def __init__(
        self, store: Store, client: stripe.StripeClient, sender: Sender, clock: WallClock
    ) -> None:
        self._store = store
        self._client = client
        self._sender = sender
        self._clock = clock
        self._wake, self._woken = trio.open_memory_channel[int](math.inf)
        #: refunds being asked of Stripe by a task of this service
        self._asking: set[int] = set()

    def extra_payment(self, extra_payment_id: int, method: PaymentMethod) -> None:
        """A payment arrived for an order already paid: refund it if it came by card."""
        if method == PaymentMethod.CARD:
            self._wake.send_nowait(extra_payment_id)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Finish the refunds left over, then refund each new card extra payment, until
        cancelled. Raises StoreError if the left-overs cannot be read at start-up."""
        stuck, unrefunded = await self._store.run(_left_over)
        async with trio.open_nursery() as nursery:
            for refund in stuck:
                log.info("asking Stripe again for a stored refund", extra={"refund": refund.id})
                nursery.start_soon(self._ask_until_answered, refund, name=f"refund {refund.id}")
            for extra_id in unrefunded:
                nursery.start_soon(self._refund, extra_id, name=f"refund extra {extra_id}")
            task_status.started()
            async for extra_id in self._woken:
                nursery.start_soon(self._refund, extra_id, name=f"refund extra {extra_id}")

    async def _refund(self, extra_id: int) -> None:
        """Store a refund of one card extra payment (unless it has one), then ask Stripe."""
        failures = 0
        while True:
            try:
                refund = await self._store.run(_begin_for_extra, extra_id, self._clock())
                break
            except trio.Cancelled:
                raise
            except StoreError as exc:
                failures += 1
                log.warning(
                    "could not store a card refund; retrying",
                    extra={"extra_payment": extra_id, "error": str(exc)},
                )
                await trio.sleep(retry_delay(failures))
            except Exception:
                log.exception("storing a card refund failed", extra={"extra_payment": extra_id})
                return
        if refund is not None:
            await self._ask_until_answered(refund)

    async def _ask_until_answered(self, refund: money.Refund) -> None:
        """Ask Stripe, retrying transient failures, until the refund has an answer."""
        if refund.id in self._asking:
            return
        self._asking.add(refund.id)
        try:
            failures = 0
            while True:
                try:
                    done = await refund_card(self._store, self._client, refund, self._clock)
                    break
                except trio.Cancelled:
                    raise
                except (TransientServiceError, StoreError) as exc:
                    failures += 1
                    delay = retry_delay(failures)
                    log.warning(
                        "card refund not answered; retrying",
                        extra={"refund": refund.id, "error": str(exc), "retry_in": delay},
                    )
                    await trio.sleep(delay)
                except Exception:  # one refund's bug must not end the service
                    log.exception("card refund failed", extra={"refund": refund.id})
                    return
            if done.status == RefundStatus.SUCCEEDED:
                chat_id = await self._store.run(_chat_of, done.order_id)
                if chat_id is not None:
                    self._sender.notify(chat_id)
        finally:
            self._asking.discard(refund.id)


def _left_over(conn: sqlite3.Connection) -> tuple[list[money.Refund], list[int]]:
    """Card refunds stored but not surely asked, and card extra payments with no refund."""
    stuck = [
        r
        for r in money.refunds_in(conn, (RefundStatus.REQUESTED,))
        if r.method == PaymentMethod.CARD
    ]
    unrefunded = [
        e.id
        for e in money.unrefunded_extra_payments(conn)
        if e.method == PaymentMethod.CARD and not _has_refund(conn, e)
    ]
    return stuck, unrefunded


def _has_refund(conn: sqlite3.Connection, extra: money.ExtraPayment) -> bool:
    """Any refund of this extra payment, even a failed one: a refusal is the operator's now."""
    return any(r.extra_payment_id == extra.id for r in money.refunds(conn, extra.order_id))


def _begin_for_extra(conn: sqlite3.Connection, extra_id: int, now: datetime) -> money.Refund | None:
    """A new stored refund of a card extra payment; None if it has one or cannot have one."""
    extra = money.get_extra_payment(conn, extra_id)
    if extra is None or extra.method != PaymentMethod.CARD or _has_refund(conn, extra):
        return None
    if extra.provider_payment_id is None:
        log.error(
            "a second card payment has no PaymentIntent: refund it by hand",
            extra={"extra_payment": extra.id, "session": extra.provider_ref},
        )
        return None
    return money.begin_refund(
        conn,
        order_id=extra.order_id,
        method=PaymentMethod.CARD,
        provider_ref=extra.provider_payment_id,
        amount=extra.amount,
        currency=extra.currency,
        now=now,
        extra_payment_id=extra.id,
    )


def _chat_of(conn: sqlite3.Connection, order_id: int) -> int | None:
    order = order_rows.get_order_head(conn, order_id)
    return order.chat_id if order else None
