"""Retention: sent messages and webhook ids go after their keep time; nothing pending does."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import trio

from itinerabot.store import misc, outbox, payment_requests
from itinerabot.store.db import connect
from itinerabot.store.payment_requests import Action
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


async def test_done_payment_requests_go_with_their_messages_open_ones_stay(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    settings = make_settings(tmp_path)
    conn = connect(settings.store.path)
    conn.execute("BEGIN")
    for age in (40, 1):
        at = START - timedelta(days=age)
        done = payment_requests.add(conn, 7, Action.PAY_BY_CARD, f"IB-OLD{age:03d}", at)
        payment_requests.finish(conn, done.id, at)
    payment_requests.add(conn, 9, Action.PAY_BY_CARD, "IB-OPEN01", START - timedelta(days=40))
    conn.execute("COMMIT")
    conn.close()
    async with running_bot(tmp_path, settings=settings):
        await trio.sleep(1)
    conn = sqlite3.connect(settings.store.path)
    left = conn.execute("SELECT argument FROM payment_requests ORDER BY id").fetchall()
    conn.close()
    # the old open one was carried out at start (it is recent now), the old done one went
    assert left == [("IB-OLD001",), ("IB-OPEN01",)]
