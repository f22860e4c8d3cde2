"""What Circle says about a crypto refund, recorded inside the caller's transaction in the
state order of `money.set_refund_result` (forward only). The first time a refund is recorded
as sent, the traveller is told in the same transaction, so they hear of it exactly once.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from itinerabot.adapters.circle.status import RefundView
from itinerabot.i18n import Texts
from itinerabot.payments.refund_result import RecordedRefund, record_result
from itinerabot.store.money import Refund, RefundStatus

#: Circle's PaymentStatus as a refund's: `paid` and `failed` are its only final states;
#: `pending`, `confirmed`, `action_required` and anything unknown still wait
_STATUS = {"paid": RefundStatus.SUCCEEDED, "failed": RefundStatus.FAILED}
#: the error recorded for a refund Circle shows failed without saying why
FAILED_AT_CIRCLE = "failed at Circle"


def refund_status(view: RefundView) -> RefundStatus:
    """The status Circle's refund `view` means for the stored refund."""
    return _STATUS.get(view.status, RefundStatus.PENDING)


def record_answer(
    conn: sqlite3.Connection, refund_id: int, view: RefundView, now: datetime
) -> RecordedRefund:
    """Record Circle's refund `view` for the stored refund `refund_id` (its id, its status;
    Circle's reason when it failed). If this records it as sent, the traveller's chat gets
    "We sent X USDC back …" in the outbox. Raises KeyError for an unknown refund."""
    status = refund_status(view)
    error = (view.error_code or FAILED_AT_CIRCLE) if status == RefundStatus.FAILED else None

    def tell(t: Texts, refund: Refund, reference: str) -> str:
        # The refunds table does not keep the destination address (only the operator's
        # command had it), so the message points to the address the traveller gave and to
        # the on-chain transaction, which shows it.
        text = t.gettext(
            "We sent {amount} {currency} back to the address you gave us for order {reference}.",
            amount=f"{refund.amount:.2f}",
            currency=refund.currency,
            reference=reference,
        )
        if view.transaction_hash is not None:
            text += " " + t.gettext("Transaction: {tx_hash}", tx_hash=view.transaction_hash)
        return text

    return record_result(
        conn, refund_id, status, now, tell, provider_refund_id=view.id, error=error
    )
