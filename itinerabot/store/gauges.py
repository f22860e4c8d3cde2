"""Counts of rows by status, read at each /metrics scrape.

Each count walks an index range (`outbox_pending` leads with `status`), never the sent rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection

from itinerabot.store.sql import marks


def outbox_counts(conn: sqlite3.Connection, statuses: Collection[str]) -> dict[str, int]:
    """How many outbox rows have each of `statuses` (absent from the result: none).

    Raises ValueError for no statuses."""
    rows = conn.execute(
        f"SELECT status, COUNT(*) FROM outbox WHERE status IN ({marks(statuses)}) GROUP BY status",
        tuple(statuses),
    ).fetchall()
    return {str(status): int(count) for status, count in rows}
