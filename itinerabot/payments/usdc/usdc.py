"""Paying with USDC: create the intent once (idempotency key stored first), start its poller,
and bring pollers back after a restart with the time that remains of their window. After the
window, or once the order is paid another way, the late watcher owns the intent.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from functools import partial

import trio

from itinerabot.adapters.circle.budget import Lane
from itinerabot.adapters.circle.client import CircleClient
from itinerabot.clock import WallClock
from itinerabot.config import CircleSettings
from itinerabot.i18n import Texts, english
from itinerabot.messages import Message, Text
from itinerabot.models import Order
from itinerabot.payments.payable import OrderLocks, create_in_time, payable_order
from itinerabot.payments.texts import order_already_paid, usdc_unavailable
from itinerabot.payments.usdc.late import LateWatcher
from itinerabot.payments.usdc.poller import UsdcPoller
from itinerabot.payments.usdc.pollers import PollerNursery
from itinerabot.payments.usdc.record import chain_name
from itinerabot.store import Store
from itinerabot.store import circle_intents as intents

log = logging.getLogger(__name__)


class UsdcPayments:
    """The chat side of USDC payments and the owner of their pollers."""

    def __init__(
        self,
        store: Store,
        client: CircleClient,
        clock: WallClock,
        poller: UsdcPoller,
        late: LateWatcher,
        pollers: PollerNursery,
        settings: CircleSettings,
    ) -> None:
        self._store = store
        self._client = client
        self._clock = clock
        self._poller = poller
        self._late = late
        self._pollers = pollers
        self._settings = settings
        self._locks = OrderLocks()
        # a polling intent is late by the wall clock only once its poller (trio clock) ended
        late.poller_watches = pollers.watches

    async def pay_with_usdc(
        self, chat_id: int, reference: str, texts: Texts | None = None
    ) -> Sequence[Message]:
        """Create (or reuse) the order's payment intent and start polling it at once; said in
        `texts` (English if None)."""
        t = texts or english()
        async with self._locks.hold(reference):  # a double tap finds the first's intent
            found = await payable_order(self._store, t, chat_id, reference, intents.latest)
            if isinstance(found, Text):
                return [found]
            order, current = found
            if (
                current is not None
                and current.status == intents.IntentStatus.POLLING
                and current.intent_id
            ):
                return [self._still_open(t, order, current)]
            return [await self._open_intent(t, order, current)]

    def _still_open(self, t: Texts, order: Order, current: intents.IntentRow) -> Text:
        """The order's intent is open: its poller runs again, the chat gets the address."""
        assert current.intent_id is not None
        self.start_poller(
            order.id,
            current.intent_id,
            current.deadline_epoch,
            awaiting_address=current.address is None,
        )
        if current.address:
            return Text(
                t.gettext(
                    "Your USDC payment for {reference} is open: send {price} USDC on {chain} "
                    "to\n\n{address}",
                    reference=order.reference,
                    price=f"{order.price:.2f}",
                    chain=chain_name(current.chain or self._settings.chain),
                    address=current.address,
                )
            )
        return Text(
            t.gettext("Your USDC payment is being prepared; the deposit address follows shortly.")
        )

    async def _open_intent(self, t: Texts, order: Order, current: intents.IntentRow | None) -> Text:
        """Create the intent of a new attempt (or of one stored but not created: the same
        key) and start its poller. Raises StoreError."""
        if current is None or current.status != intents.IntentStatus.CREATING:
            current = await self._store.run(
                intents.begin_attempt,
                order.id,
                str(uuid.uuid4()),
                self._settings.chain,
                self._clock(),
            )
        view = await create_in_time(
            partial(
                self._client.create_payment_intent,
                idempotency_key=current.idempotency_key,
                amount=order.price,
                currency=order.currency,
                chain=self._settings.chain,
                lane=Lane.TRAVELLER,
            ),
            what="circle: creating a payment intent",
            reference=order.reference,
        )
        if view is None:
            return Text(usdc_unavailable(t))
        return await self._created(t, order, current.attempt, view.id)

    async def _created(self, t: Texts, order: Order, attempt: int, intent_id: str) -> Text:
        """Store the intent Circle created and start its poller, or, if the order was paid
        meanwhile, have it expired. Raises StoreError."""
        deadline = self._clock().timestamp() + self._settings.poll_window
        paid = await self._store.run(intents.set_created, order.id, attempt, intent_id, deadline)
        log.info("payment intent created", extra={"order": order.reference, "intent": intent_id})
        if paid:
            # paid another way while Circle created it: `order_paid` found no intent
            # to expire then, so it is expired now (and watched until final)
            self._pollers.run_soon(
                self._late.expire_superseded, order.id, name=f"expire superseded {order.id}"
            )
            return Text(order_already_paid(t, order.reference))
        # the whole window, exactly; its first checks go ahead of routine ones
        self.start_poller(order.id, intent_id, None, awaiting_address=True)
        return Text(
            t.gettext(
                "Paying {price} USDC on {chain} for order {reference}. Circle is preparing your "
                "deposit address; it appears here in a moment.",
                price=f"{order.price:.2f}",
                chain=chain_name(self._settings.chain),
                reference=order.reference,
            )
        )

    def start_poller(
        self,
        order_id: int,
        intent_id: str,
        deadline_epoch: float | None,
        *,
        first_check_in: float = 0.0,
        awaiting_address: bool = False,
    ) -> bool:
        """Start the intent's poller (unless it runs; replacing one of another intent of the
        order) for what remains of its window (all of
        it when `deadline_epoch` is None: a new intent, timed on trio's clock alone); an
        intent whose window has passed is the late watcher's. True if a poller started.
        `awaiting_address`: a traveller waits for the deposit address, so the first checks
        go ahead of routine ones until it shows."""
        remaining = self._settings.poll_window
        if deadline_epoch is not None:
            remaining = deadline_epoch - self._clock().timestamp()
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
            awaiting_address,
            deadline=now + remaining,
            on_timeout=partial(self._late.take_over, order_id, intent_id),
            watches=intent_id,
        )

    @property
    def check_interval(self) -> float:
        """Seconds between two routine checks of one open intent now: `poll_interval`, or
        longer when the request budget cannot keep every intent on it (read-only)."""
        return self._poller.check_interval

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

        Their first checks are spread over one check interval (stretched for that many
        intents, see `UsdcPoller.check_interval`), so a restart with thousands of open
        intents neither sends them all to Circle in the same instant nor bunches them into
        a queue the budget cannot drain. Their checks are routine: nobody is waiting on the
        chat's side at start-up (an address not yet shown is found on the grid). Intents whose
        window has passed (while the bot was down, or during start-up, after the late
        watcher's first round) are handed to the late watcher with a nudge.
        """
        rows = await self._store.run(intents.windowed_intents)
        spread = self._poller.interval_for(len(rows)) / max(len(rows), 1)
        started = 0
        for i, (order_id, intent_id, deadline) in enumerate(rows):
            started += self.start_poller(order_id, intent_id, deadline, first_check_in=i * spread)
        if rows:
            log.info("pollers resumed", extra={"count": started, "late": len(rows) - started})
        return started
