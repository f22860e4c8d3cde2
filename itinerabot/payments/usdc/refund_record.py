"""What Circle says about a crypto refund, recorded inside the caller's transaction in the
state order of `money.set_refund_result` (forward only). The first time a refund is recorded
as sent, the traveller is told in the same transaction, so they hear of it exactly once.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from itinerabot import messages
from itinerabot.adapters.circle.status import RefundView
from itinerabot.messages import Text
from itinerabot.store import languages, money
from itinerabot.store import orders as order_rows
from itinerabot.store.money import RefundStatus

#: Circle's PaymentStatus as a refund's: `paid` and `failed` are its only final states;
#: `pending`, `confirmed`, `action_required` and anything unknown still wait
_STATUS = {"paid": RefundStatus.SUCCEEDED, "failed": RefundStatus.FAILED}
#: the error recorded for a refund Circle shows failed without saying why
FAILED_AT_CIRCLE = "failed at Circle"


def refund_status(view: RefundView) -> RefundStatus:
    """The status Circle's refund `view` means for the stored refund."""
    return _STATUS.get(view.status, RefundStatus.PENDING)


@dataclass(frozen=True, slots=True)
class RecordedRefund:
    """A refund as recorded after Circle's answer."""

    refund: money.Refund
    #: the status it had before, if the answer was recorded (a pending refund still pending
    #: counts); None if the refund had moved past it (a repeat, or an answer out of order)
    was: RefundStatus | None
    #: the chat told that the money was sent (by this answer), to wake the sender for
    told_chat: int | None


def record_answer(
    conn: sqlite3.Connection, refund_id: int, view: RefundView, now: datetime
) -> RecordedRefund:
    """Record Circle's refund `view` for the stored refund `refund_id` (its id, its status;
    Circle's reason when it failed). If this records it as sent, the traveller's chat gets
    "We sent X USDC back …" in the outbox. Raises KeyError for an unknown refund."""
    status = refund_status(view)
    error = (view.error_code or FAILED_AT_CIRCLE) if status == RefundStatus.FAILED else None
    was = money.set_refund_result(
        conn, refund_id, status, now, provider_refund_id=view.id, error=error
    )
    refund = money.get_refund(conn, refund_id)
    if refund is None:
        raise KeyError(refund_id)
    told_chat = None
    if was is not None and refund.status == RefundStatus.SUCCEEDED:
        told_chat = _tell_sent(conn, refund, view.transaction_hash, now)
    return RecordedRefund(refund, was, told_chat)


def _tell_sent(
    conn: sqlite3.Connection, refund: money.Refund, tx_hash: str | None, now: datetime
) -> int | None:
    """Queue "We sent X USDC back …" for the refund's chat; the chat id (None: no order).

    The refunds table does not keep the destination address (only the operator's command
    had it), so the message points to the address the traveller gave and to the on-chain
    transaction, which shows it.
    """
    order = order_rows.get_order_head(conn, refund.order_id)
    if order is None:
        return None
    t = languages.texts_of(conn, order.chat_id)
    text = t.gettext(
        "We sent {amount} {currency} back to the address you gave us for order {reference}.",
        amount=f"{refund.amount:.2f}",
        currency=refund.currency,
        reference=order.reference,
    )
    if tx_hash is not None:
        text += " " + t.gettext("Transaction: {tx_hash}", tx_hash=tx_hash)
    messages.queue(conn, order.chat_id, Text(text), now=now, order_id=order.id)
    return order.chat_id
