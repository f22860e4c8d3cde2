"""A `successful_payment` service message: the one thing that pays an order in Stars.

Inside the update's own transaction: remember the charge (once: the same message seen again
does nothing), check it against the invoice its payload names, then `record_payment` as
every method does. A charge that matches no invoice, or not its currency or amount, is an
anomaly and pays nothing; the traveller is told it will be looked into.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from decimal import Decimal

from itinerabot import messages
from itinerabot.messages import Text
from itinerabot.models import STARS_CURRENCY, Payment, PaymentMethod
from itinerabot.payments.fulfilment import Recorded, record_payment
from itinerabot.store import languages, money, stars
from itinerabot.store.stars import StarPayment

SOURCE = "telegram:successful_payment"


def record_star_payment(
    conn: sqlite3.Connection,
    paid: StarPayment,
    now: datetime,
    *,
    support: str | None = None,
) -> Recorded | None:
    """Record a Stars payment and, when it pays its invoice's order, the order's transition
    (`record_payment`). None when there is nothing more to do: the charge was seen before,
    or it matches no invoice (an anomaly, the chat told)."""
    invoice = stars.invoice_by_payload(conn, paid.payload)
    if not stars.record_payment(conn, paid, invoice.order_id if invoice else None, now):
        return None
    if invoice is None:
        _anomaly(conn, paid, "unknown_payload", "no invoice has this payload", None, now)
        return None
    payment = Payment(
        method=PaymentMethod.STARS,
        amount=Decimal(paid.amount),
        currency=paid.currency,
        provider_ref=paid.charge_id,
        paid_at=now,
        provider_payment_id=paid.provider_charge_id,
    )
    if paid.currency != STARS_CURRENCY or paid.amount != invoice.amount:
        asked = f"{invoice.amount} {STARS_CURRENCY}"
        why = f"{paid.amount} {paid.currency} paid; the invoice asked {asked}"
        _anomaly(conn, paid, "amount_or_currency", why, invoice.order_id, now)
        return None
    return record_payment(
        conn, invoice.order_id, payment, SOURCE, now, support=support, price=Decimal(invoice.amount)
    )


def _anomaly(
    conn: sqlite3.Connection,
    paid: StarPayment,
    reason: str,
    why: str,
    order_id: int | None,
    now: datetime,
) -> None:
    """Record a charge that pays nothing for the operator, and tell the chat."""
    money.record_anomaly(
        conn,
        source="telegram",
        provider_ref=paid.charge_id,
        reason=reason,
        detail={
            "why": why,
            "payload": paid.payload,
            "amount": paid.amount,
            "currency": paid.currency,
            "payer_id": paid.payer_id,
        },
        now=now,
        order_id=order_id,
    )
    t = languages.texts_of(conn, paid.chat_id)
    text = t.gettext(
        "We received your payment of {amount} ⭐ but could not match it to an order "
        "awaiting it. We will look into it and refund it if it paid for nothing.",
        amount=paid.amount,
    )
    messages.queue(conn, paid.chat_id, Text(text), now=now, order_id=order_id)
