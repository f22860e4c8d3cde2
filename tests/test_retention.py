"""Retention: sent messages and webhook ids go after their keep time; nothing pending does."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import trio

from itinerabot.store import misc, outbox
from itinerabot.store.db import connect
from tests.harness import START, eventually, make_settings, running_bot


def seed(path: Path, *, old: int, recent: int) -> None:
    """`old` sent rows and event ids from 40 days ago, `recent` from yesterday, and one
    pending message from 40 days ago (a send still being retried is never pruned)."""
    conn = connect(path)
    conn.execute("BEGIN")
    for age, count in ((timedelta(days=40), old), (timedelta(days=1), recent)):
        at = START - age
        for n in range(count):
            row = outbox.enqueue(conn, 7, "text", {"text": f"m{n}"}, created_at=at)
            outbox.mark_sent(conn, row, 1000 + n, at)
            misc.record_event(conn, "stripe", f"evt_{age.days}_{n}", at)
    outbox.enqueue(conn, 8, "text", {"text": "still pending"}, created_at=START - timedelta(40))
    conn.execute("COMMIT")
    conn.close()


def counts(path: Path) -> tuple[int, int, int]:
    conn = sqlite3.connect(path)
    sent = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'sent'").fetchone()[0]
    pending = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
    ids = conn.execute("SELECT COUNT(*) FROM webhook_events").fetchone()[0]
    conn.close()
    return sent, pending, ids


async def test_old_sent_messages_and_webhook_ids_are_pruned_at_start(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 11: outbox and webhook_events were never pruned."""
    settings = make_settings(tmp_path)
    # more than one chunk of old rows, so the pruning loops
    seed(settings.store.path, old=4500, recent=3)
    async with running_bot(tmp_path, settings=settings):
        await eventually(lambda: counts(settings.store.path) == (4, 0, 3))
        await trio.sleep(1)
        sent, pending, ids = counts(settings.store.path)
    # the 3 recent sent rows, and the old pending one, sent meanwhile
    assert (sent, pending, ids) == (4, 0, 3)
    conn = sqlite3.connect(settings.store.path)
    old_pending = conn.execute("SELECT payload FROM outbox WHERE chat_id = 8").fetchall()
    conn.close()
    assert old_pending == [('{"text": "still pending"}',)]  # not pruned, and sent since
