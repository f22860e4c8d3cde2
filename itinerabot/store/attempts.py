"""The first row of a payment attempt, shared by Stripe's sessions and Circle's intents: the
next attempt number of the order, status `creating`, written before the provider is asked.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Literal

from itinerabot.store.sql import marks

#: the tables that hold one row per order and attempt (a fixed list: the name is SQL text)
AttemptTable = Literal["stripe_sessions", "circle_intents"]


def insert_attempt(
    conn: sqlite3.Connection,
    table: AttemptTable,
    order_id: int,
    now: datetime,
    **columns: str,
) -> int:
    """Insert the order's next attempt into `table` as `creating`, with `columns` (their
    names are ours, their values bound); returns its attempt number."""
    (last,) = conn.execute(
        f"SELECT COALESCE(MAX(attempt), 0) FROM {table} WHERE order_id = ?", (order_id,)
    ).fetchone()
    names = ", ".join(columns)
    conn.execute(
        f"INSERT INTO {table} (order_id, attempt, status, created_at, {names})"
        f" VALUES (?, ?, 'creating', ?, {marks(columns)})",
        (order_id, last + 1, now.isoformat(), *columns.values()),
    )
    return int(last) + 1
