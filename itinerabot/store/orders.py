"""Orders and payments in SQLite: every state change is one conditional UPDATE.

Functions take the open connection and run inside the caller's transaction (`Store.run`).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from itinerabot.models import Itinerary, Order, OrderStatus, Payment, PaymentMethod

_UNPAID = (OrderStatus.AWAITING_PAYMENT.value, OrderStatus.CANCELLED.value)


def _order(row: sqlite3.Row) -> Order:
    return Order(
        id=row["id"],
        reference=row["reference"],
        chat_id=row["chat_id"],
        itinerary=Itinerary.from_dict(json.loads(row["itinerary"])),
        price=Decimal(row["price"]),
        currency=row["currency"],
        status=OrderStatus(row["status"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        document_message_id=row["document_message_id"],
        quantity=row["quantity"],
    )


def insert_order(
    conn: sqlite3.Connection,
    *,
    reference: str,
    chat_id: int,
    itinerary: Itinerary,
    price: Decimal,
    currency: str,
    created_at: datetime,
    quantity: int = 1,
) -> int:
    cur = conn.execute(
        "INSERT INTO orders"
        " (reference, chat_id, itinerary, price, currency, status, created_at, quantity)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            reference,
            chat_id,
            json.dumps(itinerary.to_dict()),
            str(price),
            currency,
            OrderStatus.AWAITING_PAYMENT.value,
            created_at.isoformat(),
            quantity,
        ),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


@dataclass(frozen=True, slots=True)
class OrderHead:
    """An order's identity and state, without parsing its itinerary (for hot paths)."""

    id: int
    reference: str
    chat_id: int
    status: OrderStatus
    price: Decimal
    currency: str


def get_order_head(conn: sqlite3.Connection, order_id: int) -> OrderHead | None:
    row = conn.execute(
        "SELECT id, reference, chat_id, status, price, currency FROM orders WHERE id = ?",
        (order_id,),
    ).fetchone()
    if row is None:
        return None
    return OrderHead(row[0], row[1], row[2], OrderStatus(row[3]), Decimal(row[4]), row[5])


def chat_of(conn: sqlite3.Connection, order_id: int) -> int | None:
    """The chat an order belongs to, or None for an unknown order."""
    row = conn.execute("SELECT chat_id FROM orders WHERE id = ?", (order_id,)).fetchone()
    return int(row[0]) if row else None


def order_id_by_reference(conn: sqlite3.Connection, reference: str) -> int | None:
    row = conn.execute("SELECT id FROM orders WHERE reference = ?", (reference,)).fetchone()
    return int(row[0]) if row else None


def get_order(conn: sqlite3.Connection, order_id: int) -> Order | None:
    row = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
    return _order(row) if row else None


def get_order_by_reference(conn: sqlite3.Connection, reference: str) -> Order | None:
    row = conn.execute("SELECT * FROM orders WHERE reference = ?", (reference,)).fetchone()
    return _order(row) if row else None


def chat_orders(conn: sqlite3.Connection, chat_id: int, limit: int | None = None) -> list[Order]:
    """This chat's latest `limit` orders (all if None), newest first, cancelled unpaid ones
    left out. The caller picks the limit: /orders asks for one more than it lists."""
    rows = conn.execute(
        "SELECT * FROM orders WHERE chat_id = ? AND status != ? ORDER BY id DESC LIMIT ?",
        (chat_id, OrderStatus.CANCELLED.value, -1 if limit is None else limit),
    ).fetchall()
    return [_order(r) for r in rows]


def cancel_if_unpaid(conn: sqlite3.Connection, chat_id: int, reference: str) -> bool:
    cur = conn.execute(
        "UPDATE orders SET status = ? WHERE reference = ? AND chat_id = ? AND status = ?",
        (OrderStatus.CANCELLED.value, reference, chat_id, OrderStatus.AWAITING_PAYMENT.value),
    )
    return cur.rowcount == 1


def mark_paid(conn: sqlite3.Connection, order_id: int, payment: Payment, source: str) -> bool:
    """Move an unpaid order to paid and record its payment. False if it was already paid."""
    cur = conn.execute(
        "UPDATE orders SET status = ?, paid_at = ? WHERE id = ? AND status IN (?, ?)",
        (OrderStatus.PAID.value, payment.paid_at.isoformat(), order_id, *_UNPAID),
    )
    if cur.rowcount != 1:
        return False
    conn.execute(
        "INSERT INTO payments (order_id, method, amount, currency, provider_ref,"
        " provider_payment_id, tx_hash, paid_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            order_id,
            payment.method.value,
            str(payment.amount),
            payment.currency,
            payment.provider_ref,
            payment.provider_payment_id,
            payment.tx_hash,
            payment.paid_at.isoformat(),
            source,
        ),
    )
    return True


def get_payment(conn: sqlite3.Connection, order_id: int) -> Payment | None:
    row = conn.execute("SELECT * FROM payments WHERE order_id = ?", (order_id,)).fetchone()
    if row is None:
        return None
    return Payment(
        method=PaymentMethod(row["method"]),
        amount=Decimal(row["amount"]),
        currency=row["currency"],
        provider_ref=row["provider_ref"],
        provider_payment_id=row["provider_payment_id"],
        tx_hash=row["tx_hash"],
        paid_at=datetime.fromisoformat(row["paid_at"]),
    )


def mark_delivered(conn: sqlite3.Connection, order_id: int, message_id: int, at: datetime) -> bool:
    """A PDF of the order reached the chat: paid (or failed delivery) → delivered."""
    cur = conn.execute(
        "UPDATE orders SET status = ?, delivered_at = ?, document_message_id = ?"
        " WHERE id = ? AND status IN (?, ?)",
        (
            OrderStatus.DELIVERED.value,
            at.isoformat(),
            message_id,
            order_id,
            OrderStatus.PAID.value,
            OrderStatus.DELIVERY_FAILED.value,
        ),
    )
    return cur.rowcount == 1


def mark_delivery_failed(conn: sqlite3.Connection, order_id: int, error: str) -> bool:
    cur = conn.execute(
        "UPDATE orders SET status = ?, delivery_error = ? WHERE id = ? AND status = ?",
        (OrderStatus.DELIVERY_FAILED.value, error, order_id, OrderStatus.PAID.value),
    )
    return cur.rowcount == 1


def reopen_delivery(conn: sqlite3.Connection, order_id: int) -> bool:
    """delivery_failed → paid (the operator resends the PDF), so the next PDF sent marks the
    order delivered; True if it moved. The error it had stays on its failed outbox row."""
    cur = conn.execute(
        "UPDATE orders SET status = ?, delivery_error = NULL WHERE id = ? AND status = ?",
        (OrderStatus.PAID.value, order_id, OrderStatus.DELIVERY_FAILED.value),
    )
    return cur.rowcount == 1
