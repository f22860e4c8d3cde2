"""A provider's answer about a refund (Stripe, Circle, Telegram), recorded inside the caller's
transaction in the state order of `money.set_refund_result` (forward only); the first time it is
recorded as succeeded, the traveller is told in the same transaction, so they hear of it once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from itinerabot import messages
from itinerabot.i18n import Texts
from itinerabot.messages import Text
from itinerabot.store import languages, money
from itinerabot.store import orders as order_rows
from itinerabot.store.money import Refund, RefundStatus

#: the sentence telling the traveller the money is back: (their texts, the refund, the order's
#: reference) → text
Tell = Callable[[Texts, Refund, str], str]


@dataclass(frozen=True, slots=True)
class RecordedRefund:
    """A refund as recorded after the provider's answer."""

    refund: Refund
    #: the status it had before, if the answer was recorded (a pending refund still pending
    #: counts); None if the refund had moved past it (a repeat, or an answer out of order)
    was: RefundStatus | None
    #: the chat told that the money is back (by this answer), to wake the sender for
    told_chat: int | None


def record_result(
    conn: sqlite3.Connection,
    refund_id: int,
    status: RefundStatus,
    now: datetime,
    tell: Tell,
    *,
    provider_refund_id: str | None = None,
    error: str | None = None,
    returned: bool = False,
) -> RecordedRefund:
    """Record the provider's answer for the stored refund `refund_id`; the first time it
    succeeds, queue `tell`'s sentence for the order's chat. Raises KeyError for an unknown
    refund."""
    was = money.set_refund_result(
        conn,
        refund_id,
        status,
        now,
        provider_refund_id=provider_refund_id,
        error=error,
        returned=returned,
    )
    refund = money.get_refund(conn, refund_id)
    if refund is None:
        raise KeyError(refund_id)
    told_chat = None
    order = order_rows.get_order_head(conn, refund.order_id)
    if order is not None and was is not None and refund.status == RefundStatus.SUCCEEDED:
        text = tell(languages.texts_of(conn, order.chat_id), refund, order.reference)
        messages.queue(conn, order.chat_id, Text(text), now=now, order_id=order.id)
        told_chat = order.chat_id
    return RecordedRefund(refund, was, told_chat)
