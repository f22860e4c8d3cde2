"""The money promise for USDC (issue 10, findings 2, 3 and 4) and Circle refunds.

A running `serve` against the sandbox Circle on trio's mock clock. Times asserted are the
trio times at which the fake Circle received each request, relative to T0, the moment the
order's intent was created (and first checked).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from itinerabot.circle.client import CircleClient
from itinerabot.circle.refunds import refund_usdc
from itinerabot.errors import TransientServiceError
from itinerabot.models import OrderStatus, PaymentMethod
from itinerabot.store import money, open_store
from itinerabot.store.db import connect
from itinerabot.store.money import RefundStatus
from sandbox.circle import (
    FakeCircle,
    late_paid_script,
    never_paid_script,
    paid_script,
    underpaid_then_expired_script,
)
from sandbox.serve import InProcessTransport
from sandbox.sns_signer import encode
from tests.harness import (
    CHAT,
    CIRCLE_KEY,
    START,
    Bot,
    Fakes,
    eventually,
    make_settings,
    running_bot,
    wall_clock,
)
from tests.test_fulfilment import card_payment, status_of
from tests.test_usdc import REF, pay_usdc

#: trio time at which the tests create their intents (whole seconds, so wall times are exact)
T0 = 10.0
WINDOW = 3600.0
LATE = 300.0  # circle.late_check_interval (default)
MARGIN = 900.0  # circle.expiry_margin (default)
#: the request budget's pace in tests with many checks: its starts (1/rate apart) then fall on
#: the same float trio time, so the mock clock has one jump per tick, not one per request
UNPACED = {"requests_per_second": 1e15}

PAYMENTS_INSERT_FAILS = (
    "CREATE TRIGGER boom BEFORE INSERT ON payments BEGIN SELECT RAISE(ABORT, 'injected'); END"
)
MARKING_PAID_FAILS = (
    "CREATE TRIGGER boom BEFORE UPDATE OF status ON circle_intents WHEN NEW.status = 'paid'"
    " BEGIN SELECT RAISE(ABORT, 'injected'); END"
)


def query(path: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    conn = connect(path)
    try:
        return [tuple(row) for row in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()


def execute(path: Path, sql: str) -> None:
    """Run `sql` on a connection of its own (as another process would): a real SQLite fault."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute(sql)
    finally:
        conn.close()


def since(times: list[float], t0: float, *, after: float = -1.0) -> list[float]:
    return [round(t - t0, 3) for t in times if t - t0 > after]


def late_ticks(first: int, last: int) -> list[float]:
    """The late watcher's ticks for an intent created at T0: window end + k × 300 s."""
    return [WINDOW + LATE * k for k in range(first, last + 1)]


