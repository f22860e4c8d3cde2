"""Circle payment intents per order and attempt: written before the create call, then the
intent id and the poller's absolute deadline, so pollers come back after a restart.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

#: statuses: creating → polling → paid | expired | failed | timed_out (still open to a webhook)
OPEN = ("creating", "polling", "timed_out")


@dataclass(frozen=True, slots=True)
class IntentRow:
    order_id: int
    attempt: int
    idempotency_key: str
    intent_id: str | None
    status: str
    deadline_epoch: float | None
    address: str | None
    chain: str | None
    notified_paid: str | None


def _row(row: sqlite3.Row) -> IntentRow:
    return IntentRow(
        order_id=row["order_id"],
        attempt=row["attempt"],
        idempotency_key=row["idempotency_key"],
        intent_id=row["intent_id"],
        status=row["status"],
        deadline_epoch=row["deadline_epoch"],
        address=row["address"],
        chain=row["chain"],
        notified_paid=row["notified_paid"],
    )


def latest(conn: sqlite3.Connection, order_id: int) -> IntentRow | None:
    row = conn.execute(
        "SELECT * FROM circle_intents WHERE order_id = ? ORDER BY attempt DESC LIMIT 1",
        (order_id,),
    ).fetchone()
    return _row(row) if row else None


def by_intent_id(conn: sqlite3.Connection, intent_id: str) -> IntentRow | None:
    row = conn.execute("SELECT * FROM circle_intents WHERE intent_id = ?", (intent_id,)).fetchone()
    return _row(row) if row else None


def begin_attempt(
    conn: sqlite3.Connection, order_id: int, idempotency_key: str, chain: str, now: datetime
) -> IntentRow:
    (last,) = conn.execute(
        "SELECT COALESCE(MAX(attempt), 0) FROM circle_intents WHERE order_id = ?", (order_id,)
    ).fetchone()
    conn.execute(
        "INSERT INTO circle_intents (order_id, attempt, idempotency_key, status, chain,"
        " created_at) VALUES (?, ?, ?, 'creating', ?, ?)",
        (order_id, last + 1, idempotency_key, chain, now.isoformat()),
    )
    found = latest(conn, order_id)
    assert found is not None
    return found


def set_created(
    conn: sqlite3.Connection, order_id: int, attempt: int, intent_id: str, deadline_epoch: float
) -> None:
    conn.execute(
        "UPDATE circle_intents SET intent_id = ?, status = 'polling', deadline_epoch = ?"
        " WHERE order_id = ? AND attempt = ? AND status = 'creating'",
        (intent_id, deadline_epoch, order_id, attempt),
    )


def set_status(conn: sqlite3.Connection, intent_id: str, status: str) -> bool:
    """Move an open intent to `status`; False if it had already ended."""
    cur = conn.execute(
        f"UPDATE circle_intents SET status = ? WHERE intent_id = ? AND status IN {OPEN}",
        (status, intent_id),
    )
    return cur.rowcount == 1


def set_address(conn: sqlite3.Connection, intent_id: str, address: str, chain: str) -> bool:
    """Record the deposit address once; True the first time (so it is told to the chat once)."""
    cur = conn.execute(
        "UPDATE circle_intents SET address = ?, chain = ? WHERE intent_id = ? AND address IS NULL",
        (address, chain, intent_id),
    )
    return cur.rowcount == 1


def set_notified_paid(conn: sqlite3.Connection, intent_id: str, amount: str) -> bool:
    """Remember the underpaid amount told to the chat; True if it is a new amount."""
    cur = conn.execute(
        "UPDATE circle_intents SET notified_paid = ? WHERE intent_id = ?"
        " AND (notified_paid IS NULL OR notified_paid != ?)",
        (amount, intent_id, amount),
    )
    return cur.rowcount == 1


def open_intents(conn: sqlite3.Connection) -> list[tuple[int, str, float]]:
    """(order id, intent id, deadline) of each intent whose order still awaits payment and
    whose poller should run; deadline 0 for one whose window already ended (check it once).
    Plain tuples: a restart may bring back tens of thousands."""
    rows = conn.execute(
        "SELECT ci.order_id, ci.intent_id,"
        " CASE ci.status WHEN 'polling' THEN COALESCE(ci.deadline_epoch, 0) ELSE 0 END"
        " FROM circle_intents ci JOIN orders o ON o.id = ci.order_id"
        " WHERE ci.status IN ('polling', 'timed_out') AND ci.intent_id IS NOT NULL"
        " AND o.status IN ('awaiting_payment', 'cancelled')"
    ).fetchall()
    return [(int(r[0]), str(r[1]), float(r[2])) for r in rows]
