"""Card refunds through Stripe's Refund API: one stored refund asked of Stripe with its own
idempotency key, and Stripe's answer recorded (the traveller is told once it succeeded).
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime
from typing import Any

import stripe

from itinerabot.card.client import stripe_errors
from itinerabot.card.verify import minor_units
from itinerabot.clock import WallClock
from itinerabot.errors import PermanentServiceError, TransientServiceError
from itinerabot.store import Store, money, outbox
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


async def refund_card(
    store: Store, client: stripe.StripeClient, refund: money.Refund, clock: WallClock
) -> money.Refund:
    """Ask Stripe to refund `refund` (stored by `money.begin_refund`) and record the answer.

    `refund.provider_ref` is the PaymentIntent id. Asking again is safe: the stored
    idempotency key makes Stripe answer with the refund it already made. Returns the refund as
    now recorded: succeeded (the chat is told), pending, or failed when Stripe refused it.
    Raises TransientServiceError when Stripe could not be reached or answered 5xx/409/429 (the
    refund stays requested, the error noted: call again), StoreError if the store fails.
    """
    reference = await store.run(_reference_of, refund.order_id)
    params: dict[str, Any] = {
        "payment_intent": refund.provider_ref,
        "amount": minor_units(refund.amount),
        "metadata": {
            "order_reference": reference or "",
            "itinerabot_refund_id": str(refund.id),
            "extra_payment_id": str(refund.extra_payment_id or ""),
        },
    }
    try:
        with stripe_errors("refunding a card payment"):
            answer = await client.v1.refunds.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": refund.idempotency_key},
            )
    except TransientServiceError as exc:
        await store.run(
            money.set_refund_result, refund.id, RefundStatus.REQUESTED, clock(), error=str(exc)
        )
        raise
    except PermanentServiceError as exc:
        log.error(
            "card refund refused by Stripe",
            extra={"order": reference, "refund": refund.id, "error": str(exc)},
        )
        return await store.run(_record, refund.id, RefundStatus.FAILED, clock(), None, str(exc))
    status = _STATUS.get(str(answer.status), RefundStatus.PENDING)
    error = getattr(answer, "failure_reason", None) if status == RefundStatus.FAILED else None
    recorded = await store.run(_record, refund.id, status, clock(), answer.id, error)
    log.info(
        "card refund asked of Stripe",
        extra={
            "order": reference,
            "refund": refund.id,
            "stripe_refund": answer.id,
            "status": recorded.status.value,
            "amount": f"{refund.amount:.2f} {refund.currency}",
        },
    )
    return recorded


def take_refund_update(
    conn: sqlite3.Connection, refund: dict[str, Any], now: datetime
) -> OrderHead | None:
    """A `refund.updated` / `refund.failed` event's Refund object, inside the caller's
    transaction: record its new status if it is one of ours. The order whose chat to wake.

    Ours means: the refund id in its metadata is stored with this very Stripe refund id,
    so another product's refunds on the same account change nothing.
    """
    ours = str((refund.get("metadata") or {}).get("itinerabot_refund_id") or "")
    stored = money.get_refund(conn, int(ours)) if ours.isdigit() else None
    status = _STATUS.get(str(refund.get("status")))
    if stored is None or stored.provider_refund_id != refund.get("id") or status is None:
        return None
    error = str(refund.get("failure_reason")) if status == RefundStatus.FAILED else None
    recorded = _record(conn, stored.id, status, now, None, error)
    if recorded.status == RefundStatus.FAILED:
        log.error(
            "card refund failed at Stripe",
            extra={"refund": stored.id, "stripe_refund": refund.get("id"), "error": error},
        )
    return order_rows.get_order_head(conn, stored.order_id)


def _reference_of(conn: sqlite3.Connection, order_id: int) -> str | None:
    order = order_rows.get_order_head(conn, order_id)
    return order.reference if order else None


def _record(
    conn: sqlite3.Connection,
    refund_id: int,
    status: RefundStatus,
    now: datetime,
    provider_refund_id: str | None,
    error: str | None,
) -> money.Refund:
    """Record Stripe's answer; the first time a refund succeeds, tell its chat."""
    before = money.get_refund(conn, refund_id)
    money.set_refund_result(
        conn, refund_id, status, now, provider_refund_id=provider_refund_id, error=error
    )
    after = money.get_refund(conn, refund_id)
    assert before is not None and after is not None
    order = order_rows.get_order_head(conn, after.order_id)
    if (
        order is not None
        and after.status == RefundStatus.SUCCEEDED
        and before.status != RefundStatus.SUCCEEDED
    ):
        outbox.enqueue(
            conn,
            order.chat_id,
            "text",
            {
                "text": f"We refunded {after.amount:.2f} {after.currency} to your card for "
                f"order {order.reference}. Depending on your bank it shows on your statement "
                "within 5 to 10 business days."
            },
            created_at=now,
            order_id=order.id,
        )
    return after
