"""The store's durability: a committed payment survives a power loss."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import trio

from itinerabot.store import open_store

SYNCHRONOUS_FULL = 2


def _synchronous(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


def _journal(conn: sqlite3.Connection) -> str:
    return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


async def test_every_commit_is_synced_before_it_returns(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 13: with WAL and synchronous=NORMAL a commit returns before the WAL is synced,
    so a power loss can undo a payment Stripe was already answered 200 for. FULL syncs the WAL
    on every commit, so whatever the writer reports committed is on disk."""
    async with open_store(tmp_path / "bot.sqlite3") as store:
        level = await store.run(_synchronous)
        journal = await store.run(_journal)
    assert (journal, level) == ("wal", SYNCHRONOUS_FULL)
