"""The Store: whatever the writer reports committed is committed, and on disk; a failing call
in a batch rolls back its own writes only, so its neighbours' payments stand.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import sqlite3
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path

import pypdf
import pytest
import trio
import trio.testing

from itinerabot.adapters.telegram.precheckout import CHECK_WITHIN
from itinerabot.errors import StoreError
from itinerabot.models import Order, Payment
from itinerabot.pdf import render_itinerary, sample_order
from itinerabot.store import open_store, stars
from itinerabot.store import orders as order_rows
from itinerabot.store.db import SqliteStore, _open_reader, _statements, connect
from itinerabot.store.schema import MIGRATIONS
from itinerabot.store.stars import StarPayment
from tests.harness import query

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


# ---------------------------------------------------------------- one batch, one savepoint per call

#: tables of the batch tests: `tickets` is what each call writes (a call's own rows are
#: (job, 0), (job, 1), ...), and `refused` refuses rows by trigger, as a schema check would
TICKETS = """
CREATE TABLE tickets (job TEXT NOT NULL, n INTEGER NOT NULL, UNIQUE (job, n));
CREATE TABLE refused (job TEXT NOT NULL);
CREATE TRIGGER refuse_abort BEFORE INSERT ON refused WHEN NEW.job LIKE 'abort%'
BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END;
CREATE TRIGGER refuse_rollback BEFORE INSERT ON refused WHEN NEW.job LIKE 'rollback%'
BEGIN SELECT RAISE(ROLLBACK, 'refused, transaction rolled back'); END;
"""


class Refused(Exception):
    """A call's own failure, raised after it wrote its rows."""


def write_tickets(conn: sqlite3.Connection, job: str, rows: int, then: str = "") -> str:
    """Write `rows` tickets for `job`, then (per `then`) fail in Python, on a UNIQUE
    violation, or on a trigger."""
    for n in range(rows):
        conn.execute("INSERT INTO tickets VALUES (?, ?)", (job, n))
    if then == "raise":
        raise Refused(job)
    if then == "duplicate":
        conn.execute("INSERT INTO tickets VALUES (?, 0)", (job,))
    if then == "trigger":
        conn.execute("INSERT INTO refused VALUES (?)", (job,))
    return f"{job}: {rows} written"


Call = tuple[str, int, str]


async def one_batch(
    path: Path, calls: list[Call], *, then_alone: Call | None = None
) -> tuple[dict[str, object], list[str]]:
    """Submit `calls` from concurrent callers while the writer is not yet running, then start
    it: it finds them all queued, in this order, and runs them as one batch. Then, if given,
    the call `then_alone` is made on the same store, after the batch.

    Returns each call's outcome (its result or the exception its caller got) and the
    statements the writer's connection ran (the BEGIN/COMMIT among them show the batch's
    transactions).
    """
    conn = connect(path)
    conn.executescript(TICKETS)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    store = SqliteStore(conn)
    outcomes: dict[str, object] = {}

    async def call(job: str, rows: int, then: str) -> None:
        try:
            outcomes[job] = await store.run(write_tickets, job, rows, then)
        except Exception as exc:
            outcomes[job] = exc

    with trio.fail_after(10):
        async with trio.open_nursery() as writer:
            async with trio.open_nursery() as callers:
                for job, rows, then in calls:
                    callers.start_soon(call, job, rows, then)
                    # this caller's job is queued (it waits for the writer) before the next
                    await trio.testing.wait_all_tasks_blocked()
                await writer.start(store.writer)
            if then_alone is not None:
                await call(*then_alone)
            store.close_queue()
    conn.close()
    return outcomes, statements


