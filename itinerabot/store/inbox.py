"""The update inbox: updates fetched from Telegram and not yet handled, kept durably in a small
SQLite file of their own, so the long poll can tell Telegram to forget them before they commit.

Telegram sends at most 100 updates from the offset the bot confirms, and forgets everything
below it. Without the inbox the offset could only pass an update once its effects had
committed to the store; a store whose writer stalls (a held lock, a slow disk) then left 100
updates stuck and every newer one, a pre-checkout query with its 10 s among them, unfetched
at Telegram. The inbox is a separate file with its own connection and thread, so it waits
for no writer of the store. An update is written here before the offset passes it, and
deleted once the store has committed it; a restart handles the ones still here.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import trio

from itinerabot.errors import StoreError


def inbox_path(store_path: Path) -> Path:
    """The inbox beside the store: `itinerabot.sqlite3` → `itinerabot.inbox.sqlite3`."""
    return store_path.with_name(f"{store_path.stem}.inbox{store_path.suffix or '.sqlite3'}")


class Inbox:
    """The inbox file: `keep` updates (JSON) before confirming them to Telegram, `forget` those
    committed, `pending` at start. One thread at a time; none waits on the store's writer."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._limiter = trio.CapacityLimiter(1)

    @classmethod
    def open(cls, path: Path) -> Inbox:
        """Open (and create) the inbox at `path`. Raises StoreError."""
        try:
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: an update confirmed to Telegram must survive a power loss
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS inbox"
                " (update_id INTEGER PRIMARY KEY, payload TEXT NOT NULL)"
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the update inbox at {path}: {exc}") from exc
        return cls(conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    async def keep(self, updates: Iterable[tuple[int, dict[str, Any]]], below: int) -> None:
        """Store `updates` (id, JSON-able dict) durably, and delete those below `below` (the
        store's offset: committed). Raises StoreError."""
        rows = [(update_id, json.dumps(data)) for update_id, data in updates]
        await self._run(self._keep, rows, below)

    async def pending(self, from_id: int) -> list[tuple[int, dict[str, Any]]]:
        """The updates kept at or above `from_id`, oldest first. Raises StoreError."""
        rows: list[tuple[int, str]] = await self._run(self._pending, from_id)
        return [(update_id, json.loads(payload)) for update_id, payload in rows]

    async def _run(self, fn: Any, *args: Any) -> Any:
        try:
            return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)
        except sqlite3.Error as exc:
            raise StoreError(f"update inbox: {exc}") from exc

    def _keep(self, rows: list[tuple[int, str]], below: int) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")  # one transaction, one fsync, per batch
            try:
                self._conn.executemany(
                    "INSERT OR IGNORE INTO inbox (update_id, payload) VALUES (?, ?)", rows
                )
                self._conn.execute("DELETE FROM inbox WHERE update_id < ?", (below,))
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def _pending(self, from_id: int) -> list[tuple[int, str]]:
        with self._lock:
            return self._conn.execute(
                "SELECT update_id, payload FROM inbox WHERE update_id >= ? ORDER BY update_id",
                (from_id,),
            ).fetchall()
