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

import fcntl
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import trio

from itinerabot.errors import StoreError


def inbox_path(store_path: Path) -> Path:
    """The inbox beside the store: `itinerabot.sqlite3` → `itinerabot.inbox.sqlite3`."""
    return store_path.with_name(f"{store_path.stem}.inbox{store_path.suffix or '.sqlite3'}")


def _lock(path: Path) -> int:
    """An exclusive lock on `<inbox>.lock`, held until its descriptor closes (also when the
    process dies). Raises StoreError if another process holds it."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open {lock_path}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StoreError(
            f"another itinerabot serve is running on this store (its update inbox {path} is"
            " locked): stop it first"
        ) from None
    return fd


class Inbox:
    """The inbox file: `keep` updates (JSON) before confirming them to Telegram, `pending` at
    start. One thread at a time; none waits on the store's writer. `id` names this file (the
    store remembers it: an inbox lost or swapped is noticed); `path` is where it lives.

    Open it with `Inbox.open`, which also locks it for this process: a second `serve` on the
    same store would hand out the first one's updates again."""

    def __init__(self, conn: sqlite3.Connection, path: Path, inbox_id: str, lock_fd: int) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._limiter = trio.CapacityLimiter(1)
        self._lock_fd = lock_fd
        self.path = path
        self.id = inbox_id

    @classmethod
    def open(cls, path: Path) -> Inbox:
        """Open (and create) the inbox at `path`, locked for this process. Raises StoreError,
        also when another process holds it (another `serve` on the same store)."""
        lock_fd = _lock(path)
        try:
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: an update confirmed to Telegram must survive a power loss
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS inbox"
                " (update_id INTEGER PRIMARY KEY, payload TEXT NOT NULL)"
            )
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('id', ?)", (uuid.uuid4().hex,)
            )
            (inbox_id,) = conn.execute("SELECT value FROM meta WHERE key = 'id'").fetchone()
        except sqlite3.Error as exc:
            os.close(lock_fd)
            raise StoreError(f"cannot open the update inbox at {path}: {exc}") from exc
        return cls(conn, path, str(inbox_id), lock_fd)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            os.close(self._lock_fd)  # and with it the lock

    async def keep(self, updates: Iterable[tuple[int, dict[str, Any]]], below: int) -> None:
        """Store `updates` (id, JSON-able dict) durably, and delete those below `below` (the
        store's offset: committed). Raises StoreError."""
        rows = [(update_id, json.dumps(data)) for update_id, data in updates]
        await self._run(self._keep, rows, below)

    async def pending(self, from_id: int, limit: int = -1) -> list[tuple[int, dict[str, Any]]]:
        """The updates kept at or above `from_id`, oldest first (at most `limit`). Raises
        StoreError."""
        rows: list[tuple[int, str]] = await self._run(self._pending, from_id, limit)
        return [(update_id, json.loads(payload)) for update_id, payload in rows]

    async def kept_ids(self, from_id: int) -> list[int]:
        """The ids of the updates kept at or above `from_id`, in order. Raises StoreError."""
        rows: list[tuple[int]] = await self._run(self._kept_ids, from_id)
        return [update_id for (update_id,) in rows]

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

    def _kept_ids(self, from_id: int) -> list[tuple[int]]:
        with self._lock:
            return self._conn.execute(
                "SELECT update_id FROM inbox WHERE update_id >= ? ORDER BY update_id", (from_id,)
            ).fetchall()

    def _pending(self, from_id: int, limit: int) -> list[tuple[int, str]]:
        with self._lock:
            return self._conn.execute(
                "SELECT update_id, payload FROM inbox WHERE update_id >= ?"
                " ORDER BY update_id LIMIT ?",
                (from_id, limit),
            ).fetchall()