class TrioTimes(logging.Handler):
    """Writes down the trio time of each log record whose message contains `needle`."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.times: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.times.append(trio.current_time())


@pytest.fixture
def hand_off_failures() -> Iterator[TrioTimes]:
    handler = TrioTimes("recording a paid USDC intent failed")
    logger = logging.getLogger("itinerabot.circle.poller")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def all_tasks() -> list[trio.lowlevel.Task]:
    found: list[trio.lowlevel.Task] = []

    def walk(task: trio.lowlevel.Task) -> None:
        found.append(task)
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    walk(root)
    return found


async def post_notification(bot: Bot, intent_id: str) -> tuple[int, str]:
    body = encode(bot.sns.notification(bot.circle.notification_message(intent_id)))
    async with bot.web() as web:
        answer = await web.post("/webhooks/circle", content=body)
    return answer.status_code, answer.text


# ---------------------------------------------------------------- finding 2: after the window


async def test_a_payment_at_90_minutes_is_found_by_the_late_watcher_without_a_webhook(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 2: a USDC payment made at 90 minutes, after the 1-hour poll window, is found by
    the late watcher at its sixth tick (window end 3600 + 6 × 300 = 5400 s) with no webhook,
    and delivered once. The window-end message says until when the bot keeps checking."""
    fakes = Fakes.make()
    fakes.circle.script_next(late_paid_script(5400))
    async with running_bot(tmp_path, fakes) as bot:
        await trio.sleep_until(T0)
        order_id, intent = await pay_usdc(bot)
        await trio.sleep_until(T0 + 5400 - 0.001)
        assert bot.api.sent_documents(CHAT) == []
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await trio.sleep(1200)
        texts = bot.api.sent_texts(CHAT)
    assert since(fakes.circle_gets(intent), T0) == [30.0 * k for k in range(120)] + late_ticks(1, 6)
    until = START + timedelta(seconds=T0 + 8 * 3600 + MARGIN)  # Circle's expiresOn + margin
    (told,) = [t for t in texts if "confirmed USDC payment for order" in t]
    assert f"we keep checking until {until:%Y-%m-%d %H:%M} UTC" in told
    assert "If you have not sent it, you can pay again" in told
    assert len(bot.api.sent_documents(CHAT)) == 1
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED
    assert query(bot.settings.store.path, "SELECT provider_ref, source FROM payments") == [
        (intent, "circle-late-check")
    ]
    assert fakes.amazon_requests == []  # no webhook was ever involved


