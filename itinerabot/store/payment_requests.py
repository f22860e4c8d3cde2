"""Payment requests: a tap on "Pay" (or a return from Checkout) recorded with the update that
made it, carried out by the payment-requests service, and marked done with its answer."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Action(StrEnum):
    PAY_BY_CARD = "pay_by_card"
    PAY_WITH_USDC = "pay_with_usdc"
    CHECKOUT_RETURN = "checkout_return"


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    chat_id: int
    action: Action
    argument: str  # the order reference, or the deep link's payload


def add(
    conn: sqlite3.Connection, chat_id: int, action: Action, argument: str, now: datetime
) -> Request:
    """Record a request (in the transaction of the update that made it)."""
    cur = conn.execute(
        "INSERT INTO payment_requests (chat_id, action, argument, requested_at)"
        " VALUES (?, ?, ?, ?)",
        (chat_id, action, argument, now.isoformat()),
    )
    assert cur.lastrowid is not None
    return Request(cur.lastrowid, chat_id, action, argument)


def still_open(conn: sqlite3.Connection) -> list[Request]:
    """Requests not yet done, oldest first (a restart carries them out)."""
    rows = conn.execute(
        "SELECT id, chat_id, action, argument FROM payment_requests"
        " WHERE done_at IS NULL ORDER BY id"
    ).fetchall()
    return [Request(r[0], r[1], Action(r[2]), r[3]) for r in rows]


def finish(conn: sqlite3.Connection, request_id: int, now: datetime) -> bool:
    """Mark the request done; False if it already was (its answer is queued already)."""
    cur = conn.execute(
        "UPDATE payment_requests SET done_at = ? WHERE id = ? AND done_at IS NULL",
        (now.isoformat(), request_id),
    )
    return cur.rowcount == 1
