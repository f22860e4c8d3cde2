"""Paying with USDC: create the intent once (idempotency key stored first), start its poller,
and bring pollers back after a restart with the time that remains of their window. After the
window, or once the order is paid another way, the late watcher owns the intent.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Sequence
from functools import partial

import trio

from itinerabot.config import CircleSettings
from itinerabot.errors import ServiceError
from itinerabot.messages import Message, Text
from itinerabot.models import Order, OrderStatus
from itinerabot.payments.usdc.late import LateWatcher
from itinerabot.payments.usdc.poller import UsdcPoller
from itinerabot.payments.usdc.pollers import PollerNursery
from itinerabot.payments.usdc.record import chain_name
from itinerabot.payments.usdc.tracker import IntentTracker
from itinerabot.store import circle_intents as intents
from itinerabot.store import orders as order_rows

log = logging.getLogger(__name__)

#: longest a "Pay with USDC" tap may wait for Circle, seconds (updates queue meanwhile)
CREATE_TIME_LIMIT = 20.0


class UsdcPayments:
    """The chat side of USDC payments and the owner of their pollers."""

    def __init__(
        self,
        tracker: IntentTracker,
        poller: UsdcPoller,
        late: LateWatcher,
        pollers: PollerNursery,
        settings: CircleSettings,
    ) -> None:
        self._tracker = tracker
        self._poller = poller
        self._late = late
        self._pollers = pollers
        self._settings = settings
        self._lock = trio.Lock()
        # a polling intent is late by the wall clock only once its poller (trio clock) ended
        late.poller_watches = pollers.watches

    async def pay_with_usdc(self, chat_id: int, reference: str) -> Sequence[Message]:
        """Create (or reuse) the order's payment intent and start polling it at once."""
        store = self._tracker.store
        async with self._lock:  # a double tap waits, then finds the intent made by the first
            order, current = await store.run(_order_and_intent, reference)
            if order is None or order.chat_id != chat_id:
                return [Text(f"I cannot find order {reference}. Send /start.")]
            if order.status.is_paid:
                return [Text(f"Order {reference} is already paid.")]
            if order.status == OrderStatus.CANCELLED:
                return [Text(f"Order {reference} was cancelled. Send /start for a new one.")]
            if current is not None and current.status == "polling" and current.intent_id:
                self.start_poller(order.id, current.intent_id, current.deadline_epoch)
                if current.address:
                    return [
                        Text(
                            f"Your USDC payment for {reference} is open: send"
                            f" {order.price:.2f} USDC on"
                            f" {chain_name(current.chain or self._settings.chain)} to\n\n"
                            f"{current.address}"
                        )
                    ]
                return [
                    Text(
                        "Your USDC payment is being prepared; the deposit address follows shortly."
                    )
                ]
            if current is None or current.status != "creating":
                current = await store.run(
                    intents.begin_attempt,
                    order.id,
                    str(uuid.uuid4()),
                    self._settings.chain,
                    self._tracker.clock(),
                )
            try:
                # updates wait while this runs: bound it (a retry reuses the stored key)
                with trio.fail_after(CREATE_TIME_LIMIT):
                    view = await self._tracker.client.create_payment_intent(
                        idempotency_key=current.idempotency_key,
                        amount=order.price,
                        currency=order.currency,
                        chain=self._settings.chain,
                    )
            except (ServiceError, trio.TooSlowError) as exc:
                log.error(
                    "circle: creating a payment intent failed",
                    extra={"order": reference, "error": str(exc) or "timed out"},
                )
                return [
                    Text("USDC payment is not available right now. Please try again in a minute.")
                ]
            deadline = self._tracker.clock().timestamp() + self._settings.poll_window
            paid = await store.run(
                intents.set_created, order.id, current.attempt, view.id, deadline
            )
            log.info("payment intent created", extra={"order": reference, "intent": view.id})
            if paid:
                # paid another way while Circle created it: `order_paid` found no intent
                # to expire then, so it is expired now (and watched until final)
                self._pollers.run_soon(
                    self._late.expire_superseded, order.id, name=f"expire superseded {order.id}"
                )
                return [Text(f"Order {reference} is already paid.")]
            self.start_poller(order.id, view.id, None)  # the whole window, exactly
        return [
            Text(
                f"Paying {order.price:.2f} USDC on {chain_name(self._settings.chain)} for order "
                f"{reference}. Circle is preparing your deposit address; it appears here in a "
                "moment."
            )
        ]

    def start_poller(
        self,
        order_id: int,
        intent_id: str,
        deadline_epoch: float | None,
        *,
        first_check_in: float = 0.0,
    ) -> bool:
        """Start the intent's poller (unless it runs; replacing one of another intent of the
        order) for what remains of its window (all of
        it when `deadline_epoch` is None: a new intent, timed on trio's clock alone); an
        intent whose window has passed is the late watcher's. True if a poller started."""
        remaining = self._settings.poll_window
        if deadline_epoch is not None:
            remaining = deadline_epoch - self._tracker.clock().timestamp()
        if remaining <= 0:
            self._late.nudge()
            return False
        # an idle late watcher learns when this window ends (if the poller ends early without
        # the intent ending, at a refused payment or a crash, it is the watcher's then)
        self._late.window_opened()
        now = trio.current_time()
        return self._pollers.start(
            order_id,
            self._poller.poll_usdc_payment,
            order_id,
            intent_id,
            now + min(first_check_in, remaining),
            deadline=now + remaining,
            on_timeout=partial(self._late.take_over, order_id, intent_id),
            watches=intent_id,
        )

    def order_paid(self, order_id: int) -> None:
        """An order was paid (any way): its 30 s poller has nothing left to do, and any other
        intent it has open is expired at Circle at once (work under the poller nursery) and
        left to the late watcher until final."""
        self._pollers.cancel(order_id)
        self._pollers.run_soon(
            self._late.expire_superseded, order_id, name=f"expire superseded {order_id}"
        )

    async def resume(self) -> int:
        """At start-up: every intent still in its window gets its poller back; returns how many.

        Their first checks are spread over one interval, so a restart with thousands of
        open intents does not send them all to Circle in the same instant. Intents whose
        window has passed (while the bot was down, or during start-up, after the late
        watcher's first round) are handed to the late watcher with a nudge.
        """
        rows = await self._tracker.store.run(intents.windowed_intents)
        spread = self._settings.poll_interval / max(len(rows), 1)
        started = 0
        for i, (order_id, intent_id, deadline) in enumerate(rows):
            started += self.start_poller(order_id, intent_id, deadline, first_check_in=i * spread)
        if rows:
            log.info("pollers resumed", extra={"count": started, "late": len(rows) - started})
        return started


def _order_and_intent(
    conn: sqlite3.Connection, reference: str
) -> tuple[Order | None, intents.IntentRow | None]:
    order = order_rows.get_order_by_reference(conn, reference)
    return order, (intents.latest(conn, order.id) if order else None)
