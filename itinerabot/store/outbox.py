"""The outbox: every message the bot will send, written in the transaction that caused it.

The sender drains it; a row is marked sent with Telegram's message id, so a restart sends
what is pending and nothing that was sent.
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
    if row is None:
        return None
    return OutboxItem(
        id=row["id"],
        chat_id=row["chat_id"],
        kind=row["kind"],
        payload=json.loads(row["payload"]),
        order_id=row["order_id"],
        attempts=row["attempts"],
    )


def mark_sent(conn: sqlite3.Connection, item_id: int, message_id: int | None, at: datetime) -> None:
    conn.execute(
        "UPDATE outbox SET status = 'sent', message_id = ?, sent_at = ?, attempts = attempts + 1"
        " WHERE id = ?",
        (message_id, at.isoformat(), item_id),
    )


def mark_failed(conn: sqlite3.Connection, item_id: int, error: str) -> None:
    conn.execute(
        "UPDATE outbox SET status = 'failed', error = ?, attempts = attempts + 1 WHERE id = ?",
        (error, item_id),
    )


def record_attempt(conn: sqlite3.Connection, item_id: int, error: str) -> int:
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, error = ? WHERE id = ?", (error, item_id)
    )
    (attempts,) = conn.execute("SELECT attempts FROM outbox WHERE id = ?", (item_id,)).fetchone()
    return int(attempts)


def live_step_keyboard(conn: sqlite3.Connection, chat_id: int) -> int | None:
    """The message id of the chat's latest question whose step buttons are still on show.

    Step buttons carry callback data `<seq>:…`; a keyboard counts as gone once a
    `remove_buttons` row for its message exists.
    """
    row = conn.execute(
        "SELECT message_id, payload FROM outbox WHERE chat_id = ? AND kind = 'text'"
        " AND status = 'sent' AND message_id IS NOT NULL AND payload LIKE '%\"keyboard\"%'"
        " ORDER BY id DESC LIMIT 1",
        (chat_id,),
    ).fetchone()
    if row is None:
        return None
    rows = json.loads(row["payload"]).get("keyboard") or []
    if not any(str(b.get("data", "")).split(":", 1)[0].isdigit() for r in rows for b in r):
        return None
    removed = conn.execute(
        "SELECT 1 FROM outbox WHERE chat_id = ? AND kind = 'remove_buttons'"
        " AND json_extract(payload, '$.message_id') = ?",
        (chat_id, row["message_id"]),
    ).fetchone()
    return None if removed else int(row["message_id"])
