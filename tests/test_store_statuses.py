"""Statuses are types and bound as parameters: a set of one status works like a set of many
(a one-element tuple pasted into SQL as `IN ('a',)` broke), and an unknown status is refused
before it reaches a row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from itinerabot.store import card_sessions, money
from itinerabot.store import circle_intents as intents
from itinerabot.store.circle_intents import IntentStatus
from itinerabot.store.db import connect
from itinerabot.store.money import RefundStatus
from itinerabot.store.sql import marks
from tests.harness import START, begin_card_refund, store_order


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    path = tmp_path / "store.sqlite3"
    store_order(path)
    conn = connect(path)
    try:
        yield conn
    finally:
        conn.close()


def _order_id(conn: sqlite3.Connection) -> int:
    (order_id,) = conn.execute("SELECT id FROM orders").fetchone()
    return int(order_id)


def test_refunds_in_one_status_and_in_several(conn: sqlite3.Connection) -> None:
    order_id = _order_id(conn)
    first = begin_card_refund(conn, order_id, "pi_1", Decimal("1.00"), START)
    second = begin_card_refund(conn, order_id, "pi_2", Decimal("2.00"), START)
    money.set_refund_result(conn, second.id, RefundStatus.PENDING, START)

    pending = money.refunds_in(conn, (RefundStatus.PENDING,))
    requested = money.refunds_in(conn, (RefundStatus.REQUESTED,))
    both = money.refunds_in(conn, (RefundStatus.REQUESTED, RefundStatus.PENDING))

    assert [r.id for r in pending] == [second.id]
    assert [r.id for r in requested] == [first.id]
    assert [r.id for r in both] == [first.id, second.id]
    assert money.refunds_in(conn, (RefundStatus.FAILED,)) == []


def test_an_intent_moves_only_while_open_and_reads_back_as_its_type(
    conn: sqlite3.Connection,
) -> None:
    order_id = _order_id(conn)
    row = intents.begin_attempt(conn, order_id, "key-1", "SOL", START)
    assert row.status is IntentStatus.CREATING and row.attempt == 1
    intents.set_created(conn, order_id, 1, "intent-1", 1_000.0)

    assert intents.set_status(conn, "intent-1", IntentStatus.EXPIRED)
    assert not intents.set_status(conn, "intent-1", IntentStatus.PAID)  # ended: stays
    found = intents.by_intent_id(conn, "intent-1")
    assert found is not None and found.status is IntentStatus.EXPIRED


def test_attempts_count_up_per_order_in_both_tables(conn: sqlite3.Connection) -> None:
    order_id = _order_id(conn)
    params = {"expires_at": int((START + timedelta(hours=1)).timestamp())}
    first = card_sessions.begin_attempt(conn, order_id, "key-a", params, START)
    second = card_sessions.begin_attempt(conn, order_id, "key-b", params, START)
    intent = intents.begin_attempt(conn, order_id, "key-c", "SOL", START)

    assert (first.attempt, second.attempt, intent.attempt) == (1, 2, 1)
    assert second.status is card_sessions.SessionStatus.CREATING
    assert second.params == params and second.idempotency_key == "key-b"
    assert intent.chain == "SOL" and intent.idempotency_key == "key-c"


def test_marks_binds_one_value_or_many_and_refuses_none() -> None:
    db = sqlite3.connect(":memory:")
    try:
        one = db.execute(f"SELECT 'a' IN ({marks(('a',))})", ("a",)).fetchone()
        many = db.execute(f"SELECT 'c' IN ({marks('abc')})", tuple("abc")).fetchone()
    finally:
        db.close()
    assert one == (1,) and many == (1,)
    with pytest.raises(ValueError):
        marks(())
