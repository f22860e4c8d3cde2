"""Which language each chat reads: the code its Telegram app last reported and its own pick.

The pick (`chosen`, from /language) wins over what the app reports (`seen`).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from itinerabot.i18n import Texts, choose, texts_for


def get(conn: sqlite3.Connection, chat_id: int) -> tuple[str | None, str | None]:
    """(chosen, seen) of the chat; (None, None) if it never said."""
    row = conn.execute(
        "SELECT chosen, seen FROM chat_languages WHERE chat_id = ?", (chat_id,)
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def texts_of(conn: sqlite3.Connection, chat_id: int) -> Texts:
    """The sentences in the chat's language (English if it never said)."""
    return texts_for(choose(*get(conn, chat_id)))


def set_seen(conn: sqlite3.Connection, chat_id: int, code: str, at: datetime) -> None:
    """Remember the language code the chat's app reported last."""
    conn.execute(
        "INSERT INTO chat_languages (chat_id, seen, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (chat_id) DO UPDATE SET seen = excluded.seen,"
        " updated_at = excluded.updated_at WHERE seen IS NOT excluded.seen",
        (chat_id, code[:35], at.isoformat()),
    )


def set_chosen(conn: sqlite3.Connection, chat_id: int, code: str, at: datetime) -> None:
    """Remember the language the traveller picked; it wins over the app's."""
    conn.execute(
        "INSERT INTO chat_languages (chat_id, chosen, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (chat_id) DO UPDATE SET chosen = excluded.chosen,"
        " updated_at = excluded.updated_at",
        (chat_id, code, at.isoformat()),
    )
