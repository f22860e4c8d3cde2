"""Small tables: the update offset (kv), dialogue state per chat, webhook event ids."""

from __future__ import annotations

import sqlite3
from datetime import datetime

OFFSET_KEY = "telegram.update_offset"


def get_offset(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (OFFSET_KEY,)).fetchone()
    return int(row[0]) if row else 0


def set_offset(conn: sqlite3.Connection, offset: int) -> None:
    """Advance the stored offset; it never moves backwards."""
    conn.execute(
        "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
        " SET value = excluded.value"
        " WHERE CAST(kv.value AS INTEGER) < CAST(excluded.value AS INTEGER)",
        (OFFSET_KEY, str(offset)),
    )


INBOX_KEY = "telegram.inbox"


def inbox_state(conn: sqlite3.Connection) -> tuple[str | None, bool]:
    """(the id of the update inbox this store was last run with, or None; whether it may
    hold updates Telegram was told to forget that the store has not committed)."""
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (INBOX_KEY,)).fetchone()
    if row is None:
        return None, False
    inbox_id, _, needed = str(row[0]).partition(":")
    return inbox_id, needed == "needed"


def set_inbox_state(conn: sqlite3.Connection, inbox_id: str, needed: bool) -> None:
    """Remember the update inbox this store runs with, and whether it is needed (from the
    start until a stop that left nothing in it)."""
    value = f"{inbox_id}:{'needed' if needed else 'empty'}"
    conn.execute(
        "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
        " SET value = excluded.value",
        (INBOX_KEY, value),
    )


def already_handled(conn: sqlite3.Connection, update_id: int) -> bool:
    """True if `update_id`'s effects are committed (below the stored offset, or recorded)."""
    if update_id < get_offset(conn):
        return True
    row = conn.execute("SELECT 1 FROM handled_updates WHERE update_id = ?", (update_id,)).fetchone()
    return row is not None


def mark_handled(conn: sqlite3.Connection, update_id: int, offset: int) -> None:
    """Record `update_id` as handled (in the transaction of its effects) and advance the
    stored offset to `offset`, the lowest update not yet committed; ids below it are
    forgotten (Telegram will not send them again)."""
    conn.execute("INSERT OR IGNORE INTO handled_updates (update_id) VALUES (?)", (update_id,))
    set_offset(conn, offset)
    conn.execute("DELETE FROM handled_updates WHERE update_id < ?", (offset,))


def handled_from(conn: sqlite3.Connection, offset: int) -> set[int]:
    """Updates at or above `offset` that are already handled (a restart skips them)."""
    rows = conn.execute(
        "SELECT update_id FROM handled_updates WHERE update_id >= ?", (offset,)
    ).fetchall()
    return {r[0] for r in rows}


def get_chat_state(conn: sqlite3.Connection, chat_id: int) -> str | None:
    row = conn.execute("SELECT state FROM chats WHERE chat_id = ?", (chat_id,)).fetchone()
    return str(row[0]) if row else None


def set_chat_state(conn: sqlite3.Connection, chat_id: int, state: str, at: datetime) -> None:
    conn.execute(
        "INSERT INTO chats (chat_id, state, updated_at) VALUES (?, ?, ?) ON CONFLICT (chat_id)"
        " DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        (chat_id, state, at.isoformat()),
    )


def record_event(conn: sqlite3.Connection, source: str, event_id: str, at: datetime) -> bool:
    """Remember a webhook event id; False if it had been seen before."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO webhook_events (source, event_id, received_at) VALUES (?, ?, ?)",
        (source, event_id, at.isoformat()),
    )
    return cur.rowcount == 1
