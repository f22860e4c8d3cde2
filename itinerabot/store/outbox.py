"""The outbox: every message the bot will send, written in the transaction that caused it.

The sender drains it. A row is `pending` until Telegram's answer is recorded: `sent` (with
Telegram's message id), `failed` (refused, or still failing after the give-up time) or
`unconfirmed` (sent twice without an answer; not sent again). `in_flight` is set before each
send and cleared with its outcome, so a row found in flight at start-up was interrupted.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    chat_id: int
    kind: str
    payload: dict[str, Any]
    order_id: int | None
    attempts: int


@dataclass(frozen=True, slots=True)
class Failures:
    """A row's failed sends so far, as recorded by `record_failure`."""

    attempts: int
    unknown_outcomes: int
    first_failed_at: datetime


def enqueue(
    conn: sqlite3.Connection,
    chat_id: int,
    kind: str,
    payload: dict[str, Any],
    *,
    created_at: datetime,
    order_id: int | None = None,
) -> int:
    cur = conn.execute(
        "INSERT INTO outbox (chat_id, kind, payload, order_id, created_at) VALUES (?, ?, ?, ?, ?)",
        (chat_id, kind, json.dumps(payload), order_id, created_at.isoformat()),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def pending_chats(conn: sqlite3.Connection) -> list[int]:
    rows = conn.execute("SELECT DISTINCT chat_id FROM outbox WHERE status = 'pending'").fetchall()
    return [r[0] for r in rows]


def next_pending(conn: sqlite3.Connection, chat_id: int) -> OutboxItem | None:
    row = conn.execute(
        "SELECT * FROM outbox WHERE status = 'pending' AND chat_id = ? ORDER BY id LIMIT 1",
        (chat_id,),
    ).fetchone()
    return None if row is None else _item(row)


def interrupted(conn: sqlite3.Connection) -> list[OutboxItem]:
    """Rows left in flight: a send began and its outcome was never recorded."""
    rows = conn.execute(
        "SELECT * FROM outbox WHERE status = 'pending' AND in_flight = 1 ORDER BY id"
    ).fetchall()
    return [_item(r) for r in rows]


def begin_send(conn: sqlite3.Connection, item_id: int) -> None:
    """Mark a row in flight; commit this before the send it announces."""
    conn.execute("UPDATE outbox SET in_flight = 1 WHERE id = ?", (item_id,))


def mark_sent(conn: sqlite3.Connection, item_id: int, message_id: int | None, at: datetime) -> None:
    conn.execute(
        "UPDATE outbox SET status = 'sent', message_id = ?, sent_at = ?, in_flight = 0,"
        " attempts = attempts + 1 WHERE id = ?",
        (message_id, at.isoformat(), item_id),
    )


def record_failure(
    conn: sqlite3.Connection, item_id: int, error: str, at: datetime, *, unknown: bool
) -> Failures:
    """Record one failed send (`unknown`: Telegram may have taken it) and return the tally."""
    conn.execute(
        "UPDATE outbox SET in_flight = 0, attempts = attempts + 1, error = ?,"
        " unknown_outcomes = unknown_outcomes + ?,"
        " first_failed_at = COALESCE(first_failed_at, ?) WHERE id = ?",
        (error, int(unknown), at.isoformat(), item_id),
    )
    row = conn.execute(
        "SELECT attempts, unknown_outcomes, first_failed_at FROM outbox WHERE id = ?", (item_id,)
    ).fetchone()
    return Failures(
        attempts=row["attempts"],
        unknown_outcomes=row["unknown_outcomes"],
        first_failed_at=datetime.fromisoformat(row["first_failed_at"]),
    )


def mark_failed(conn: sqlite3.Connection, item_id: int, error: str) -> None:
    conn.execute(
        "UPDATE outbox SET status = 'failed', error = ?, in_flight = 0 WHERE id = ?",
        (error, item_id),
    )


def mark_unconfirmed(conn: sqlite3.Connection, item_id: int, error: str) -> None:
    conn.execute(
        "UPDATE outbox SET status = 'unconfirmed', error = ?, in_flight = 0 WHERE id = ?",
        (error, item_id),
    )


def live_step_keyboard(conn: sqlite3.Connection, chat_id: int) -> int | None:
    """The message id of the chat's latest question whose step buttons are still on show.

    Step buttons carry callback data `<seq>:…`; a keyboard counts as gone once a
    `remove_buttons` row for its message exists. Two index lookups, whatever the outbox's
    size: the chat's rows newest first (`outbox_by_chat`; only a text row that was sent has
    a message id), then the expression index `outbox_removed_buttons`, whose expression
    and condition the second query repeats exactly.
    """
    row = conn.execute(
        "SELECT message_id, payload FROM outbox WHERE chat_id = ? AND kind = 'text'"
        " AND message_id IS NOT NULL AND payload LIKE '%\"keyboard\"%'"
        " ORDER BY id DESC LIMIT 1",
        (chat_id,),
    ).fetchone()
    if row is None:
        return None
    rows = json.loads(row["payload"]).get("keyboard") or []
    if not any(str(b.get("data", "")).split(":", 1)[0].isdigit() for r in rows for b in r):
        return None
    removed = conn.execute(
        "SELECT 1 FROM outbox WHERE kind = 'remove_buttons' AND chat_id = ?"
        " AND json_extract(payload, '$.message_id') = ?",
        (chat_id, row["message_id"]),
    ).fetchone()
    return None if removed else int(row["message_id"])


def _item(row: sqlite3.Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        chat_id=row["chat_id"],
        kind=row["kind"],
        payload=json.loads(row["payload"]),
        order_id=row["order_id"],
        attempts=row["attempts"],
    )
