"""Does a Stripe Checkout Session pay its order? The one check the webhook and the deep-link
return share; pure: no network, no clock, no store.

The order is the one the bot stored the session for. A session's `metadata` and
`client_reference_id` are only compared with it, never used to pick it: anything else on
the same Stripe account (a Payment Link, another product's Checkout) can put any reference
there, and a session's metadata can be edited after it was created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from itinerabot.models import Payment, PaymentMethod
from itinerabot.store.orders import OrderHead

#: why a genuine session that claims to pay does not pay (anomaly reasons)
UNKNOWN_SESSION = "unknown_session"  # the bot never created this session
LIVEMODE = "livemode"  # a live event for a test key, or the other way round
NOT_PAID = "not_paid"  # complete, but nothing was paid (no_payment_required)
CURRENCY = "currency"
AMOUNT = "amount"
#: a session that pays its order but names another: recorded, and the stored order is paid
METADATA_MISMATCH = "metadata_mismatch"


def minor_units(amount: Decimal) -> int:
    """Cents (or the local equivalent) of an amount with two decimals."""
    return int((amount * 100).to_integral_exact())


@dataclass(frozen=True, slots=True)
class Problem:
    """One anomaly to record: its reason and the facts the operator needs."""

    reason: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a session means for its order.

    `payment` is set when the session pays `order_id`; `waiting` when an asynchronous method
    (a bank debit) is still settling, so nothing is paid yet and nothing is wrong; `problems`
    are anomalies to record: the reasons it does not pay, or a metadata mismatch of a session
    that does.
    """

    order_id: int | None
    payment: Payment | None = None
    waiting: bool = False
    problems: tuple[Problem, ...] = field(default=())


def payment_intent_id(session: Mapping[str, Any]) -> str | None:
    """The PaymentIntent id of a session (`payment_intent` is an id, or an expanded object)."""
    intent = session.get("payment_intent")
    if isinstance(intent, Mapping):
        intent = intent.get("id")
    return str(intent) if intent else None


def judge_session(
    session: Mapping[str, Any],
    order: OrderHead | None,
    *,
    livemode: bool,
    event_livemode: bool | None,
    paid_at: datetime,
) -> Verdict:
    """Judge a Checkout Session (Stripe's JSON) that claims to pay.

    `order` is the order the bot stored this session id for (None: the bot never created it);
    `livemode` is the mode of the bot's key; `event_livemode` the event's own flag (None when
    the session was retrieved from the API). The session pays only if it is the bot's, in
    the key's mode, `payment_status` "paid", and exactly the order's price and currency.
    """
    status = session.get("payment_status")
    if status == "unpaid":
        # checkout.session.completed of a delayed method: async_payment_succeeded follows
        return Verdict(order.id if order else None, waiting=True)
    facts = _facts(session, order, livemode=livemode, event_livemode=event_livemode)
    if order is None:
        return Verdict(None, problems=(Problem(UNKNOWN_SESSION, facts),))
    reasons = _reasons(session, order, livemode=livemode, event_livemode=event_livemode)
    if reasons and reasons != [METADATA_MISMATCH]:
        detail = {**facts, "problems": reasons}
        return Verdict(order.id, problems=(Problem(reasons[0], detail),))
    payment = Payment(
        method=PaymentMethod.CARD,
        amount=order.price,
        currency=order.currency,
        provider_ref=str(session["id"]),
        provider_payment_id=payment_intent_id(session),
        paid_at=paid_at,
    )
    problems = tuple(Problem(r, facts) for r in reasons)  # a metadata mismatch, if any
    return Verdict(order.id, payment=payment, problems=problems)


def _reasons(
    session: Mapping[str, Any],
    order: OrderHead,
    *,
    livemode: bool,
    event_livemode: bool | None,
) -> list[str]:
    """Why the session does not pay `order` (anomaly reasons, in this order): [] if it does;
    [METADATA_MISMATCH] alone if it pays but names another order."""
    reasons = []
    if session.get("livemode") is not livemode or event_livemode not in (None, livemode):
        reasons.append(LIVEMODE)
    if session.get("payment_status") != "paid":
        reasons.append(NOT_PAID)
    if str(session.get("currency") or "").lower() != order.currency.lower():
        reasons.append(CURRENCY)
    if session.get("amount_total") != minor_units(order.price):
        reasons.append(AMOUNT)
    metadata_ref = (session.get("metadata") or {}).get("order_reference")
    named = {str(v) for v in (metadata_ref, session.get("client_reference_id")) if v}
    if named - {order.reference}:
        reasons.append(METADATA_MISMATCH)
    return reasons


def _facts(
    session: Mapping[str, Any],
    order: OrderHead | None,
    *,
    livemode: bool,
    event_livemode: bool | None,
) -> dict[str, Any]:
    """What the session says, beside what the bot expected of it."""
    facts: dict[str, Any] = {
        "session": session.get("id"),
        "payment_status": session.get("payment_status"),
        "amount_total": session.get("amount_total"),
        "currency": session.get("currency"),
        "livemode": session.get("livemode"),
        "event_livemode": event_livemode,
        "metadata_order_reference": (session.get("metadata") or {}).get("order_reference"),
        "client_reference_id": session.get("client_reference_id"),
        "payment_link": session.get("payment_link"),
        "payment_intent": payment_intent_id(session),
        "expected_livemode": livemode,
    }
    if order is not None:
        facts.update(
            order=order.reference,
            expected_amount_total=minor_units(order.price),
            expected_currency=order.currency.lower(),
        )
    return facts
