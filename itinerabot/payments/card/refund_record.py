"""What Stripe says about a card refund, recorded in the store inside the caller's
transaction: an answer, a look-up or a `refund.*` event, in the state order of
`money.set_refund_result` (forward only; a succeeded refund becomes failed only when an event
says so: a card refund the bank sent back). The traveller is told once, when it succeeds.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from itinerabot.i18n import Texts
from itinerabot.models import PaymentMethod
from itinerabot.payments.card.verify import minor_units
from itinerabot.payments.refund_result import record_result
from itinerabot.store import money
from itinerabot.store import orders as order_rows
from itinerabot.store.money import RefundStatus
from itinerabot.store.orders import OrderHead

log = logging.getLogger(__name__)

#: Stripe's refund statuses; `requires_action` (not for cards) waits like `pending`
_STATUS = {
    "succeeded": RefundStatus.SUCCEEDED,
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.FAILED,
}
#: the metadata key that names the stored refund a Stripe refund was made for
REFUND_ID_KEY = "itinerabot_refund_id"
_REFUND_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits that fit SQLite's INTEGER


def is_made_for(found: Mapping[str, Any], refund: money.Refund) -> bool:
    """Is Stripe's refund `found` the one made for the stored `refund`? Its metadata names
    the stored refund, and it refunds the same PaymentIntent by the same amount (another
    product on the same Stripe account cannot make a refund of ours change)."""
    metadata = found.get("metadata")
    named = metadata.get(REFUND_ID_KEY) if isinstance(metadata, Mapping) else None
    return (
        refund.method == PaymentMethod.CARD
        and named == str(refund.id)
        and found.get("payment_intent") == refund.provider_ref
        and found.get("amount") == minor_units(refund.amount)
        and refund.provider_refund_id in (None, found.get("id"))
    )


def take_refund_update(
    conn: sqlite3.Connection, refund: dict[str, Any], now: datetime
) -> OrderHead | None:
    """A `refund.updated` / `refund.failed` event's Refund object, inside the caller's
    transaction: record its new status if it is one of ours (`is_made_for`), storing its
    Stripe id if the answer that carried it was lost. The order whose chat to wake.

    A refund Stripe reports failed after it succeeded (the bank sent it back) is recorded
    failed and logged as an ERROR for the operator; the traveller is told nothing new.
    """
    metadata = refund.get("metadata")
    named = str(metadata.get(REFUND_ID_KEY) or "") if isinstance(metadata, Mapping) else ""
    stored = money.get_refund(conn, int(named)) if _REFUND_ID.fullmatch(named) else None
    status = _STATUS.get(str(refund.get("status")))
    if stored is None or status is None or not is_made_for(refund, stored):
        return None
    recorded = record_found(conn, stored.id, refund, now, returned=True)
    if recorded.status == RefundStatus.FAILED and stored.status != RefundStatus.FAILED:
        extra = {
            "refund": stored.id,
            "order_id": stored.order_id,
            "stripe_refund": refund.get("id"),
            "error": recorded.error,
        }
        if stored.status == RefundStatus.SUCCEEDED:
            log.error(
                "card refund returned after it succeeded: the traveller was told it was "
                "refunded; follow up with them",
                extra=extra,
            )
        else:
            log.error("card refund failed at Stripe", extra=extra)
    return order_rows.get_order_head(conn, stored.order_id)


def record_found(
    conn: sqlite3.Connection,
    refund_id: int,
    found: Mapping[str, Any],
    now: datetime,
    *,
    returned: bool = False,
) -> money.Refund:
    """Record what Stripe's refund object `found` says (an unknown status waits like
    pending); the refund as now recorded."""
    status = _STATUS.get(str(found.get("status")), RefundStatus.PENDING)
    reason = found.get("failure_reason")
    error = (
        (str(reason) if reason else "failed at Stripe") if status == RefundStatus.FAILED else None
    )
    return record(conn, refund_id, status, now, str(found["id"]), error, returned=returned)


def record(
    conn: sqlite3.Connection,
    refund_id: int,
    status: RefundStatus,
    now: datetime,
    provider_refund_id: str | None,
    error: str | None,
    *,
    returned: bool = False,
) -> money.Refund:
    """Record Stripe's answer; the first time a refund succeeds, tell its chat. The refund
    as now recorded."""
    return record_result(
        conn,
        refund_id,
        status,
        now,
        _card_refunded,
        provider_refund_id=provider_refund_id,
        error=error,
        returned=returned,
    ).refund


def _card_refunded(t: Texts, refund: money.Refund, reference: str) -> str:
    return t.gettext(
        "We refunded {amount} {currency} to your card for order {reference}. Depending on "
        "your bank it shows on your statement within 5 to 10 business days.",
        amount=f"{refund.amount:.2f}",
        currency=refund.currency,
        reference=reference,
    )