def transactions(statements: list[str]) -> list[str]:
    return [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")]


def committed(path: Path) -> dict[str, int]:
    """Tickets on disk per job, read on a connection of its own."""
    rows = query(path, "SELECT job, count(*) FROM tickets GROUP BY job")
    return {job: count for job, count in rows}


async def test_a_call_failing_in_python_rolls_back_only_its_own_writes(tmp_path: Path) -> None:
    """Four callers' calls in one transaction; the second writes three rows, then raises. Its
    caller gets its exception, and none of its rows; the other three get their results, and
    all their rows are committed."""
    path = tmp_path / "bot.sqlite3"
    outcomes, statements = await one_batch(
        path,
        [("a", 2, ""), ("failing", 3, "raise"), ("c", 4, ""), ("d", 1, "")],
    )
    assert transactions(statements) == ["BEGIN IMMEDIATE", "COMMIT"]
    assert statements.count("SAVEPOINT job") == 4
    assert statements.count("ROLLBACK TO job") == 1
    failed = outcomes.pop("failing")
    assert isinstance(failed, Refused) and str(failed) == "failing"
    assert outcomes == {"a": "a: 2 written", "c": "c: 4 written", "d": "d: 1 written"}
    assert committed(path) == {"a": 2, "c": 4, "d": 1}


@pytest.mark.parametrize(
    ("then", "cause"),
    [("duplicate", "UNIQUE constraint failed"), ("trigger", "refused by trigger")],
)
async def test_a_call_failing_in_sqlite_rolls_back_only_its_own_writes(
    tmp_path: Path, then: str, cause: str
) -> None:
    """A statement SQLite refuses (a UNIQUE violation; a trigger's RAISE(ABORT)) after the call
    wrote rows: its caller gets a StoreError naming the cause, its rows are gone, and the
    calls before and after it in the same transaction are committed."""
    path = tmp_path / "bot.sqlite3"
    job = "abort" if then == "trigger" else "dup"
    outcomes, statements = await one_batch(path, [("a", 2, ""), (job, 3, then), ("c", 1, "")])
    assert transactions(statements) == ["BEGIN IMMEDIATE", "COMMIT"]
    failed = outcomes.pop(job)
    assert isinstance(failed, StoreError) and cause in str(failed)
    assert isinstance(failed.__cause__, sqlite3.IntegrityError)
    assert outcomes == {"a": "a: 2 written", "c": "c: 1 written"}
    assert committed(path) == {"a": 2, "c": 1}


async def test_a_call_that_ends_the_transaction_fails_every_call_of_the_batch(
    tmp_path: Path,
) -> None:
    """A trigger's RAISE(ROLLBACK) undoes the whole transaction, the writes of the calls
    before it too: every caller of the batch gets a StoreError, none a result that was not
    committed; nothing is on disk, and the next call is committed as usual."""
    path = tmp_path / "bot.sqlite3"
    outcomes, statements = await one_batch(
        path, [("a", 2, ""), ("rollback", 1, "trigger"), ("c", 1, "")], then_alone=("e", 1, "")
    )
    assert transactions(statements) == ["BEGIN IMMEDIATE", "BEGIN IMMEDIATE", "COMMIT"]
    assert outcomes.pop("e") == "e: 1 written"
    assert set(outcomes) == {"a", "rollback", "c"}
    assert all(isinstance(outcome, StoreError) for outcome in outcomes.values()), outcomes
    assert committed(path) == {"e": 1}


def test_a_migration_splits_where_sqlite_says_a_statement_ends() -> None:
    """A `;` inside a string literal or a trigger's body does not end a statement: a migration
    holding both applies whole (splitting on every `;` broke both)."""
    script = """
    -- a comment; with a semicolon
    CREATE TABLE t (a TEXT DEFAULT 'a;b', n INTEGER);
    CREATE TABLE log (what TEXT);
    CREATE TRIGGER t_logged AFTER INSERT ON t BEGIN
        INSERT INTO log (what) VALUES ('one;');
        INSERT INTO log (what) VALUES ('two');
    END;
    """
    statements = _statements(script)
    assert len(statements) == 3
    conn = sqlite3.connect(":memory:")
    for statement in statements:
        conn.execute(statement)
    conn.execute("INSERT INTO t (n) VALUES (1)")
    assert conn.execute("SELECT a FROM t").fetchall() == [("a;b",)]
    assert conn.execute("SELECT what FROM log").fetchall() == [("one;",), ("two",)]


def test_a_migration_with_an_unfinished_statement_is_refused() -> None:
    with pytest.raises(StoreError, match="unfinished statement"):
        _statements("CREATE TABLE t (a TEXT); CREATE TABLE u (b TEXT)")


# ---------------------------------------------------------------- reads beside the writer

#: a read that runs for many seconds: 10^8 rows counted one by one (about 12 s on one core)
LONG_COUNT = 10**8


def count_rows(conn: sqlite3.Connection, n: int, started: threading.Event | None = None) -> int:
    if started is not None:
        started.set()
    sql = (
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?)"
        " SELECT count(*) FROM c"
    )
    return int(conn.execute(sql, (n,)).fetchone()[0])


