"""`POST /webhooks/stripe`: Stripe's signed events, verified, de-duplicated, acted on.

Only the raw body with a valid `Stripe-Signature` (the library's default tolerance) is
accepted; anything else is 400 and changes nothing. A genuine event pays only the order the
bot stored its session for, and only as `verify.judge_session` allows; any other claim is an
anomaly, answered 200. Fulfilment only queues work, so the handler answers in milliseconds.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime
from typing import Any

from itinerabot.adapters.stripe.errors import StripeSignatureError
from itinerabot.adapters.stripe.signature import verify_signature
from itinerabot.clock import WallClock
from itinerabot.messages import Notify
from itinerabot.models import Order
from itinerabot.payments.card.paid import SOURCE, TakenSession, settle_taken, take_paid_session
from itinerabot.payments.card.refund_record import take_refund_update
from itinerabot.payments.card.unpaid import take_unpaid_end
from itinerabot.payments.fulfilment import Fulfilment
from itinerabot.store import Store, misc
from itinerabot.store.card_sessions import SessionStatus
from itinerabot.store.orders import OrderHead
from itinerabot.web.app import Outcome, Request, Response

log = logging.getLogger(__name__)

_PAID = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
_FAILED = {
    "checkout.session.async_payment_failed": SessionStatus.FAILED,
    "checkout.session.expired": SessionStatus.EXPIRED,
}
#: a refund's status changed (a `pending` one succeeded or failed)
_REFUND = {"refund.updated", "refund.failed"}


class StripeWebhook:
    """The ASGI route handler for Stripe events."""

    def __init__(
        self,
        store: Store,
        fulfilment: Fulfilment,
        notify: Notify,
        webhook_secret: str,
        clock: WallClock,
        *,
        livemode: bool,
    ) -> None:
        self._store = store
        self._livemode = livemode
        self._fulfilment = fulfilment
        self._notify = notify
        self._secret = webhook_secret
        self._clock = clock

    async def __call__(self, request: Request) -> Response:
        header = request.headers.get("stripe-signature")
        if not header or not header.isascii():
            log.warning("stripe webhook without a usable Stripe-Signature refused")
            return Response.text(400, "missing Stripe-Signature", outcome=Outcome.REFUSED_SIGNATURE)
        try:
            verify_signature(request.body, header, self._secret)
            event = json.loads(request.body)
        except StripeSignatureError:
            log.warning("stripe webhook with a bad signature refused")
            return Response.text(400, "bad signature", outcome=Outcome.REFUSED_SIGNATURE)
        except (ValueError, RecursionError):
            log.warning("signed stripe webhook whose body is not JSON refused")
            return Response.text(400, "body is not JSON")
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            log.warning("signed stripe webhook that is not an event refused")
            return Response.text(400, "not a Stripe event")
        taken = await self._store.run(_take_event, event, self._livemode, self._clock())
        if taken is None:
            return Response.text(200, "already processed", outcome=Outcome.DUPLICATE)
        if isinstance(taken, TakenSession):
            # an anomaly is answered 200 too: Stripe's retries would not change it
            settle_taken(taken, self._fulfilment)
        elif isinstance(taken, Order | OrderHead):  # news of a payment or a refund
            self._notify(taken.chat_id)
        return Response.text(200, "ok")


def _take_event(
    conn: sqlite3.Connection, event: dict[str, Any], livemode: bool, now: datetime
) -> TakenSession | Order | OrderHead | bool | None:
    """Store the event id and everything the event means in one transaction.

    None for an event seen before; a `TakenSession` for an event that claims a payment (paid,
    or recorded as anomalies); the `Order` whose traveller is told of a failed or expired
    payment, or the order whose refund changed; True for anything else taken.
    """
    if not misc.record_event(conn, SOURCE, str(event["id"]), now):
        return None
    kind = event.get("type", "")
    obj = (event.get("data") or {}).get("object") or {}
    if kind in _REFUND and isinstance(obj, dict) and obj.get("object") == "refund":
        return take_refund_update(conn, obj, now) or True
    if kind not in _PAID and kind not in _FAILED:
        return True
    if not isinstance(obj, dict) or not obj.get("id"):
        log.warning("stripe event without a session", extra={"event": event.get("id")})
        return True
    if kind in _FAILED:
        return take_unpaid_end(conn, str(obj["id"]), _FAILED[kind], now) or True
    return take_paid_session(
        conn,
        obj,
        livemode=livemode,
        event_livemode=event.get("livemode") is True,
        source=f"{SOURCE}:{kind}",
        now=now,
    )
