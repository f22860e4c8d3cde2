"""A read-only connection to the store a running `serve` writes: for commands that only read
(`itinerabot orders`, `orders show`, `render --order`). It never migrates nor writes the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from itinerabot.errors import StoreError
from itinerabot.store.db import check_schema

T = TypeVar("T")


def open_read_only(path: Path) -> sqlite3.Connection:
    """Open the store at `path` read-only (SQLite's `mode=ro`), seeing what the bot has
    committed, its WAL included. Nothing is migrated.

    Raises StoreError if the file cannot be opened or its schema is not exactly this
    program's (an older or newer `serve` uses it).
    """
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from exc
    try:
        conn.row_factory = sqlite3.Row
        check_schema(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot open the store at {path}: {exc}") from exc
    except StoreError:
        conn.close()
        raise
    return conn


def read_snapshot(path: Path, query: Callable[[sqlite3.Connection], T]) -> T:
    """Run `query` in one read transaction (a consistent snapshot while the bot writes), on
    a read-only connection. Raises StoreError, or what `query` raises."""
    conn = open_read_only(path)
    try:
        conn.execute("BEGIN")
        try:
            return query(conn)
        finally:
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise StoreError(f"reading {path}: {exc}") from exc
    finally:
        conn.close()
