"""Paying by card: one Stripe Checkout Session per order and attempt, and the deep-link return.

The idempotency key and the exact creation parameters are stored before the API call, so an
update handled again after a crash sends the same request and gets the same session back.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any

import stripe
import trio

from itinerabot.bot.handler import OutboxMessage
from itinerabot.card.client import stripe_errors
from itinerabot.card.paid import settle_taken, take_paid_session
from itinerabot.card.verify import minor_units
from itinerabot.clock import WallClock
from itinerabot.config import StripeSettings
from itinerabot.dialogue.types import InlineButton
from itinerabot.errors import ServiceError
from itinerabot.fulfilment import Fulfilment
from itinerabot.models import Order, OrderStatus
from itinerabot.store import Store
from itinerabot.store import card_sessions as sessions
from itinerabot.store import orders as order_rows

log = logging.getLogger(__name__)

#: Telegram start payloads: at most 64 characters of A-Za-z0-9_-
RETURN_OK = "ok_"
RETURN_CANCEL = "back_"
_PAYLOAD_RE = re.compile(r"^(ok|back)_(IB-[0-9A-Z]{6})$")
#: longest a "Pay by card" tap may wait for Stripe, seconds (updates queue meanwhile)
CREATE_TIME_LIMIT = 20.0
#: Stripe wants expires_at at least 30 minutes ahead; leave a margin for a slow retry
_MIN_REMAINING = 35 * 60


def deep_link(bot_username: str, payload: str) -> str:
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", payload), payload
    return f"https://t.me/{bot_username}?start={payload}"


def checkout_params(
    order: Order, attempt: int, *, bot_username: str, expires_at: int
) -> dict[str, Any]:
    """The exact parameters of `checkout.sessions.create` for this order and attempt."""
    ref = order.reference
    return {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": order.currency.lower(),
                    "unit_amount": minor_units(order.price),
                    "product_data": {
                        "name": f"Flight itinerary PDF {ref}",
                        "description": "An itinerary of the flights you entered."
                        " Not an airline ticket or reservation.",
                    },
                },
            }
        ],
        "client_reference_id": ref,
        "metadata": {"order_reference": ref, "order_id": str(order.id), "attempt": str(attempt)},
        "payment_intent_data": {"metadata": {"order_reference": ref}},
        "expires_at": expires_at,
        "success_url": deep_link(bot_username, RETURN_OK + ref),
        "cancel_url": deep_link(bot_username, RETURN_CANCEL + ref),
    }


def pay_button(order: Order, url: str) -> OutboxMessage:
    label = f"Pay {order.price:.2f} {order.currency} by card"
    return OutboxMessage.text(
        f"Order {order.reference}: pay {order.price:.2f} {order.currency} on Stripe's secure"
        " checkout page. Your PDF arrives here as soon as the payment is confirmed.",
        ((InlineButton(label, url=url),),),
    )


class CardPayments:
    """The chat side of card payments."""

    def __init__(
        self,
        store: Store,
        client: stripe.StripeClient,
        fulfilment: Fulfilment,
        settings: StripeSettings,
        clock: WallClock,
        bot_username: str,
    ) -> None:
        self._store = store
        self._client = client
        self._fulfilment = fulfilment
        self._settings = settings
        self._clock = clock
        self._bot = bot_username
        self._lock = trio.Lock()

    async def pay_by_card(self, chat_id: int, reference: str) -> Sequence[OutboxMessage]:
        """The URL button of this order's open Checkout Session, created if needed."""
        async with self._lock:  # a double tap waits and then reuses the same session
            order = await self._store.run(order_rows.get_order_by_reference, reference)
            if order is None or order.chat_id != chat_id:
                return [OutboxMessage.text(f"I cannot find order {reference}. Send /start.")]
            if order.status.is_paid:
                return [OutboxMessage.text(f"Order {reference} is already paid.")]
            if order.status == OrderStatus.CANCELLED:
                return [
                    OutboxMessage.text(
                        f"Order {reference} was cancelled. Send /start for a new one."
                    )
                ]
            try:
                # updates wait while this runs: bound it (a retry resends the stored request)
                with trio.fail_after(CREATE_TIME_LIMIT):
                    url = await self._session_url(order)
            except (ServiceError, trio.TooSlowError) as exc:
                log.error(
                    "stripe: creating a checkout session failed",
                    extra={"order": reference, "error": str(exc) or "timed out"},
                )
                return [
                    OutboxMessage.text(
                        "Card payment is not available right now. Please try again in a minute."
                    )
                ]
            return [pay_button(order, url)]

    async def _session_url(self, order: Order) -> str:
        now = self._clock()
        current = await self._store.run(sessions.latest, order.id)
        remaining = (current.expires_at - now.timestamp()) if current else 0
        if current is not None and current.status == "open" and current.url and remaining > 60:
            return current.url
        if current is None or current.status != "creating" or remaining < _MIN_REMAINING:
            if current is not None and current.status == "creating":
                await self._store.run(sessions.abandon, order.id, current.attempt)
            attempt = (current.attempt if current else 0) + 1
            params = checkout_params(
                order,
                attempt,
                bot_username=self._bot,
                expires_at=int(now.timestamp()) + self._settings.session_expiry,
            )
            current = await self._store.run(
                sessions.begin_attempt, order.id, f"itinerabot-{uuid.uuid4()}", params, now
            )
        with stripe_errors("creating a checkout session"):
            session = await self._client.v1.checkout.sessions.create_async(
                current.params,  # type: ignore[arg-type]
                {"idempotency_key": current.idempotency_key},
            )
        assert session.url is not None
        await self._store.run(
            sessions.set_created, order.id, current.attempt, session.id, session.url
        )
        log.info(
            "checkout session created", extra={"order": order.reference, "session": session.id}
        )
        return session.url

    async def deep_link_return(self, chat_id: int, payload: str) -> Sequence[OutboxMessage]:
        """The traveller came back from Checkout: fulfil at once if Stripe says it is paid."""
        match = _PAYLOAD_RE.match(payload)
        if match is None:
            return [OutboxMessage.text("Welcome back! Send /start to make a new itinerary.")]
        kind, reference = match.groups()
        order, current = await self._store.run(_order_and_session, reference)
        if order is None or order.chat_id != chat_id:
            return [OutboxMessage.text(f"I cannot find order {reference}.")]
        if order.status.is_paid:
            return [
                OutboxMessage.text(
                    f"Order {reference} is paid. Your itinerary PDF is sent to this chat."
                )
            ]
        if current is None or current.session_id is None:
            return [OutboxMessage.text(f"Order {reference} has no card payment yet.")]
        try:
            with stripe_errors("retrieving a checkout session"):
                found = await self._client.v1.checkout.sessions.retrieve_async(current.session_id)
            session = found.to_dict()
        except ServiceError as exc:
            log.warning(
                "stripe: retrieving a session failed", extra={"order": reference, "error": str(exc)}
            )
            session = None
        if session is not None and session.get("id") == current.session_id:
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
                return [
                    OutboxMessage.text(
                        f"Stripe reports a card payment for {reference} that does not match "
                        "the order, so the PDF cannot be sent for it. We have noted it and "
                        "will look into it; you can also reply with /help."
                    )
                ]
        if kind == "back":
            return [pay_button(order, current.url)] if current.url else []
        return [
            OutboxMessage.text(
                f"Your card payment for {reference} is not confirmed yet. If you completed it, "
                "the PDF arrives here in a moment; otherwise tap the pay button again."
            )
        ]


def _order_and_session(
    conn: sqlite3.Connection, reference: str
) -> tuple[Order | None, sessions.CardSession | None]:
    order = order_rows.get_order_by_reference(conn, reference)
    return order, (sessions.latest(conn, order.id) if order else None)
