"""Per-update cost of the outbox reads with a big outbox: `live_step_keyboard` (run for every
update the bot handles) and the sender's store calls for one message, before and after the
indexes of schema 2.

Builds an outbox of `--rows` rows over `--chats` chats, interleaved as real traffic is (each
chat a conversation: questions with step buttons, button removals, callback answers, texts,
a PDF). "after" times the code as it is; "before" drops the schema-2 outbox indexes and
times the query the bot ran until then.

Run from the repository root: `.venv/bin/python bench/bench_outbox.py --rows 1000000`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, not installed

from itinerabot.store import outbox
from itinerabot.store.db import connect

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)

#: `live_step_keyboard` as it was before schema 2 (its first query then ran on outbox_pending,
#: its second had no index at all)
OLD_LATEST = (
    "SELECT message_id, payload FROM outbox WHERE chat_id = ? AND kind = 'text'"
    " AND status = 'sent' AND message_id IS NOT NULL AND payload LIKE '%\"keyboard\"%'"
    " ORDER BY id DESC LIMIT 1"
)
OLD_REMOVED = (
    "SELECT 1 FROM outbox WHERE chat_id = ? AND kind = 'remove_buttons'"
    " AND json_extract(payload, '$.message_id') = ?"
)
SCHEMA_2_OUTBOX_INDEXES = (
    "outbox_by_chat",
    "outbox_removed_buttons",
    "outbox_sent",
    "outbox_by_order",
)


def old_live_step_keyboard(conn: sqlite3.Connection, chat_id: int) -> int | None:
    row = conn.execute(OLD_LATEST, (chat_id,)).fetchone()
    if row is None:
        return None
    rows = json.loads(row["payload"]).get("keyboard") or []
    if not any(str(b.get("data", "")).split(":", 1)[0].isdigit() for r in rows for b in r):
        return None
    removed = conn.execute(OLD_REMOVED, (chat_id, row["message_id"])).fetchone()
    return None if removed else int(row["message_id"])


def conversation(chat_id: int) -> Iterator[tuple[Any, ...]]:
    """One chat's outbox rows, without end: (chat_id, kind, payload, status, message_id)."""
    message_id = 0
    live: int | None = None
    for step in itertools.count():
        kind = ("question", "press", "text", "question", "press")[step % 5]
        if kind == "question":
            message_id += 1
            keyboard = [
                [{"text": "Economy", "data": f"{step}:economy"}],
                [{"text": "Business", "data": f"{step}:business"}],
            ]
            payload = {"text": "Which cabin?", "keyboard": keyboard}
            yield (chat_id, "text", json.dumps(payload), "sent", message_id)
            live = message_id
        elif kind == "press" and live is not None:
            yield (
                chat_id,
                "answer_callback",
                json.dumps({"callback_id": f"{chat_id}{step}", "text": None}),
                "sent",
                None,
            )
            yield (chat_id, "remove_buttons", json.dumps({"message_id": live}), "sent", None)
            live = None
        else:
            message_id += 1
            yield (chat_id, "text", json.dumps({"text": "Noted."}), "sent", message_id)


def build(path: Path, rows: int, chats: int, seed: int) -> None:
    conn = connect(path)
    rng = random.Random(seed)
    streams = [conversation(900_000_000 + c) for c in range(chats)]
    batch: list[tuple[Any, ...]] = []
    written = 0
    conn.execute("BEGIN")
    while written < rows:
        chat_rows = streams[rng.randrange(chats)]
        row = next(chat_rows)
        batch.append((*row, NOW.isoformat()))
        written += 1
        if len(batch) == 50_000:
            _insert(conn, batch)
            batch.clear()
    _insert(conn, batch)
    conn.execute("COMMIT")  # no ANALYZE: the bot never runs it, so plans are as in production
    conn.close()


def _insert(conn: sqlite3.Connection, batch: list[tuple[Any, ...]]) -> None:
    conn.executemany(
        "INSERT INTO outbox (chat_id, kind, payload, status, message_id, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        batch,
    )


def timed(fn: Callable[[int], object], chat_ids: list[int]) -> list[float]:
    """Microseconds per call."""
    out: list[float] = []
    for chat_id in chat_ids:
        start = time.perf_counter()
        fn(chat_id)
        out.append((time.perf_counter() - start) * 1e6)
    return out


def summary(name: str, micros: list[float]) -> str:
    micros = sorted(micros)
    p99 = micros[min(len(micros) - 1, int(len(micros) * 0.99))]
    return (
        f"{name:<44} n={len(micros):>5}  median {statistics.median(micros):>10.1f} µs"
        f"  p99 {p99:>10.1f} µs"
    )


def sender_calls(conn: sqlite3.Connection, chat_ids: list[int], *, announce: bool) -> list[float]:
    """One message through the sender's store calls, each its own transaction as the Store
    commits them when idle (synchronous=FULL): enqueue, next_pending, begin_send (`announce`:
    the in-flight mark, new with schema 2), mark_sent."""
    out: list[float] = []
    for chat_id in chat_ids:
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        outbox.enqueue(conn, chat_id, "text", {"text": "bench"}, created_at=NOW)
        conn.execute("COMMIT")
        item = outbox.next_pending(conn, chat_id)
        assert item is not None
        if announce:
            conn.execute("BEGIN IMMEDIATE")
            outbox.begin_send(conn, item.id)
            conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        outbox.mark_sent(conn, item.id, 1, NOW)
        conn.execute("COMMIT")
        out.append((time.perf_counter() - start) * 1e6)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="outbox rows (default 1M)")
    parser.add_argument("--chats", type=int, default=50_000, help="chats (default 50,000)")
    parser.add_argument("--samples", type=int, default=2000, help="timed calls, after")
    parser.add_argument("--before-samples", type=int, default=50, help="timed calls, before")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite3"
        start = time.perf_counter()
        build(path, args.rows, args.chats, args.seed)
        size = path.stat().st_size / 1e6
        print(
            f"outbox: {args.rows:,} rows, {args.chats:,} chats, {size:.0f} MB,"
            f" built in {time.perf_counter() - start:.1f} s; SQLite {sqlite3.sqlite_version}"
        )
        conn = connect(path)
        rng = random.Random(args.seed + 1)
        chats = [900_000_000 + rng.randrange(args.chats) for _ in range(args.samples)]
        assert [outbox.live_step_keyboard(conn, c) for c in chats[:200]] == [
            old_live_step_keyboard(conn, c) for c in chats[:200]
        ], "the old and new queries disagree"
        print(
            summary(
                "after:  live_step_keyboard",
                timed(lambda c: outbox.live_step_keyboard(conn, c), chats),
            )
        )
        print(
            summary(
                "after:  sender store calls for one message",
                sender_calls(conn, chats[:500], announce=True),
            )
        )
        for index in SCHEMA_2_OUTBOX_INDEXES:
            conn.execute(f"DROP INDEX {index}")
        before = chats[: args.before_samples]
        print(
            summary(
                "before: live_step_keyboard",
                timed(lambda c: old_live_step_keyboard(conn, c), before),
            )
        )
        print(
            summary(
                "before: sender store calls for one message",
                sender_calls(conn, chats[500:1000], announce=False),
            )
        )
        conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
