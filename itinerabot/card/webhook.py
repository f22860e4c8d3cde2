"""`POST /webhooks/stripe`: Stripe's signed events, verified, de-duplicated, acted on.

Only the raw body with a valid `Stripe-Signature` (the library's default tolerance) is
accepted; anything else is 400 and changes nothing. Fulfilment only queues work, so the
handler answers in milliseconds.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime
from typing import Any

import stripe

from itinerabot.bot.sender import Sender, keyboard_to_json
from itinerabot.card.checkout import payment_from_session
from itinerabot.clock import WallClock
from itinerabot.dialogue.types import InlineButton
from itinerabot.fulfilment import Fulfilment, Recorded, record_payment
from itinerabot.models import Order
from itinerabot.store import Store, misc, outbox
from itinerabot.store import card_sessions as sessions
from itinerabot.store import orders as order_rows
from itinerabot.web.app import Request, Response

log = logging.getLogger(__name__)

SOURCE = "stripe"
_PAID = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
_FAILED = {"checkout.session.async_payment_failed": "failed", "checkout.session.expired": "expired"}


def _find_order_id(conn: sqlite3.Connection, session: dict[str, Any]) -> int | None:
    """The order a Checkout Session is for: by its metadata, else by the session id."""
    ref = (session.get("metadata") or {}).get("order_reference") or session.get(
        "client_reference_id"
    )
    order_id = order_rows.order_id_by_reference(conn, str(ref)) if ref else None
    if order_id is None and session.get("id"):
        found = sessions.by_session_id(conn, str(session["id"]))
        order_id = found.order_id if found else None
    return order_id


def _record_unpaid_end(
    conn: sqlite3.Connection, session: dict[str, Any], status: str, now: datetime
) -> Order | None:
    """Mark the session failed/expired; the order to tell about it, if still unpaid."""
    order_id = _find_order_id(conn, session)
    order = order_rows.get_order(conn, order_id) if order_id is not None else None
    sessions.set_status(conn, str(session["id"]), status)
    if order is None or order.status.is_paid:
        return None
    latest = sessions.latest(conn, order.id)
    if latest is not None and latest.session_id != session["id"]:
        return None  # a newer attempt is under way; this old page does not matter
    what = "expired" if status == "expired" else "did not go through"
    label = f"Pay {order.price:.2f} {order.currency} by card"
    outbox.enqueue(
        conn,
        order.chat_id,
        "text",
        {
            "text": f"The card payment for order {order.reference} {what}. "
            "Nothing was charged. You can start a new payment:",
            "keyboard": keyboard_to_json(
                ((InlineButton(label, data=f"pay:card:{order.reference}"),),)
            ),
        },
        created_at=now,
        order_id=order.id,
    )
    return order


class StripeWebhook:
    """The ASGI route handler for Stripe events."""

    def __init__(
        self,
        store: Store,
        fulfilment: Fulfilment,
        sender: Sender,
        webhook_secret: str,
        clock: WallClock,
    ) -> None:
        self._store = store
        self._fulfilment = fulfilment
        self._sender = sender
        self._secret = webhook_secret
        self._clock = clock

    async def __call__(self, request: Request) -> Response:
        header = request.headers.get("stripe-signature")
        if not header:
            return Response.text(400, "missing Stripe-Signature")
        try:
            stripe.WebhookSignature.verify_header(
                request.body, header, self._secret, stripe.Webhook.DEFAULT_TOLERANCE
            )
            event = json.loads(request.body)
        except stripe.SignatureVerificationError:
            log.warning("stripe webhook with a bad signature refused")
            return Response.text(400, "bad signature")
        except ValueError:
            return Response.text(400, "body is not JSON")
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            return Response.text(400, "not a Stripe event")
        taken = await self._store.run(_take_event, event, self._clock())
        if taken is None:
            return Response.text(200, "already processed")
        if isinstance(taken, Recorded):
            self._fulfilment.settle(taken)
        elif isinstance(taken, Order):
            self._sender.notify(taken.chat_id)
        return Response.text(200, "ok")


def _take_event(
    conn: sqlite3.Connection, event: dict[str, Any], now: datetime
) -> Recorded | Order | bool | None:
    """Store the event id and everything the event means in one transaction.

    None for an event seen before; a `Recorded` payment; the `Order` whose traveller is told
    of a failed or expired payment; True for anything else taken.
    """
    if not misc.record_event(conn, SOURCE, str(event["id"]), now):
        return None
    kind = event.get("type", "")
    obj = (event.get("data") or {}).get("object") or {}
    if kind not in _PAID and kind not in _FAILED:
        return True
    if not isinstance(obj, dict) or not obj.get("id"):
        log.warning("stripe event without a session", extra={"event": event.get("id")})
        return True
    if kind in _FAILED:
        return _record_unpaid_end(conn, obj, _FAILED[kind], now) or True
    if obj.get("payment_status") not in ("paid", "no_payment_required"):
        return True  # an async method is still settling: async_payment_succeeded follows
    order_id = _find_order_id(conn, obj)
    if order_id is None:
        log.warning("paid stripe session of an unknown order", extra={"session": obj.get("id")})
        return True
    sessions.set_status(conn, str(obj["id"]), "complete")
    payment = payment_from_session(obj, now)
    return record_payment(conn, order_id, payment, f"stripe:{kind}", now)
