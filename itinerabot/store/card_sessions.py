"""Stripe Checkout Sessions per order and attempt, written before the API call, and the
sessions still open that the card reconciler retrieves.
"""

from __future__ import annotations

import enum
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from itinerabot.store.attempts import insert_attempt


class SessionStatus(enum.StrEnum):
    """A session's life in the store: creating → open → complete | expired | failed; a
    `creating` attempt too close to its expiry is abandoned for a new one."""

    CREATING = "creating"
    OPEN = "open"
    COMPLETE = "complete"
    EXPIRED = "expired"
    FAILED = "failed"
    ABANDONED = "abandoned"


@dataclass(frozen=True, slots=True)
class CardSession:
    order_id: int
    attempt: int
    idempotency_key: str
    params: dict[str, Any]
    session_id: str | None
    url: str | None
    status: SessionStatus

    @property
    def expires_at(self) -> int:
        return int(self.params["expires_at"])


def _row(row: sqlite3.Row) -> CardSession:
    return CardSession(
        order_id=row["order_id"],
        attempt=row["attempt"],
        idempotency_key=row["idempotency_key"],
        params=json.loads(row["params"]),
        session_id=row["session_id"],
        url=row["url"],
        status=SessionStatus(row["status"]),
    )


def latest(conn: sqlite3.Connection, order_id: int) -> CardSession | None:
    row = conn.execute(
        "SELECT * FROM stripe_sessions WHERE order_id = ? ORDER BY attempt DESC LIMIT 1",
        (order_id,),
    ).fetchone()
    return _row(row) if row else None


def by_session_id(conn: sqlite3.Connection, session_id: str) -> CardSession | None:
    row = conn.execute(
        "SELECT * FROM stripe_sessions WHERE session_id = ?", (session_id,)
    ).fetchone()
    return _row(row) if row else None


def begin_attempt(
    conn: sqlite3.Connection,
    order_id: int,
    idempotency_key: str,
    params: dict[str, Any],
    now: datetime,
) -> CardSession:
    """Store a new attempt (status `creating`) with the exact parameters to send."""
    insert_attempt(
        conn,
        "stripe_sessions",
        order_id,
        now,
        idempotency_key=idempotency_key,
        params=json.dumps(params),
    )
    found = latest(conn, order_id)
    assert found is not None
    return found


def set_created(
    conn: sqlite3.Connection, order_id: int, attempt: int, session_id: str, url: str
) -> None:
    conn.execute(
        "UPDATE stripe_sessions SET session_id = ?, url = ?, status = 'open'"
        " WHERE order_id = ? AND attempt = ?",
        (session_id, url, order_id, attempt),
    )


def set_status(conn: sqlite3.Connection, session_id: str, status: SessionStatus) -> None:
    """Record a terminal status of a session; `complete` is never overwritten."""
    conn.execute(
        "UPDATE stripe_sessions SET status = ? WHERE session_id = ? AND status != 'complete'",
        (status, session_id),
    )


def abandon(conn: sqlite3.Connection, order_id: int, attempt: int) -> None:
    conn.execute(
        "UPDATE stripe_sessions SET status = 'abandoned' WHERE order_id = ? AND attempt = ?",
        (order_id, attempt),
    )


def open_since(conn: sqlite3.Connection, created_after: datetime) -> list[CardSession]:
    """Sessions created at Stripe (they have an id) still `open` in the store, created at or
    after `created_after`, oldest first: what the card reconciler retrieves."""
    rows = conn.execute(
        "SELECT * FROM stripe_sessions WHERE status = 'open' AND session_id IS NOT NULL"
        " AND created_at >= ? ORDER BY created_at",
        (created_after.isoformat(),),
    ).fetchall()
    return [_row(r) for r in rows]
