"""Paying by card: one Stripe Checkout Session per order and attempt, and the deep-link return.

The idempotency key and the exact creation parameters are stored before the API call, so an
update handled again after a crash sends the same request and gets the same session back.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import trio

from itinerabot.adapters.stripe.client import StripeApi
from itinerabot.clock import WallClock
from itinerabot.config import StripeSettings
from itinerabot.dialogue.types import InlineButton
from itinerabot.errors import ServiceError
from itinerabot.i18n import N_, Texts, english
from itinerabot.messages import Message, Text
from itinerabot.models import Order
from itinerabot.payments.card.paid import settle_taken, take_paid_session
from itinerabot.payments.card.unpaid import ended_text, new_payment_offer, take_unpaid_end
from itinerabot.payments.card.verify import minor_units
from itinerabot.payments.fulfilment import Fulfilment
from itinerabot.payments.payable import OrderLocks, create_in_time, payable_order
from itinerabot.payments.texts import card_unavailable, pay_by_card_label
from itinerabot.store import Store
from itinerabot.store import card_sessions as sessions
from itinerabot.store import orders as order_rows
from itinerabot.store.card_sessions import SessionStatus

log = logging.getLogger(__name__)

#: Telegram start payloads: at most 64 characters of A-Za-z0-9_-
RETURN_OK = "ok_"
RETURN_CANCEL = "back_"
_PAYLOAD_RE = re.compile(r"^(ok|back)_(IB-[0-9A-Z]{6})$")
#: longest a deep-link return waits for Stripe, seconds (wanted as a setting:
#: stripe.return_time_limit); past it the webhook or the reconciler delivers
RETURN_TIME_LIMIT = 5.0
#: at most one retrieve per order this often, seconds
RETURN_RETRIEVE_EVERY = 10.0
#: Stripe wants expires_at at least 30 minutes ahead; leave a margin for a slow retry
_MIN_REMAINING = 35 * 60

PAID_ALREADY_SENT = N_("Order {reference} is paid. Your itinerary PDF is sent to this chat.")
NO_CARD_PAYMENT = N_("Order {reference} has no card payment yet.")


#: the link the Checkout page sends the traveller back by, for a return payload: the
#: channel's own (Telegram's deep link); raises ValueError for a payload it cannot carry
ReturnLink = Callable[[str], str]


def checkout_params(
    order: Order, attempt: int, *, return_link: ReturnLink, expires_at: int
) -> dict[str, Any]:
    """The exact parameters of `checkout.sessions.create` for this order and attempt.

    One line item: the order's units (its travellers when priced per traveller) at the unit
    price, so Stripe's page shows `2 × 10.00` and its `amount_total` is the order's price.
    """
    ref = order.reference
    quantity, unit_amount = _line_quantity(order)
    name = f"Flight itinerary PDF {ref}"
    if quantity > 1:
        name += ", price per traveller"
    travellers = len(order.itinerary.passengers)
    return {
        "mode": "payment",
        "line_items": [
            {
                "quantity": quantity,
                "price_data": {
                    "currency": order.currency.lower(),
                    "unit_amount": unit_amount,
                    "product_data": {
                        "name": name,
                        "description": (
                            f"One itinerary of the flights you entered, for {travellers}"
                            " travellers."
                            if travellers > 1
                            else "An itinerary of the flights you entered."
                        )
                        + " Not an airline ticket or reservation.",
                    },
                },
            }
        ],
        "client_reference_id": ref,
        "metadata": {"order_reference": ref, "order_id": str(order.id), "attempt": str(attempt)},
        "payment_intent_data": {"metadata": {"order_reference": ref}},
        "expires_at": expires_at,
        "success_url": return_link(RETURN_OK + ref),
        "cancel_url": return_link(RETURN_CANCEL + ref),
    }


def _line_quantity(order: Order) -> tuple[int, int]:
    """The line item's quantity and unit amount (minor units): together exactly the order's
    price. A price its quantity does not divide into whole cents (never stored by the bot)
    is asked as one item of the whole price: the total is what the payment is checked on."""
    total = minor_units(order.price)
    if order.quantity > 1 and total % order.quantity == 0:
        return order.quantity, total // order.quantity
    return 1, total


def pay_button(t: Texts, order: Order, url: str) -> Text:
    """The message with the URL button to the order's Checkout page; it says the total, and
    what it is made of when the price is per traveller."""
    label = pay_by_card_label(t, order.price, order.currency)
    if order.quantity > 1:
        text = t.gettext(
            "Order {reference}: pay {price} {currency} ({quantity} × {unit} {currency}) on "
            "Stripe's secure checkout page. Your PDF arrives here as soon as the payment is "
            "confirmed.",
            reference=order.reference,
            price=f"{order.price:.2f}",
            quantity=order.quantity,
            unit=f"{order.unit_price:.2f}",
            currency=order.currency,
        )
    else:
        text = t.gettext(
            "Order {reference}: pay {price} {currency} on Stripe's secure checkout page. "
            "Your PDF arrives here as soon as the payment is confirmed.",
            reference=order.reference,
            price=f"{order.price:.2f}",
            currency=order.currency,
        )
    return Text(text, ((InlineButton(label, url=url),),))


class CardPayments:
    """The chat side of card payments."""

    def __init__(
        self,
        store: Store,
        client: StripeApi,
        fulfilment: Fulfilment,
        settings: StripeSettings,
        clock: WallClock,
        return_link: ReturnLink,
    ) -> None:
        self._store = store
        self._client = client
        self._fulfilment = fulfilment
        self._settings = settings
        self._clock = clock
        self._return_link = return_link
        self._locks = OrderLocks()
        self._throttle = RetrieveThrottle(RETURN_RETRIEVE_EVERY)

    async def pay_by_card(
        self, chat_id: int, reference: str, texts: Texts | None = None
    ) -> Sequence[Message]:
        """The URL button of this order's open Checkout Session, created if needed; said
        in `texts` (English if None)."""
        t = texts or english()
        async with self._locks.hold(reference):  # a double tap reuses the same session
            found = await payable_order(self._store, t, chat_id, reference, sessions.latest)
            if isinstance(found, Text):
                return [found]
            order, current = found
            url = await create_in_time(
                partial(self._session_url, order, current),
                what="stripe: creating a checkout session",
                reference=reference,
            )
            if url is None:
                return [Text(card_unavailable(t))]
            return [pay_button(t, order, url)]

    async def _session_url(self, order: Order, current: sessions.CardSession | None) -> str:
        """The URL of the order's open session, else of a session created for a new attempt
        (or for the one stored but not created: the same request). Raises ServiceError,
        StoreError."""
        now = self._clock()
        remaining = (current.expires_at - now.timestamp()) if current else 0
        if (
            current is not None
            and current.status == SessionStatus.OPEN
            and current.url
            and remaining > 60
        ):
            return current.url
        if (
            current is None
            or current.status != SessionStatus.CREATING
            or remaining < _MIN_REMAINING
        ):
            if current is not None and current.status == SessionStatus.CREATING:
                await self._store.run(sessions.abandon, order.id, current.attempt)
            attempt = (current.attempt if current else 0) + 1
            params = checkout_params(
                order,
                attempt,
                return_link=self._return_link,
                expires_at=int(now.timestamp()) + self._settings.session_expiry,
            )
            current = await self._store.run(
                sessions.begin_attempt, order.id, f"itinerabot-{uuid.uuid4()}", params, now
            )
        session = await self._client.create_checkout_session(
            current.params, idempotency_key=current.idempotency_key
        )
        session_id, url = str(session["id"]), session.get("url")
        assert isinstance(url, str)  # a `payment` mode session always has its page
        await self._store.run(sessions.set_created, order.id, current.attempt, session_id, url)
        log.info(
            "checkout session created", extra={"order": order.reference, "session": session_id}
        )
        return url

    async def deep_link_return(
        self, chat_id: int, payload: str, texts: Texts | None = None
    ) -> Sequence[Message]:
        """The traveller came back from Checkout: fulfil at once if Stripe says it is paid.
        Said in `texts` (English if None).

        Stripe is asked only about a session still open in the store, at most once per order
        every RETURN_RETRIEVE_EVERY seconds and for at most RETURN_TIME_LIMIT seconds (in a
        payment request: no update waits); otherwise, or on a time-out, the payment is "not
        confirmed yet" and the webhook or the reconciler delivers it. Coming back with `back_`
        from a session that ended offers a new payment.
        """
        match, t = _PAYLOAD_RE.match(payload), texts or english()
        if match is None:
            return [Text(t.gettext("Welcome back! Send /start to make a new itinerary."))]
        kind, reference = match.groups()
        order, current = await self._store.run(_order_and_session, reference)
        if order is None or order.chat_id != chat_id:
            return [Text(t.gettext("I cannot find order {reference}.", reference=reference))]
        if order.status.is_paid:
            return [Text(t.gettext(PAID_ALREADY_SENT, reference=reference))]
        if current is None or current.session_id is None:
            return [Text(t.gettext(NO_CARD_PAYMENT, reference=reference))]
        if current.status == SessionStatus.COMPLETE:  # complete at Stripe, yet the order is unpaid
            return [_mismatch(t, reference)]
        if current.status == SessionStatus.OPEN and self._throttle.may_retrieve(order.id):
            answer = await self._ask_stripe(t, order, current.session_id)
            if answer is not None:
                return answer
            current = await self._store.run(sessions.by_session_id, current.session_id)
            assert current is not None
        if kind == "back":
            return [self._pay_again(t, order, current)]
        return [
            Text(
                t.gettext(
                    "Your card payment for {reference} is not confirmed yet. If you completed "
                    "it, the PDF arrives here as soon as Stripe confirms it; otherwise tap the "
                    "pay button again.",
                    reference=reference,
                )
            )
        ]

    async def _retrieve(self, order: Order, session_id: str) -> dict[str, Any] | None:
        """The session as Stripe shows it, or None (logged) if Stripe fails or is slow."""
        session = None
        with trio.move_on_after(RETURN_TIME_LIMIT) as limit:
            try:
                session = await self._client.retrieve_checkout_session(session_id)
            except ServiceError as exc:
                log.warning(
                    "stripe: retrieving a session failed",
                    extra={"order": order.reference, "error": str(exc)},
                )
        if limit.cancelled_caught:
            log.warning(
                "stripe: retrieving a session timed out",
                extra={"order": order.reference, "limit": RETURN_TIME_LIMIT},
            )
        return session

    async def _ask_stripe(self, t: Texts, order: Order, session_id: str) -> list[Message] | None:
        """Retrieve the session (time-limited) and take what Stripe says: the reply, or None
        when Stripe could not tell in time or the session is still open."""
        session = await self._retrieve(order, session_id)
        if session is None or session.get("id") != session_id:
            return None
        if session.get("status") == "expired":
            ended = await self._store.run(
                take_unpaid_end,
                session_id,
                SessionStatus.EXPIRED,
                self._clock(),
                tell=False,
            )
            return (
                [new_payment_offer(t, order, ended_text(t, order, SessionStatus.EXPIRED))]
                if ended
                else None
            )
        if session.get("status") != "complete":
            return None
        taken = await self._store.run(
            take_paid_session,
            session,
            livemode=self._settings.livemode,
            event_livemode=None,
            source="stripe-return",
            now=self._clock(),
        )
        settle_taken(taken, self._fulfilment)
        if taken.verdict.payment is not None:
            return []  # "payment received" and the PDF are queued by fulfilment
        if taken.verdict.problems:
            return [_mismatch(t, order.reference)]
        return None  # a delayed method still settling

    def _pay_again(self, t: Texts, order: Order, current: sessions.CardSession) -> Text:
        """Back from Checkout unpaid: the same page while it is open, else a new payment."""
        remaining = current.expires_at - self._clock().timestamp()
        if current.status == SessionStatus.OPEN and current.url and remaining > 60:
            return pay_button(t, order, current.url)
        closed = t.gettext(
            "The card payment page for order {reference} is closed. Nothing was charged. "
            "You can start a new payment:",
            reference=order.reference,
        )
        return new_payment_offer(t, order, closed)


class RetrieveThrottle:
    """At most one retrieve per order every `every` seconds of trio's clock (a traveller
    tapping the link again and again); remembers only the orders of the last `every` s."""

    def __init__(self, every: float) -> None:
        self._every = every
        self._last: dict[int, float] = {}

    def may_retrieve(self, order_id: int) -> bool:
        now = trio.current_time()
        self._last = {o: t for o, t in self._last.items() if now - t < self._every}
        if order_id in self._last:
            return False
        self._last[order_id] = now
        return True


def _mismatch(t: Texts, reference: str) -> Text:
    return Text(
        t.gettext(
            "Stripe reports a card payment for {reference} that does not match the order, so "
            "the PDF cannot be sent for it. We have noted it and will look into it; you can "
            "also reply with /help.",
            reference=reference,
        )
    )


def _order_and_session(
    conn: sqlite3.Connection, reference: str
) -> tuple[Order | None, sessions.CardSession | None]:
    order = order_rows.get_order_by_reference(conn, reference)
    return order, (sessions.latest(conn, order.id) if order else None)