def tables(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])


async def test_an_abandoned_read_holds_up_neither_the_next_read_nor_closing_the_store(
    tmp_path: Path,
) -> None:
    """A caller gives up on a read that would run for seconds (as the pre-checkout desk does
    after 4 s): its statement is interrupted, so the next read is answered and the store
    closes at once, not when the abandoned statement would have ended (real time: the read
    runs in a thread)."""
    started = threading.Event()
    with trio.fail_after(60):
        async with open_store(tmp_path / "bot.sqlite3") as store:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(partial(store.read, count_rows, LONG_COUNT, started))
                await trio.to_thread.run_sync(started.wait)
                nursery.cancel_scope.cancel()
            abandoned = time.monotonic()
            answer = await store.read(count_rows, 10)
            next_read = time.monotonic() - abandoned
        closed = time.monotonic() - abandoned
    assert answer == 10
    assert next_read < 1.0, next_read
    assert closed < 1.0, closed


async def test_reads_go_on_while_every_default_worker_thread_is_taken(tmp_path: Path) -> None:
    """Reads have a thread limiter of their own: with every token of trio's default one held
    (by the writer's batches and other blocking calls under load), a read is still answered."""
    default = trio.to_thread.current_default_thread_limiter()
    async with open_store(tmp_path / "bot.sqlite3") as store:
        borrowers = [object() for _ in range(int(default.total_tokens))]
        for borrower in borrowers:
            default.acquire_on_behalf_of_nowait(borrower)
        try:
            with trio.fail_after(5):
                answer = await store.read(count_rows, 10)
        finally:
            for borrower in borrowers:
                default.release_on_behalf_of(borrower)
    assert answer == 10


async def test_a_read_gives_up_on_a_lock_held_elsewhere_well_before_the_check_limit(
    tmp_path: Path,
) -> None:
    """Another process holds the database exclusively: a read fails with StoreError after
    about a second, well within the 4 s a pre-checkout check may take, instead of sitting
    in its thread (and holding the reader) past the point its caller gave up."""
    path = tmp_path / "bot.sqlite3"
    connect(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("CREATE TABLE held (n INTEGER)")
    holder.execute("COMMIT")  # the exclusive lock stays until the connection closes
    reader = _open_reader(path)
    store = SqliteStore(holder, reader=reader)
    asked = time.monotonic()
    with trio.fail_after(10), pytest.raises(StoreError, match="locked"):
        await store.read(tables)
    took = time.monotonic() - asked
    reader.close()
    holder.close()
    assert 0.5 < took < CHECK_WITHIN / 2, took


# ---------------------------------------------------------------- schema 6: Telegram Stars

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def store_at_version_5_with_a_paid_order(path: Path) -> tuple[Order, Payment]:
    """A store as a `serve` of schema 5 left it (WAL, closed), holding the sample order paid
    by card, written with that schema's own statements."""
    order, payment = sample_order()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for script in MIGRATIONS[:5]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 5")
    conn.execute(
        "INSERT INTO orders (id, reference, chat_id, itinerary, price, currency, status,"
        " created_at, paid_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            order.id,
            order.reference,
            order.chat_id,
            json.dumps(order.itinerary.to_dict()),
            str(order.price),
            order.currency,
            order.status.value,
            order.created_at.isoformat(),
            payment.paid_at.isoformat(),
        ),
    )
    conn.execute(
        "INSERT INTO payments (order_id, method, amount, currency, provider_ref,"
        " provider_payment_id, tx_hash, paid_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            order.id,
            payment.method.value,
            str(payment.amount),
            payment.currency,
            payment.provider_ref,
            payment.provider_payment_id,
            payment.tx_hash,
            payment.paid_at.isoformat(),
            "stripe:webhook",
        ),
    )
    conn.close()
    return order, payment


