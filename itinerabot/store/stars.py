"""Telegram Stars in SQLite: the invoices sent for orders, and every Stars payment reported.

Functions take the open connection and run inside the caller's transaction (`Store.run`).
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime

#: random bytes naming an attempt in an invoice payload: 8 characters, 48 bits
ATTEMPT_BYTES = 6


@dataclass(frozen=True, slots=True)
class StarInvoice:
    """An invoice sent for an order; `payload` names it in Telegram's answers."""

    id: int
    order_id: int
    payload: str
    amount: int  # whole Stars
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StarPayment:
    """A Stars payment as Telegram reported it (`successful_payment`)."""

    charge_id: str  # telegram_payment_charge_id: what refundStarPayment names
    payer_id: int  # the user who paid: refundStarPayment's user_id
    chat_id: int
    payload: str
    currency: str
    amount: int
    provider_charge_id: str | None = None


def _invoice(row: sqlite3.Row) -> StarInvoice:
    return StarInvoice(
        row["id"],
        row["order_id"],
        row["payload"],
        row["amount"],
        datetime.fromisoformat(row["created_at"]),
    )


_SEPARATOR = ":"


def reference_of(payload: str) -> str:
    """The order reference an invoice payload (`<reference>:<attempt>`) names."""
    return payload.rpartition(_SEPARATOR)[0]


def add_invoice(
    conn: sqlite3.Connection, order_id: int, reference: str, amount: int, now: datetime
) -> StarInvoice:
    """Store a new invoice for the order; its payload is `<reference>:<attempt>`, the attempt
    a random token, so that writers on several connections never make the same one (a
    count of the order's invoices would). Raises ValueError when the payload would not fit
    Telegram's 1-128 bytes (nothing is stored then)."""
    payload = f"{reference}{_SEPARATOR}{secrets.token_urlsafe(ATTEMPT_BYTES)}"
    if not 1 <= len(payload.encode()) <= 128:
        raise ValueError(f"an invoice payload must be 1-128 bytes: {payload!r}")
    cur = conn.execute(
        "INSERT INTO star_invoices (order_id, payload, amount, created_at) VALUES (?, ?, ?, ?)",
        (order_id, payload, amount, now.isoformat()),
    )
    assert cur.lastrowid is not None
    return StarInvoice(cur.lastrowid, order_id, payload, amount, now)


def invoice_by_payload(conn: sqlite3.Connection, payload: str) -> StarInvoice | None:
    """The invoice whose payload is `payload` (as Telegram repeats it in pre_checkout_query
    and successful_payment), or None if the bot never issued it."""
    row = conn.execute("SELECT * FROM star_invoices WHERE payload = ?", (payload,)).fetchone()
    return None if row is None else _invoice(row)


def invoices(conn: sqlite3.Connection, order_id: int) -> list[StarInvoice]:
    """The order's invoices, oldest first."""
    rows = conn.execute(
        "SELECT * FROM star_invoices WHERE order_id = ? ORDER BY id", (order_id,)
    ).fetchall()
    return [_invoice(r) for r in rows]


def record_payment(
    conn: sqlite3.Connection, payment: StarPayment, order_id: int | None, now: datetime
) -> bool:
    """Remember a reported Stars payment; False if this charge was recorded before (the same
    `successful_payment` seen again)."""
    cur = conn.execute(
        "INSERT INTO star_payments (charge_id, provider_charge_id, payer_id, chat_id, payload,"
        " currency, amount, order_id, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (charge_id) DO NOTHING",
        (
            payment.charge_id,
            payment.provider_charge_id,
            payment.payer_id,
            payment.chat_id,
            payment.payload,
            payment.currency,
            payment.amount,
            order_id,
            now.isoformat(),
        ),
    )
    return cur.rowcount == 1


def _payment(row: sqlite3.Row) -> StarPayment:
    return StarPayment(
        row["charge_id"],
        row["payer_id"],
        row["chat_id"],
        row["payload"],
        row["currency"],
        row["amount"],
        row["provider_charge_id"],
    )


def get_payment(conn: sqlite3.Connection, charge_id: str) -> StarPayment | None:
    """The Stars payment with this charge id, as reported."""
    row = conn.execute("SELECT * FROM star_payments WHERE charge_id = ?", (charge_id,)).fetchone()
    return None if row is None else _payment(row)


def unsettled_anomalies(conn: sqlite3.Connection) -> list[tuple[int, StarPayment]]:
    """(anomaly id, charge) of each Stars charge recorded as an anomaly and not yet settled."""
    rows = conn.execute(
        "SELECT a.id AS anomaly_id, s.* FROM anomalies a"
        " JOIN star_payments s ON s.charge_id = a.provider_ref"
        " WHERE a.source = 'telegram' AND a.resolved_at IS NULL ORDER BY a.id"
    ).fetchall()
    return [(row["anomaly_id"], _payment(row)) for row in rows]