async def test_late_checks_end_at_expiry_plus_the_margin(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 2: after the window an intent is checked every 300 s until Circle's expiresOn
    plus the margin, or its creation plus the lifetime when Circle never showed expiresOn,
    and then never again. Here the margin is 1000 s and the lifetime assumed 2 h, so an
    intent that never shows expiresOn nor ends at Circle is last checked at 8100 s
    (3600 + 15 × 300 ≤ 7200 + 1000). The other one's expiresOn is 8900 s after creation
    (Circle's lifetime in this test): Circle shows it expired at the tick of 9000 s, after
    which it is not checked either, and the traveller is told."""
    fakes = Fakes.make()
    fakes.circle = FakeCircle(api_key=CIRCLE_KEY, clock=wall_clock, intent_lifetime=8900)
    fakes.circle.script_next((), never_paid_script())  # no address ever; pending with one
    settings = make_settings(
        tmp_path, circle={"expiry_margin": 1000, "intent_lifetime": 7200, **UNPACED}
    )
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        await trio.sleep_until(T0)
        order_a, silent = await pay_usdc(bot, "IB-LAPSE1", chat=CHAT)
        order_b, pending = await pay_usdc(bot, "IB-LAPSE2", chat=CHAT + 1)
        await trio.sleep_until(T0 + 3 * 3600)
        told_a, told_b = bot.api.sent_texts(CHAT), bot.api.sent_texts(CHAT + 1)
    assert since(fakes.circle_gets(silent), T0, after=WINDOW) == late_ticks(1, 15)
    assert since(fakes.circle_gets(pending), T0, after=WINDOW) == late_ticks(1, 18)
    path = bot.settings.store.path
    assert query(path, "SELECT order_id, status FROM circle_intents ORDER BY order_id") == [
        (order_a, "lapsed"),
        (order_b, "expired"),
    ]
    until_a = START + timedelta(seconds=T0 + 7200 + 1000)
    until_b = START + timedelta(seconds=T0 + 8900 + 1000)
    assert any(f"until {until_a:%Y-%m-%d %H:%M} UTC" in t for t in told_a)
    assert any(f"until {until_b:%Y-%m-%d %H:%M} UTC" in t for t in told_b)
    assert any("expired before a full payment arrived" in t for t in told_b)


async def test_one_task_checks_all_late_intents_in_each_round(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 2: forty intents past their window are watched by one task, not one each:
    between rounds no poller and exactly one late-watching task exist, and each round checks
    all forty at the same instants (3900, 4200, 4500 s)."""
    count = 40
    fakes = Fakes.make()
    fakes.circle.script_next(*[never_paid_script()] * count)
    settings = make_settings(tmp_path, circle=UNPACED)
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        await trio.sleep_until(T0)
        intents = [(await pay_usdc(bot, f"IB-MANY{i:02d}", chat=CHAT + i))[1] for i in range(count)]
        await trio.sleep_until(T0 + WINDOW + 450)  # between the first and second late rounds
        pollers = bot.rt.pollers.running
        watching = [
            (t.name, t.coro.cr_code.co_qualname)
            for t in all_tasks()
            if t.coro.cr_code.co_qualname.startswith("LateWatcher.")
        ]
        await trio.sleep_until(T0 + WINDOW + 3 * LATE + 1)
    assert pollers == 0
    assert watching == [("circle late watcher", "LateWatcher.run")]
    for intent in intents:
        assert since(fakes.circle_gets(intent), T0, after=WINDOW) == late_ticks(1, 3)


# ---------------------------------------------------------------- finding 3: nothing stranded


async def test_the_start_up_check_is_retried_after_a_circle_500(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 3: an intent whose window passed while the bot was down, and which Circle has
    completed meanwhile, is checked at once on start-up; that check gets a 500, and the next
    late round (300 s later) finds the payment: one PDF."""
    fakes = Fakes.make()
    fakes.circle.script_next(never_paid_script())
    async with running_bot(tmp_path, fakes) as bot:
        await trio.sleep_until(T0)
        order_id, intent = await pay_usdc(bot)
        await trio.sleep(100)
    await trio.sleep(7200)  # down past the window; the payment completes meanwhile
    fakes.circle.set_script(intent, paid_script(pending_after=0, paid_after=0))
    fakes.circle.fail_next("server_error")
    async with running_bot(tmp_path, fakes) as bot:
        restarted = trio.current_time()
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1, timeout=600)
        await trio.sleep(900)
    assert since(fakes.circle_gets(intent), restarted, after=-0.001) == [0.0, LATE]
    assert len(bot.api.sent_documents(CHAT)) == 1
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED


async def test_a_payment_made_while_the_bot_was_down_past_the_expiry_is_still_found(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The bot is down from 100 s until after the intent's expiresOn + margin; the traveller
    paid at 2 h. The intent is past its watch, but no round has seen it since: the first
    round after the restart checks it once more, finds the payment and delivers it."""
    fakes = Fakes.make()
    fakes.circle.script_next(paid_script(pending_after=1, paid_after=7200, by_time=True))
    async with running_bot(tmp_path, fakes) as bot:
        await trio.sleep_until(T0)
        order_id, intent = await pay_usdc(bot)
        await trio.sleep(100)
    await trio.sleep_until(T0 + 9 * 3600)
    async with running_bot(tmp_path, fakes) as bot:
        restarted = trio.current_time()
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await trio.sleep(LATE * 3)
    assert since(fakes.circle_gets(intent), restarted, after=-0.001) == [0.0]
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED


@pytest.mark.parametrize(
    "trigger", [PAYMENTS_INSERT_FAILS, MARKING_PAID_FAILS], ids=["payments-insert", "mark-paid"]
)
async def test_a_failed_hand_off_is_retried_until_it_commits(
    tmp_path: Path,
    autojump_clock: trio.abc.Clock,
    hand_off_failures: TrioTimes,
    trigger: str,
) -> None:
    """Finding 3: recording the payment the poller found fails (the payments INSERT, or
    marking the intent paid, raises in SQLite); the hand-off is retried after 1, 2, 4 s
    until it commits, and the PDF arrives once."""
    fakes = Fakes.make()
    fakes.circle.script_next(paid_script(pending_after=1, paid_after=3))  # paid at 60 s
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        await trio.sleep_until(T0)
        execute(path, trigger)
        order_id, intent = await pay_usdc(bot)
        await eventually(lambda: len(hand_off_failures.times) >= 3)
        execute(path, "DROP TRIGGER boom")
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await trio.sleep(300)
    assert since(hand_off_failures.times, T0) == [60.0, 61.0, 63.0]
    assert since(fakes.circle_gets(intent), T0) == [0.0, 30.0, 60.0]  # the poller had ended
    assert len(bot.api.sent_documents(CHAT)) == 1
    assert status_of(path, order_id) == OrderStatus.DELIVERED
    assert query(path, "SELECT status FROM circle_intents") == [("paid",)]
    assert query(path, "SELECT provider_ref, source FROM payments") == [(intent, "circle-poller")]


async def test_a_webhook_that_cannot_record_answers_503_and_keeps_the_poller(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 3: Circle's notification of the payment arrives while marking the intent paid
    fails: the webhook answers 503 (SNS delivers again) and the poller keeps running; the
    next delivery records it, and the PDF arrives once."""
    fakes = Fakes.make()
    fakes.circle.script_next(never_paid_script())
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        await trio.sleep_until(T0)
        order_id, intent = await pay_usdc(bot)
        await trio.sleep(45)
        fakes.circle.set_script(intent, paid_script(pending_after=0, paid_after=0))
        fakes.circle.advance(intent)
        fakes.circle.advance(intent)
        body = encode(bot.sns.notification(fakes.circle.notification_message(intent)))
        execute(path, MARKING_PAID_FAILS)
        async with bot.web() as web:
            refused = await web.post("/webhooks/circle", content=body)
            running = bot.rt.pollers.is_running(order_id)
            execute(path, "DROP TRIGGER boom")
            again = await web.post("/webhooks/circle", content=body)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await trio.sleep(300)
        running_after = bot.rt.pollers.is_running(order_id)
    assert refused.status_code == 503 and running
    assert (again.status_code, again.text) == (200, "ok")
    assert not running_after
    assert len(bot.api.sent_documents(CHAT)) == 1
    assert query(path, "SELECT status FROM circle_intents") == [("paid",)]
    assert query(path, "SELECT source FROM payments") == [("circle-webhook",)]


# ---------------------------------------------------------------- finding 4: money not credited


@pytest.mark.parametrize("seen_by", ["poller", "webhook"])
async def test_underpaid_then_expired_is_recorded_warned_and_told(
    tmp_path: Path, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture, seen_by: str
) -> None:
    """Finding 4: 5.00 of 10.00 USDC arrived, then the intent expired: the 5.00 is recorded
    as an extra payment (partial, owed back), a WARNING is logged, and the traveller is told
    what arrived and how to get it back (the address and network to send it to)."""
    caplog.set_level(logging.WARNING)
    fakes = Fakes.make()
    fakes.circle.script_next(
        underpaid_then_expired_script(pending_after=1, underpaid_after=2, expired_after=4)
    )
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        await trio.sleep_until(T0)
        order_id, intent = await pay_usdc(bot)
        if seen_by == "webhook":
            bot.rt.pollers.cancel(order_id)  # only the webhook tells of it
            for _ in range(3):
                fakes.circle.advance(intent)
            assert await post_notification(bot, intent) == (200, "ok")
        await eventually(lambda: any("send it back" in t for t in bot.api.sent_texts(CHAT)))
        await trio.sleep(600)
        texts = bot.api.sent_texts(CHAT)
        keyboard = bot.api.last_keyboard(CHAT)
    assert query(
        path,
        "SELECT order_id, method, kind, amount, currency, provider_ref FROM extra_payments",
    ) == [(order_id, "usdc", "partial", "5.00", "USDC", intent)]
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "not credited" in r.message
    ]
    assert len(warnings) == 1
    (told,) = [t for t in texts if "send it back" in t]
    assert told.startswith(
        f"The USDC payment for order {REF} expired with 5.00 USDC of 10.00 received, "
        "which does not pay the order. We will send it back in USDC: to receive it, reply "
        "here with /help with your order reference and the address and network to send it to."
    )
    assert not any("expired before a full payment arrived" in t for t in texts)
    assert keyboard is not None and keyboard.data_for("Pay with USDC again") == f"pay:usdc:{REF}"
    assert query(path, "SELECT status FROM circle_intents") == [("expired",)]
    assert status_of(path, order_id) == OrderStatus.AWAITING_PAYMENT


async def test_usdc_landing_after_a_card_payment_is_a_second_payment_told(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 4: the order is paid by card at 45 s while its USDC intent is open, and USDC
    has landed on the intent at 40 s: the bot asks Circle to expire the intent at once,
    finds the payment (Circle refuses to expire a completed intent), records it as a second
    payment owed back and tells the traveller. One PDF."""
    fakes = Fakes.make()
    fakes.circle.script_next(paid_script(pending_after=1, paid_after=40, by_time=True))
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        await trio.sleep_until(T0)
        order_id, intent = await pay_usdc(bot)
        await trio.sleep(45)
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
        await eventually(lambda: any("second payment" in t for t in bot.api.sent_texts(CHAT)))
        await trio.sleep(LATE * 4)
        texts = bot.api.sent_texts(CHAT)
    assert since([t for t, i in fakes.circle.expire_requests if i == intent], T0) == [45.0]
    assert query(
        path, "SELECT method, kind, amount, currency, provider_ref FROM extra_payments"
    ) == [("usdc", "second", "10.00", "USDC", intent)]
    (told,) = [t for t in texts if "second payment" in t]
    assert f"10.00 USDC for order {REF}, which was already paid" in told
    assert query(path, "SELECT method, provider_ref FROM payments") == [("card", "cs_test_1")]
    assert query(path, "SELECT status FROM circle_intents") == [("paid",)]
    # the poller's two checks, then the one after Circle refused to expire: no more
    assert since(fakes.circle_gets(intent), T0) == [0.0, 30.0, 45.0]
    assert len(bot.api.sent_documents(CHAT)) == 1


async def test_a_card_payment_expires_the_open_intent_even_when_circle_fails_once(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 4: the order is paid by card while its USDC intent is open and unpaid: the bot
    asks Circle to expire the intent so no payment can land; that request gets a 500, so the
    late watcher asks again one round later; then the intent is expired and no longer
    checked. The traveller hears nothing about it."""
    fakes = Fakes.make()
    fakes.circle.script_next(never_paid_script())
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        await trio.sleep_until(T0)
        order_id, intent = await pay_usdc(bot)
        await trio.sleep(45)
        fakes.circle.fail_next("server_error")
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
        await trio.sleep(LATE * 5)
        texts = bot.api.sent_texts(CHAT)
    expire = f"/v1/paymentIntents/{intent}/expire"
    posts = [t for t, method, p in fakes.circle_log if method == "POST" and p == expire]
    assert since(posts, T0) == [45.0, 45.0 + LATE]
    assert fakes.circle.latest_status(intent) == "expired"
    assert query(path, "SELECT status FROM circle_intents") == [("expired",)]
    assert since(fakes.circle_gets(intent), T0) == [0.0, 30.0]  # the poller stopped at 45 s
    assert query(path, "SELECT COUNT(*) FROM extra_payments") == [(0,)]
    assert not any("USDC payment" in t and "expired" in t for t in texts)
    assert len(bot.api.sent_documents(CHAT)) == 1


async def test_usdc_webhook_after_a_card_payment_is_a_second_payment_told(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 4, webhook path: the card pays the order and Circle's expire request fails;
    Circle's notification then says the intent was paid: a second payment, recorded and told.
    The late watcher leaves the intent alone afterwards (it is final)."""
    fakes = Fakes.make()
    fakes.circle.script_next(never_paid_script())
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        await trio.sleep_until(T0)
        order_id, intent = await pay_usdc(bot)
        await trio.sleep(45)
        fakes.circle.fail_next("server_error")
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
        fakes.circle.set_script(intent, paid_script(pending_after=0, paid_after=0))
        fakes.circle.advance(intent)
        fakes.circle.advance(intent)
        assert await post_notification(bot, intent) == (200, "ok")
        await eventually(lambda: any("second payment" in t for t in bot.api.sent_texts(CHAT)))
        await trio.sleep(LATE * 3)
    expire = f"/v1/paymentIntents/{intent}/expire"
    assert since([t for t, m, p in fakes.circle_log if m == "POST" and p == expire], T0) == [45.0]
    assert query(path, "SELECT kind, provider_ref FROM extra_payments") == [("second", intent)]
    assert query(path, "SELECT status FROM circle_intents") == [("paid",)]
    assert since(fakes.circle_gets(intent), T0) == [0.0, 30.0]
    assert len(bot.api.sent_documents(CHAT)) == 1


# ---------------------------------------------------------------- Circle refunds

DESTINATION = "0x8381470ED67C3802402dbbFa0058E8871F017A6F"


async def test_refund_usdc_asks_circle_once_per_key_and_records_the_answer(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The 5.00 USDC of an underpaid, expired intent is refunded through Circle's crypto
    refund: the stored key makes a repeat the same refund; Circle's answer is recorded; a
    lost answer keeps the refund requested; a refused one is recorded as failed."""
    fakes = Fakes.make()
    fakes.circle.script_next(
        underpaid_then_expired_script(pending_after=1, underpaid_after=2, expired_after=4)
    )
    async with running_bot(tmp_path, fakes) as bot:
        await trio.sleep_until(T0)
        order_id, intent = await pay_usdc(bot)
        await eventually(lambda: any("send it back" in t for t in bot.api.sent_texts(CHAT)))
    path = bot.settings.store.path
    settings = bot.settings.circle
    async with (
        open_store(path) as store,
        CircleClient(settings, transport=InProcessTransport(fakes.circle)) as client,
    ):
        (extra,) = await store.run(money.extra_payments, order_id)
        now = wall_clock()
        refund = await store.run(
            lambda conn: money.begin_refund(
                conn,
                order_id=order_id,
                method=PaymentMethod.USDC,
                provider_ref=intent,
                amount=extra.amount,
                currency=extra.currency,
                now=now,
                extra_payment_id=extra.id,
            )
        )
        fakes.circle.fail_next("server_error")
        with pytest.raises(TransientServiceError):
            await refund_usdc(
                store, client, refund, address=DESTINATION, chain="ETH", clock=wall_clock
            )
        lost = await store.run(money.get_refund, refund.id)
        first = await refund_usdc(
            store, client, refund, address=DESTINATION, chain="ETH", clock=wall_clock
        )
        again = await refund_usdc(
            store, client, refund, address=DESTINATION, chain="ETH", clock=wall_clock
        )
        too_much = await store.run(
            lambda conn: money.begin_refund(
                conn,
                order_id=order_id,
                method=PaymentMethod.USDC,
                provider_ref=intent,
                amount=Decimal("1.00"),
                currency="USDC",
                now=now,
            )
        )
        refused = await refund_usdc(
            store, client, too_much, address=DESTINATION, chain="ETH", clock=wall_clock
        )
    assert lost is not None and lost.status == RefundStatus.REQUESTED and lost.error
    (circle_refund,) = fakes.circle.refunds.values()
    assert circle_refund["destination"] == {"address": DESTINATION, "chain": "ETH"}
    assert circle_refund["settlementAmount"] == {"amount": "5.00", "currency": "USD"}
    assert circle_refund["paymentIntentId"] == intent
    assert first.status == again.status == RefundStatus.PENDING
    assert first.provider_refund_id == again.provider_refund_id == circle_refund["id"]
    assert first.error is None
    assert fakes.circle.intent(intent)["amountRefunded"]["amount"] == "5.00"
    assert refused.status == RefundStatus.FAILED
    assert refused.error == "The refund amount exceeds the amount left to refund."