def test_a_store_of_schema_5_migrates_to_the_latest_and_its_order_still_reads_and_renders(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bot.sqlite3"
    order, payment = store_at_version_5_with_a_paid_order(path)
    conn = connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert order_rows.get_order_by_reference(conn, order.reference) == order
    assert order_rows.get_payment(conn, order.id) == payment
    assert stars.invoices(conn, order.id) == []
    pdf = render_itinerary(order, payment, page_size="A4", issued_at=NOW)
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert order.reference in text and order.itinerary.passengers[0] in text
    assert "Stripe session" in text and payment.provider_ref in text
    # the new tables take the old order's invoices
    assert stars.add_invoice(conn, order.id, order.reference, 250, NOW).payload.startswith(
        "IB-7K3Q9P:"
    )
    conn.close()


def an_order(conn: sqlite3.Connection, reference: str) -> int:
    order, _ = sample_order()
    return order_rows.insert_order(
        conn,
        reference=reference,
        chat_id=42,
        itinerary=order.itinerary,
        price=Decimal("10.00"),
        currency="USD",
        created_at=NOW,
    )


def test_invoice_payloads_name_the_order_and_never_repeat(tmp_path: Path) -> None:
    conn = connect(tmp_path / "bot.sqlite3")
    x, y = an_order(conn, "IB-X"), an_order(conn, "IB-Y")
    first = stars.add_invoice(conn, x, "IB-X", 250, NOW)
    other = stars.add_invoice(conn, y, "IB-Y", 300, NOW)
    second = stars.add_invoice(conn, x, "IB-X", 250, NOW)
    payloads = [first.payload, second.payload, other.payload]
    assert [p.split(":")[0] for p in payloads] == ["IB-X", "IB-X", "IB-Y"]
    assert all(re.fullmatch(r"IB-[XY]:[A-Za-z0-9_-]{8}", p) for p in payloads), payloads
    assert first.payload != second.payload
    assert stars.invoices(conn, x) == [first, second]
    assert stars.invoice_by_payload(conn, second.payload) == second
    assert stars.invoice_by_payload(conn, other.payload) == other
    assert stars.invoice_by_payload(conn, "IB-X:3") is None
    conn.close()


def test_a_payload_over_128_bytes_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    """Telegram takes 1-128 bytes of payload: counted in UTF-8 bytes, not characters."""
    conn = connect(tmp_path / "bot.sqlite3")
    attempt = 1 + 8  # ":" and the attempt's token
    fits = "é" * ((128 - attempt) // 2) + "e" * ((128 - attempt) % 2)  # 128 bytes in all
    too_long = fits + "e"
    order_id = an_order(conn, "IB-LONG")
    assert len(stars.add_invoice(conn, order_id, fits, 1, NOW).payload.encode()) == 128
    with pytest.raises(ValueError, match="1-128 bytes"):
        stars.add_invoice(conn, order_id, too_long, 1, NOW)
    assert len(stars.invoices(conn, order_id)) == 1
    conn.close()


def test_a_stars_payment_is_recorded_once_per_charge_id(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    conn = connect(path)
    order_id = an_order(conn, "IB-X")
    paid = StarPayment("charge-1", 42, 42, payload="IB-X:1", currency="XTR", amount=250)
    assert stars.record_payment(conn, paid, order_id, NOW)
    again = dataclasses.replace(paid, amount=999)
    assert not stars.record_payment(conn, again, order_id, NOW)
    assert stars.get_payment(conn, "charge-1") == paid
    # a second charge for the same invoice is a payment of its own (owed back)
    assert stars.record_payment(conn, dataclasses.replace(paid, charge_id="charge-2"), None, NOW)
    assert query(path, "SELECT charge_id, order_id FROM star_payments") == [
        ("charge-1", order_id),
        ("charge-2", None),
    ]
    conn.close()
