"""Stripe Checkout Sessions the bot still counts as open: what the card reconciler retrieves.

(A query of `card_sessions`' table, kept apart only because that module has another owner
this round; it belongs beside `card_sessions.latest`.)
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from itinerabot.store.card_sessions import CardSession, _row


def open_since(conn: sqlite3.Connection, created_after: datetime) -> list[CardSession]:
    """Sessions created at Stripe (they have an id) still `open` in the store, created at or
    after `created_after`, oldest first."""
    rows = conn.execute(
        "SELECT * FROM stripe_sessions WHERE status = 'open' AND session_id IS NOT NULL"
        " AND created_at >= ? ORDER BY created_at",
        (created_after.isoformat(),),
    ).fetchall()
    return [_row(r) for r in rows]
