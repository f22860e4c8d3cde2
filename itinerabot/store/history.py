"""What the operator reads: an order's rows in full (times, attempts, errors), and the
failed deliveries of paid orders. Read-only queries for `itinerabot orders`.

The bot's own modules read only what their hot paths need; these return every column an
operator may want, apart from secrets (none are stored) and idempotency keys.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from itinerabot.models import Itinerary, OrderStatus
from itinerabot.store.orders import OrderHead
from itinerabot.store.sql import marks

#: outbox kinds that carry the order's PDF
DOCUMENT_KINDS = ("document", "document_copy")
#: outbox statuses of a send that did not surely reach the chat and will not be tried again
UNDELIVERED = ("failed", "unconfirmed")
#: order statuses of an order that has been paid
PAID_STATUSES = (
    OrderStatus.PAID.value,
    OrderStatus.DELIVERED.value,
    OrderStatus.DELIVERY_FAILED.value,
)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True, slots=True)
class OrderRecord(OrderHead):
    """An order with its itinerary, its times and its last delivery error."""

    itinerary: Itinerary
    created_at: datetime
    paid_at: datetime | None
    delivered_at: datetime | None
    document_message_id: int | None
    delivery_error: str | None
    #: how many units the total `price` is made of (the travellers when priced per traveller)
    quantity: int = 1


def _order(row: sqlite3.Row) -> OrderRecord:
    return OrderRecord(
        id=row["id"],
        reference=row["reference"],
        chat_id=row["chat_id"],
        status=OrderStatus(row["status"]),
        price=Decimal(row["price"]),
        currency=row["currency"],
        itinerary=Itinerary.from_dict(json.loads(row["itinerary"])),
        created_at=datetime.fromisoformat(row["created_at"]),
        paid_at=_time(row["paid_at"]),
        delivered_at=_time(row["delivered_at"]),
        document_message_id=row["document_message_id"],
        delivery_error=row["delivery_error"],
        quantity=row["quantity"],
    )


def order_by_reference(conn: sqlite3.Connection, reference: str) -> OrderRecord | None:
    row = conn.execute("SELECT * FROM orders WHERE reference = ?", (reference,)).fetchone()
    return _order(row) if row else None


def undelivered_orders(conn: sqlite3.Connection) -> list[OrderRecord]:
    """Orders whose PDF could not be delivered (status delivery_failed), oldest first."""
    rows = conn.execute(
        "SELECT * FROM orders WHERE status = ? ORDER BY id", (OrderStatus.DELIVERY_FAILED.value,)
    ).fetchall()
    return [_order(r) for r in rows]


def references(conn: sqlite3.Connection, order_ids: set[int]) -> dict[int, str]:
    """The reference of each order id given (unknown ids are left out)."""
    found: dict[int, str] = {}
    for order_id in order_ids:
        row = conn.execute("SELECT reference FROM orders WHERE id = ?", (order_id,)).fetchone()
        if row is not None:
            found[order_id] = row[0]
    return found


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One Stripe Checkout Session attempt of an order (its URL left out: it takes payment)."""

    attempt: int
    session_id: str | None
    status: str
    created_at: datetime
    expires_at: datetime | None


def card_sessions(conn: sqlite3.Connection, order_id: int) -> list[SessionRecord]:
    rows = conn.execute(
        "SELECT attempt, session_id, status, created_at, params FROM stripe_sessions"
        " WHERE order_id = ? ORDER BY attempt",
        (order_id,),
    ).fetchall()
    records = []
    for row in rows:
        expires = json.loads(row["params"]).get("expires_at")
        records.append(
            SessionRecord(
                attempt=row["attempt"],
                session_id=row["session_id"],
                status=row["status"],
                created_at=datetime.fromisoformat(row["created_at"]),
                expires_at=datetime.fromtimestamp(int(expires), UTC) if expires else None,
            )
        )
    return records


