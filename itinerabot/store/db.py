"""The Store: one SQLite connection in WAL mode, used from one worker thread at a time.

Every call runs a plain function `fn(conn, *args)` inside one transaction in a worker thread
(`trio.to_thread.run_sync`), so a caller's writes commit together or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import trio

from itinerabot.errors import StoreError
from itinerabot.store.schema import MIGRATIONS

P = ParamSpec("P")
T = TypeVar("T")


def connect(path: Path | str) -> sqlite3.Connection:
    """Open (and migrate) the database at `path` for use from any one thread at a time."""
    try:
        conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        migrate(conn)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from exc
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    """Apply every migration the database has not seen, each in its own transaction."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise StoreError(
            f"the store has schema version {version}, newer than this program knows"
            f" ({len(MIGRATIONS)}); refusing to touch it"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip() and not _only_comments(s)]


def _only_comments(s: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in s.splitlines())


def transaction(conn: sqlite3.Connection, fn: Callable[..., T], *args: object) -> T:
    """Run `fn(conn, *args)` inside BEGIN IMMEDIATE … COMMIT (rolled back if it raises)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


class Store:
    """The process's one handle on SQLite; every access is serialised through `run`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = trio.Lock()
        self._limiter = trio.CapacityLimiter(1)
        self.closed = False

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        conn = await trio.to_thread.run_sync(connect, path)
        return cls(conn)

    async def run(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `fn(conn, *args)` in one transaction in a worker thread; returns its result.

        Raises StoreError for SQLite failures; the transaction is rolled back.
        """
        if self.closed:
            raise StoreError("the store is closed")
        async with self._lock:
            try:
                return await trio.to_thread.run_sync(
                    transaction, self._conn, partial(fn, **kwargs), *args, limiter=self._limiter
                )
            except sqlite3.Error as exc:
                raise StoreError(f"{fn.__name__}: {exc}") from exc

    def run_sync(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """The same as `run`, from synchronous code with no trio running (CLI, tests)."""
        try:
            return transaction(self._conn, partial(fn, **kwargs), *args)
        except sqlite3.Error as exc:
            raise StoreError(f"{fn.__name__}: {exc}") from exc

    async def ping(self) -> bool:
        """True when a trivial query succeeds."""
        try:
            await self.run(_ping)
        except StoreError:
            return False
        return True

    async def aclose(self) -> None:
        async with self._lock:
            if not self.closed:
                self.closed = True
                await trio.to_thread.run_sync(self._conn.close, limiter=self._limiter)


def _ping(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1").fetchone()
