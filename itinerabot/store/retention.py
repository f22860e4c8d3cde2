"""Retention: sent outbox rows and old webhook event ids are deleted after their keep time.

Without it both tables grow with every message and every webhook for ever. Deletes go in
small chunks, each its own store call, so the one writer is never held for long.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta

import trio

from itinerabot.clock import WallClock
from itinerabot.config import StoreSettings
from itinerabot.errors import StoreError
from itinerabot.store.interface import Store

log = logging.getLogger(__name__)

#: rows deleted per store call: about a millisecond of the writer's time each
CHUNK = 2000
#: how often the tables are pruned, seconds of trio time
EVERY = 3600.0


def prune_sent_messages(conn: sqlite3.Connection, before: datetime, limit: int = CHUNK) -> int:
    """Delete up to `limit` outbox rows sent before `before`; how many went."""
    cur = conn.execute(
        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status = 'sent'"
        " AND sent_at < ? LIMIT ?)",
        (before.isoformat(), limit),
    )
    return cur.rowcount


def prune_done_requests(conn: sqlite3.Connection, before: datetime, limit: int = CHUNK) -> int:
    """Delete up to `limit` payment requests done before `before` (their answers are in the
    outbox, pruned alike); how many went."""
    cur = conn.execute(
        "DELETE FROM payment_requests WHERE id IN (SELECT id FROM payment_requests"
        " WHERE done_at IS NOT NULL AND done_at < ? LIMIT ?)",
        (before.isoformat(), limit),
    )
    return cur.rowcount


def prune_webhook_ids(conn: sqlite3.Connection, before: datetime, limit: int = CHUNK) -> int:
    """Delete up to `limit` webhook event ids received before `before`; how many went."""
    cur = conn.execute(
        "DELETE FROM webhook_events WHERE rowid IN (SELECT rowid FROM webhook_events"
        " WHERE received_at < ? LIMIT ?)",
        (before.isoformat(), limit),
    )
    return cur.rowcount


async def prune_once(store: Store, settings: StoreSettings, now: datetime) -> tuple[int, int]:
    """Delete everything past its keep time, chunk by chunk; (messages, event ids) deleted.

    Raises StoreError if the store fails.
    """
    sent_before = now - timedelta(days=settings.sent_messages_retention_days)
    ids_before = now - timedelta(days=settings.webhook_ids_retention_days)
    totals = [0, 0]  # messages (with the payment requests they answered), webhook ids
    for i, prune, before in (
        (0, prune_sent_messages, sent_before),
        (0, prune_done_requests, sent_before),
        (1, prune_webhook_ids, ids_before),
    ):
        while True:
            deleted = await store.run(prune, before)
            totals[i] += deleted
            if deleted < CHUNK:
                break
    return totals[0], totals[1]


async def run_retention(
    store: Store,
    settings: StoreSettings,
    clock: WallClock,
    *,
    every: float = EVERY,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Prune at start and then every `every` seconds until cancelled; a failed round is
    logged and the next comes as usual."""
    task_status.started()
    while True:
        try:
            messages, ids = await prune_once(store, settings, clock())
        except StoreError as exc:
            log.error("retention round failed; next one as usual", extra={"error": str(exc)})
        else:
            if messages or ids:
                log.info("old rows deleted", extra={"messages": messages, "webhook_ids": ids})
        await trio.sleep(every)
