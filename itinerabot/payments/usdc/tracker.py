"""What an observed payment intent means for its order: the single place that acts on it.

The poller, the late watcher and Circle's webhook pass every intent they see to
`IntentTracker.observe`, which records it in one transaction (`record`) and then wakes the
sender and warns of money owed back. A paid intent is recorded with its order's payment in
the same transaction (`record_paid`).
"""

from __future__ import annotations

import logging

import trio

from itinerabot.adapters.circle.budget import Lane
from itinerabot.adapters.circle.client import CircleClient
from itinerabot.adapters.circle.errors import CircleApiError
from itinerabot.adapters.circle.status import Outcome, PaymentIntentView
from itinerabot.clock import WallClock
from itinerabot.errors import ServiceError
from itinerabot.messages import Notify
from itinerabot.models import Payment, PaymentMethod
from itinerabot.payments.fulfilment import Fulfilment
from itinerabot.payments.usdc import record
from itinerabot.payments.usdc.lifetime import Lifetime
from itinerabot.payments.usdc.record import Applied, Wording
from itinerabot.store import Store
from itinerabot.store import circle_intents as intents
from itinerabot.store.money import ExtraKind

log = logging.getLogger(__name__)


class IntentTracker:
    """Acts on observed payment intents; shared by the poller, the late watcher and the webhook."""

    def __init__(
        self,
        store: Store,
        client: CircleClient,
        fulfilment: Fulfilment,
        notify: Notify,
        clock: WallClock,
        *,
        card_enabled: bool,
    ) -> None:
        self._store = store
        self._client = client
        self._fulfilment = fulfilment
        self._notify = notify
        self._clock = clock
        self._card_enabled = card_enabled

    @property
    def _wording(self) -> Wording:
        return Wording(self._card_enabled, self._fulfilment.support_contact)

    async def observe(
        self, order_id: int, view: PaymentIntentView, *, source: str
    ) -> Outcome | None:
        """Act on one observation of an intent of `order_id`; returns its outcome, or None
        when the order needs this intent no more (paid another way, or unknown).

        Raises StoreError if the store fails (nothing was recorded: observe again).
        """
        outcome = view.outcome
        if outcome == Outcome.PAID:
            payment = await self.payment_of(view)
            if await self.record_paid(order_id, view.id, payment, source=source) is not None:
                return Outcome.UNDERPAID  # refused: the intent stays open and watched
            return outcome
        applied = await self._store.run(record.apply, order_id, view, self._wording, self._clock())
        self._after(applied, view.id, source)
        if applied.order is None or applied.order.status.is_paid:
            return None
        return outcome

    async def record_paid(
        self, order_id: int, intent_id: str, payment: Payment, *, source: str
    ) -> str | None:
        """Record the payment of a paid intent and close the intent, in one transaction; then
        the sender and the listeners hear of it. A repeat changes nothing. Returns why the
        order refused the payment (the intent then stays open), else None.
        Raises StoreError (nothing recorded: the caller retries)."""
        recorded = await self._store.run(
            record.record_paid,
            order_id,
            intent_id,
            payment,
            source,
            self._clock(),
            self._fulfilment.support_contact,
        )
        self._fulfilment.settle(recorded)
        if recorded.refused is not None and recorded.order is not None:
            self._notify(recorded.order.chat_id)  # what arrived is owed back: told
        return recorded.refused

    async def window_over(self, order_id: int, intent_id: str, lifetime: Lifetime) -> bool:
        """The 30 s window closed unpaid: mark the intent timed_out and tell the chat until
        when it is still checked (once). True if this call did it. Raises StoreError."""
        order = await self._store.run(
            record.window_over, order_id, intent_id, lifetime, self._wording, self._clock()
        )
        if order is None:
            return False
        log.warning(
            "USDC payment not confirmed within the poll window; checked on until expiry",
            extra={"order": order.reference, "intent": intent_id},
        )
        self._notify(order.chat_id)
        return True

    async def lapse(self, order_id: int, intent_id: str) -> None:
        """Stop watching an intent past its expiry and margin. Raises StoreError."""
        applied = await self._store.run(
            record.lapse, order_id, intent_id, self._wording, self._clock()
        )
        log.info("payment intent no longer watched", extra={"intent": intent_id})
        self._after(applied, intent_id, "circle-late-check")

    async def supersede(self, intent_id: str, *, lane: Lane) -> PaymentIntentView:
        """Ask Circle to expire an intent whose order was paid another way, so no payment can
        land on it, and record that it was asked; returns the intent as Circle then shows it.

        A refusal is recorded as asked only if the intent has ended at Circle (it refuses to
        expire an intent paid or expired meanwhile); one still open is asked again next round.

        Its requests wait in `lane` of the budget.
        Raises ServiceError (nothing recorded: ask again) or StoreError.
        """
        try:
            view = await self._client.expire_payment_intent(intent_id, lane=lane)
        except CircleApiError as exc:
            log.info(
                "circle did not expire the payment intent; looking at it",
                extra={"intent": intent_id, "error": exc.message},
            )
            view = await self._client.get_payment_intent(intent_id, lane=lane)
            if not view.outcome.is_final:
                log.warning(
                    "circle refused to expire an open payment intent; asking again next round",
                    extra={"intent": intent_id, "error": exc.message},
                )
                return view
        await self._store.run(intents.supersede, intent_id)
        log.info(
            "asked circle to expire a payment intent the order no longer needs",
            extra={"intent": intent_id, "status": view.latest.status if view.latest else None},
        )
        return view

    async def payment_of(self, view: PaymentIntentView) -> Payment:
        """The payment record of a paid intent, with its transaction hash when Circle gives it
        within 5 s (the receipt shows it; its absence holds nothing up). Never raises."""
        tx_hash = None
        payment_id = view.payment_ids[0] if view.payment_ids else None
        if payment_id:
            with trio.move_on_after(5):
                try:
                    # the traveller waits for the receipt: ahead of routine checks
                    found = await self._client.get_payment(payment_id, lane=Lane.TRAVELLER)
                    tx_hash = found.transaction_hash
                except ServiceError as exc:
                    log.info("no transaction hash for the receipt", extra={"error": exc.message})
        return Payment(
            method=PaymentMethod.USDC,
            amount=view.amount_paid if view.amount_paid is not None else view.amount,
            currency="USDC",
            provider_ref=view.id,
            provider_payment_id=payment_id,
            tx_hash=tx_hash,
            paid_at=view.latest.time if view.latest is not None else self._clock(),
        )

    def _after(self, applied: Applied, intent_id: str, source: str) -> None:
        """After an observation committed: wake the sender, warn of money owed back."""
        order = applied.order
        if order is None:
            return
        if applied.owed is not None:
            extra_id, amount, kind = applied.owed
            log.warning(
                "USDC received but not credited: owed back",
                extra={
                    "order": order.reference,
                    "intent": intent_id,
                    "amount": f"{amount:.2f} USDC",
                    "kind": kind.value,
                    "source": source,
                },
            )
            if kind == ExtraKind.SECOND:
                for listener in self._fulfilment.extra_listeners:
                    listener(extra_id, PaymentMethod.USDC)
        if applied.told:
            self._notify(order.chat_id)