@dataclass(frozen=True, slots=True)
class IntentRecord:
    """One Circle payment intent attempt of an order."""

    attempt: int
    intent_id: str | None
    status: str
    address: str | None
    chain: str | None
    expires_on: str | None
    created_at: datetime


def circle_intents(conn: sqlite3.Connection, order_id: int) -> list[IntentRecord]:
    rows = conn.execute(
        "SELECT attempt, intent_id, status, address, chain, expires_on, created_at"
        " FROM circle_intents WHERE order_id = ? ORDER BY attempt",
        (order_id,),
    ).fetchall()
    return [
        IntentRecord(
            attempt=r["attempt"],
            intent_id=r["intent_id"],
            status=r["status"],
            address=r["address"],
            chain=r["chain"],
            expires_on=r["expires_on"],
            created_at=datetime.fromisoformat(r["created_at"]),
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One outbox row: what was (or will be) sent to a chat, and how its sending went."""

    id: int
    chat_id: int
    order_id: int | None
    kind: str
    status: str
    attempts: int
    unknown_outcomes: int
    in_flight: bool
    message_id: int | None
    text: str | None  # what a text says, or a photo's caption
    error: str | None
    created_at: datetime
    first_failed_at: datetime | None
    sent_at: datetime | None


def _message(row: sqlite3.Row) -> MessageRecord:
    payload = json.loads(row["payload"])
    text = payload.get("text") or payload.get("caption") if isinstance(payload, dict) else None
    return MessageRecord(
        id=row["id"],
        chat_id=row["chat_id"],
        order_id=row["order_id"],
        kind=row["kind"],
        status=row["status"],
        attempts=row["attempts"],
        unknown_outcomes=row["unknown_outcomes"],
        in_flight=bool(row["in_flight"]),
        message_id=row["message_id"],
        text=str(text) if text else None,
        error=row["error"],
        created_at=datetime.fromisoformat(row["created_at"]),
        first_failed_at=_time(row["first_failed_at"]),
        sent_at=_time(row["sent_at"]),
    )


def messages(conn: sqlite3.Connection, order_id: int) -> list[MessageRecord]:
    """The order's outbox rows in the order they were queued (sent rows past retention are gone)."""
    rows = conn.execute("SELECT * FROM outbox WHERE order_id = ? ORDER BY id", (order_id,))
    return [_message(r) for r in rows.fetchall()]


def undelivered_messages(conn: sqlite3.Connection, *, texts_since: datetime) -> list[MessageRecord]:
    """Rows of paid orders that failed or whose outcome stayed unknown, oldest first, unless
    the order's PDF got through after them: a later PDF row was sent, or the order was
    delivered after the row was queued (the later row may be gone to retention).

    A row that is not a PDF, of an order whose PDF was delivered, counts only if it failed
    at `texts_since` or later: nothing but a later PDF clears it, so it would stay for ever.
    Times compare as the ISO text they are stored as (one clock, one format)."""
    rows = conn.execute(
        "SELECT m.* FROM outbox m JOIN orders o ON o.id = m.order_id"
        f" WHERE m.status IN ({marks(UNDELIVERED)}) AND o.status IN ({marks(PAID_STATUSES)})"
        " AND NOT (o.delivered_at IS NOT NULL AND o.delivered_at > m.created_at)"
        " AND NOT EXISTS (SELECT 1 FROM outbox later WHERE later.order_id = m.order_id"
        "   AND later.id > m.id AND later.kind IN (?, ?) AND later.status = 'sent')"
        " AND (m.kind IN (?, ?) OR o.status != ?"
        "   OR COALESCE(m.first_failed_at, m.created_at) >= ?)"
        " ORDER BY m.id",
        (
            *UNDELIVERED,
            *PAID_STATUSES,
            *DOCUMENT_KINDS,
            *DOCUMENT_KINDS,
            OrderStatus.DELIVERED.value,
            texts_since.isoformat(),
        ),
    )
    return [_message(r) for r in rows.fetchall()]
