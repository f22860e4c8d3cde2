"""Send a paid order's PDF again: one outbox row, queued in one transaction for the running
bot's sender, which finds it on its next rescan.

- delivered: a `document_copy` row (the same PDF; the order stays delivered).
- delivery_failed: the order goes back to `paid` and a `document` row is queued, so that
  the sender marks it delivered when the PDF gets through (or delivery_failed again).
- paid (its PDF row failed, or its outcome stayed unknown): a `document` row, likewise.
- a PDF row of the order still waiting to be sent: nothing is queued (it would be a repeat).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from itinerabot import messages
from itinerabot.messages import DOCUMENT_KINDS, Document, DocumentCopy, Kind
from itinerabot.models import OrderStatus
from itinerabot.operator.errors import Refused, UnknownOrder
from itinerabot.store import history
from itinerabot.store import orders as order_rows


@dataclass(frozen=True, slots=True)
class Resent:
    """What `queue_resend` did: the outbox row (new or already waiting) and its kind."""

    reference: str
    chat_id: int
    message_id: int  # the outbox row's id
    kind: str
    queued: bool  # False: a PDF row was already waiting and nothing was added
    reopened: bool  # True: the order went from delivery_failed back to paid


def queue_resend(conn: sqlite3.Connection, reference: str, now: datetime) -> Resent:
    """Queue the order's PDF once more, inside the caller's transaction.

    Raises UnknownOrder, or Refused for an order that is not paid (it has no PDF).
    """
    order = history.order_by_reference(conn, reference)
    if order is None:
        raise UnknownOrder(reference)
    if not order.status.is_paid:
        raise Refused(
            f"order {reference} is {order.status.value.replace('_', ' ')}: only a paid order"
            " has a PDF to send"
        )
    waiting = [
        m
        for m in history.messages(conn, order.id)
        if m.kind in DOCUMENT_KINDS and m.status == "pending"
    ]
    if waiting:
        row = waiting[0]
        return Resent(reference, order.chat_id, row.id, row.kind, queued=False, reopened=False)
    reopened = False
    if order.status == OrderStatus.DELIVERY_FAILED:
        reopened = order_rows.reopen_delivery(conn, order.id)
    copy = order.status == OrderStatus.DELIVERED
    message = DocumentCopy() if copy else Document()
    row_id = messages.queue(conn, order.chat_id, message, now=now, order_id=order.id)
    kind = Kind.DOCUMENT_COPY if copy else Kind.DOCUMENT
    return Resent(reference, order.chat_id, row_id, kind, queued=True, reopened=reopened)
