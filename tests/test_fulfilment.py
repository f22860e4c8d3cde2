"""`handle_successful_payment` and the PDF sender: exactly one PDF per paid order."""

from __future__ import annotations

import io
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

import trio
from pypdf import PdfReader

from itinerabot.models import OrderStatus
from itinerabot.store import orders as order_rows
from itinerabot.store import outbox
from itinerabot.store.db import connect
from tests.harness import (
    CHAT,
    START,
    Fakes,
    card_payment,
    eventually,
    running_bot,
    status_of,
    store_order,
)


async def test_fifty_concurrent_calls_send_one_pdf(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path) as bot:
        order_id = store_order(bot.settings.store.path)
        results: list[bool] = []

        async def pay() -> None:
            results.append(
                await bot.rt.fulfilment.handle_successful_payment(
                    order_id, card_payment(), source="test"
                )
            )

        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(pay)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        for _ in range(5):  # late repeats, a different provider id too
            await bot.rt.fulfilment.handle_successful_payment(
                order_id, card_payment("cs_test_other"), source="test"
            )
        await trio.sleep(30)
        docs = bot.api.sent_documents(CHAT)
        texts = bot.api.sent_texts(CHAT)
    assert results.count(True) == 1 and len(results) == 50
    assert len(docs) == 1
    assert len(bot.api.calls_to("sendDocument")) == 1
    assert docs[0].file_name == "itinerary-IB-7K3Q9P.pdf"
    assert docs[0].caption and "IB-7K3Q9P" in docs[0].caption
    assert sum("Payment received" in t for t in texts) == 1
    assert texts.index(next(t for t in texts if "Payment received" in t)) == 0
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(docs[0].data)).pages)
    assert "IB-7K3Q9P" in text and "cs_test_1" in text
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED
    assert bot.api.violations == []


async def test_paid_but_undelivered_after_a_crash_is_delivered_once(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    fakes = Fakes.make()
    path = tmp_path / "bot.sqlite3"
    order_id = store_order(path)
    # a crash right after the payment was recorded: paid, outbox rows pending, nothing sent
    conn = connect(path)
    conn.execute("BEGIN")
    order_rows.mark_paid(conn, order_id, card_payment(), "stripe")
    outbox.enqueue(conn, CHAT, "document", {}, created_at=START, order_id=order_id)
    conn.execute("COMMIT")
    conn.close()
    async with running_bot(tmp_path, fakes) as bot:
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await trio.sleep(30)
    async with running_bot(tmp_path, fakes) as bot:  # and a further restart sends nothing
        await trio.sleep(30)
    assert len(fakes.api.sent_documents(CHAT)) == 1
    assert status_of(path, order_id) == OrderStatus.DELIVERED


async def test_429_waits_retry_after_then_sends_once(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    fakes = Fakes.make()
    fakes.api.fail_next("sendDocument", status=429, retry_after=11)
    async with running_bot(tmp_path, fakes) as bot:
        order_id = store_order(bot.settings.store.path)
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
    calls = fakes.api.calls_to("sendDocument")
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].at - calls[0].at == 11
    assert status_of(tmp_path / "bot.sqlite3", order_id) == OrderStatus.DELIVERED


def hold_write_lock(path: Path, seconds: float, taken: threading.Event) -> None:
    """Hold the store's write lock for `seconds` of real time, as an operator's command in
    another process would."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()


async def test_a_429_retry_is_on_time_while_another_process_holds_the_store(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """When the retry of a 429 is due, the store is locked for 0.2 s of real time:
    its `begin_send` waits for the lock, and that wait is not trio time. The mock clock used
    to jump while the bot's thread waited, and the retry due 11 s after the 429 went out
    29 s after it."""
    fakes = Fakes.make()
    fakes.api.fail_next("sendDocument", status=429, retry_after=11)
    async with running_bot(tmp_path, fakes) as bot:
        order_id = store_order(bot.settings.store.path)
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
        await eventually(lambda: len(bot.api.calls_to("sendDocument")) == 1)
        await trio.sleep_until(bot.api.calls_to("sendDocument")[0].at + 10.9)
        taken = threading.Event()
        other = threading.Thread(target=hold_write_lock, args=(bot.settings.store.path, 0.2, taken))
        other.start()
        await trio.to_thread.run_sync(taken.wait)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        other.join()
    calls = fakes.api.calls_to("sendDocument")
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].at - calls[0].at == 11


async def test_blocked_user_is_recorded_and_not_retried(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    fakes = Fakes.make()
    fakes.api.block(CHAT)
    async with running_bot(tmp_path, fakes) as bot:
        order_id = store_order(bot.settings.store.path)
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
        await eventually(lambda: len(bot.api.calls_to("sendDocument")) == 1)
        await trio.sleep(600)
    assert len(fakes.api.calls_to("sendDocument")) == 1
    assert status_of(tmp_path / "bot.sqlite3", order_id) == OrderStatus.DELIVERY_FAILED
    conn = connect(tmp_path / "bot.sqlite3")
    query = "SELECT delivery_error FROM orders WHERE id = ?"
    (error,) = conn.execute(query, (order_id,)).fetchone()
    assert "blocked" in error.lower()


async def test_sends_to_one_chat_are_paced(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    async with running_bot(tmp_path) as bot:
        ids = [store_order(bot.settings.store.path, reference=f"IB-AAAAA{i}") for i in range(3)]
        for i, order_id in enumerate(ids):
            await bot.rt.fulfilment.handle_successful_payment(
                order_id, replace(card_payment(), provider_ref=f"cs_{i}"), source="t"
            )
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 3)
    times = [c.at for c in bot.api.calls if c.method in ("sendMessage", "sendDocument")]
    assert len(times) == 6
    # one a second on average, with a burst of two (per_chat_burst): the first text and PDF
    # together, then each message at least a second after the one two places before it
    assert times[1] - times[0] < 0.1
    assert all(c - a >= 1.0 for a, c in zip(times, times[2:], strict=False))
    assert times[5] - times[0] >= 4.0


async def test_a_chat_waiting_for_its_pace_does_not_hold_up_other_chats(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    other = CHAT + 1
    async with running_bot(tmp_path) as bot:
        path = bot.settings.store.path
        first = [store_order(path, reference=f"IB-AAAAB{i}") for i in range(2)]
        late = store_order(path, chat_id=other, reference="IB-BBBBB2")
        for i, order_id in enumerate(first):
            await bot.rt.fulfilment.handle_successful_payment(
                order_id, replace(card_payment(), provider_ref=f"cs_a{i}"), source="t"
            )
        await trio.sleep(0.2)
        await bot.rt.fulfilment.handle_successful_payment(late, card_payment("cs_b"), source="t")
        await eventually(lambda: len(bot.api.sent_documents()) == 3)
    sends = [c for c in bot.api.calls if c.method in ("sendMessage", "sendDocument")]
    mine = [c.at for c in sends if c.params["chat_id"] == CHAT]
    theirs = [c.at for c in sends if c.params["chat_id"] == other]
    # the first chat's third message waits a second for its pace; the other chat's first
    # message, queued 0.2 s in, goes out long before that
    assert mine[2] - mine[0] >= 1.0
    assert theirs[0] < mine[0] + 0.5
