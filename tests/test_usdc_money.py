"""The money promise for USDC: a payment is found however late it lands (pollers, late
watcher, webhook), a hand-off that fails is retried, money owed back is recorded; and Circle
refunds.

A running `serve` against the sandbox Circle on trio's mock clock. Times asserted are the
trio times at which the fake Circle received each request, relative to T0, the moment the
order's intent was created (and first checked).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from itinerabot.adapters.circle.client import CircleClient
from itinerabot.errors import TransientServiceError
from itinerabot.models import OrderStatus, PaymentMethod
from itinerabot.payments.usdc.refunds import refund_usdc
from itinerabot.store import money, open_store
from itinerabot.store.money import RefundStatus
from itinerabot.wiring import Transports
from sandbox.circle import (
    FakeCircle,
    Step,
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
    USDC_REF,
    Bot,
    Fakes,
    card_payment,
    eventually,
    make_settings,
    pay_usdc,
    query,
    running_bot,
    status_of,
    store_order,
    text_of,
    wall_clock,
)

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
    logger = logging.getLogger("itinerabot.payments.usdc.poller")
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
    then once more (USDC review 1: a payment confirmed after the last check inside the
    margin is found), and then never again. Here the margin is 1000 s and the lifetime
    assumed 2 h, so an intent that never shows expiresOn nor ends at Circle is checked at
    8100 s (3600 + 15 × 300 ≤ 7200 + 1000) and last at 8400 s. The other one's expiresOn
    is 8900 s after creation (Circle's lifetime in this test): Circle shows it expired at
    the tick of 9000 s, after which it is not checked either, and the traveller is told."""
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
    assert since(fakes.circle_gets(silent), T0, after=WINDOW) == late_ticks(1, 16)
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


@pytest.mark.slow
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
        f"The USDC payment for order {USDC_REF} expired with 5.00 USDC of 10.00 received, "
        "which does not pay the order. We will send it back in USDC: to receive it, reply "
        "here with /help with your order reference and the address and network to send it to."
    )
    assert not any("expired before a full payment arrived" in t for t in texts)
    assert (
        keyboard is not None and keyboard.data_for("Pay with USDC again") == f"pay:usdc:{USDC_REF}"
    )
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
    assert f"10.00 USDC for order {USDC_REF}, which was already paid" in told
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


@pytest.mark.slow
async def test_a_payment_confirmed_inside_the_margin_is_found(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """USDC review 1: Circle's expiresOn is 9050 s after creation, so the bot watches until
    9950 s (margin 900 s); late rounds fall at 9900 and 10200 s. Circle confirms the full
    payment at 9920 s, inside the margin, and is slow to close the intent. The 9900 s check
    came before the watch ended, so the 10200 s round checks once more and finds the
    payment (it used to let the intent go unchecked): the traveller gets the itinerary."""
    fakes = Fakes.make()
    fakes.circle = FakeCircle(api_key=CIRCLE_KEY, clock=wall_clock, intent_lifetime=9050)
    fakes.circle.script_next(never_paid_script())
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        await trio.sleep_until(T0)
        order_id, intent = await pay_usdc(bot)
        fakes.circle.keep_open(intent)
        await trio.sleep_until(T0 + 9920)
        fakes.circle.set_script(intent, (Step("complete", "paid", Decimal(1), after_checks=0),))
        fakes.circle.advance(intent)
        await trio.sleep_until(T0 + 12 * 3600)
        docs = bot.api.sent_documents(CHAT)
    assert since(fakes.circle_gets(intent), T0, after=9000) == [9300.0, 9600.0, 9900.0, 10200.0]
    assert len(docs) == 1
    assert status_of(path, order_id) == OrderStatus.DELIVERED
    assert query(path, "SELECT status FROM circle_intents") == [("paid",)]


def slow_edge(fakes: Fakes, delay: float, *, telegram: str = "", circle_post: str = "") -> None:
    """The fakes take `delay` seconds to answer the Bot API method `telegram`, or a POST to
    Circle's path `circle_post` (a slow service at the edge)."""
    api, circle_app = fakes.api, fakes.circle_app

    async def slow_api(scope: Any, receive: Any, send: Any) -> None:
        if telegram and scope["type"] == "http" and scope["path"].endswith("/" + telegram):
            await trio.sleep(delay)
        await api(scope, receive, send)

    async def slow_circle(scope: Any, receive: Any, send: Any) -> None:
        if (
            circle_post
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == circle_post
        ):
            await trio.sleep(delay)
        await circle_app(scope, receive, send)

    def transports() -> Transports:
        return Transports(
            telegram=InProcessTransport(slow_api),
            stripe=InProcessTransport(fakes.stripe),
            circle=InProcessTransport(slow_circle),
            sns=httpx.MockTransport(fakes.amazon),
        )

    fakes.transports = transports  # type: ignore[method-assign]


async def test_a_window_ending_during_start_up_is_handed_to_the_late_watcher(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """USDC review 2: the bot restarts 2 s before an intent's window ends and setMyCommands
    takes 5 s, so the window ends between the late watcher's first round and the pollers'
    resumption. The intent used to be watched by nothing (no poller, an idle watcher) and a
    payment made at 3700 s went unseen for hours. Now the idle watcher wakes when the window
    ends (3600 s; resume also hands it over with a nudge at 3603 s), and its round one
    interval later finds the payment: the traveller gets the itinerary."""
    fakes = Fakes.make()
    fakes.circle.script_next(late_paid_script(3700))
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        await trio.sleep_until(T0)
        order_id, intent = await pay_usdc(bot)
        await trio.sleep(100)
    await trio.sleep_until(T0 + WINDOW - 2)
    slow_edge(fakes, 5.0, telegram="setMyCommands")
    async with running_bot(tmp_path, fakes) as bot:
        await trio.sleep_until(T0 + 6 * 3600)
        docs = bot.api.sent_documents(CHAT)
    assert since(fakes.circle_gets(intent), T0, after=200) == [WINDOW + LATE]
    assert len(docs) == 1
    assert status_of(path, order_id) == OrderStatus.DELIVERED


async def test_a_wall_clock_step_does_not_end_a_running_window(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """USDC review 3: the wall clock steps 30 min ahead (an NTP step, a VM resumed) while
    B's poller has 15 min of its window left on trio's clock. A's window ends at 3600 s and
    nudges the late watcher; its round at 3900 s used to treat B's intent as late by the wall
    clock and tell B the window had ended while B's poller still checked every 30 s. Now an
    intent whose poller runs is not late: B hears nothing, its poller runs to its end."""
    offset = [timedelta(0)]

    def clock() -> datetime:
        return wall_clock() + offset[0]

    fakes = Fakes.make()
    fakes.circle.script_next(never_paid_script(), never_paid_script())
    async with running_bot(tmp_path, fakes, clock=clock) as bot:
        await trio.sleep_until(T0)
        await pay_usdc(bot, "IB-AAAA1", chat=CHAT)
        await trio.sleep(1800)
        order_b, b = await pay_usdc(bot, "IB-BBBB1", chat=CHAT + 1)
        offset[0] = timedelta(minutes=30)
        await trio.sleep_until(T0 + 3900 + 5)
        told_b = [t for t in bot.api.sent_texts(CHAT + 1) if "confirmed USDC payment" in t]
        running_b = bot.rt.pollers.is_running(order_b)
        path = bot.settings.store.path
        status = query(path, "SELECT status FROM circle_intents WHERE intent_id = ?", b)
        await trio.sleep_until(T0 + 1800 + WINDOW + 5)
        told_b_later = [t for t in bot.api.sent_texts(CHAT + 1) if "confirmed USDC payment" in t]
    assert told_b == [] and running_b and status == [("polling",)]
    assert len(told_b_later) == 1  # at the end of B's own window


async def test_an_expiry_circle_refuses_is_asked_again(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """USDC review 4: the order is paid by card at 45 s; Circle refuses to expire its open
    intent once (409, the intent still pending). The bot used to record it superseded and
    only look at it from then on, leaving it open for payment all its life; now the late
    watcher asks again one round later and the intent is expired."""
    fakes = Fakes.make()
    fakes.circle.script_next(never_paid_script())
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        await trio.sleep_until(T0)
        order_id, intent = await pay_usdc(bot)
        await trio.sleep(45)
        fakes.circle.refuse_expiry(intent)
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
        await trio.sleep(LATE * 5)
    assert since([t for t, _ in fakes.circle.expire_requests], T0) == [45.0, 45.0 + LATE]
    assert fakes.circle.latest_status(intent) == "expired"
    assert query(path, "SELECT status FROM circle_intents") == [("expired",)]


async def test_a_card_payment_while_the_intent_is_created_expires_it(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """USDC review 5: Circle takes 5 s to create the intent and the order is paid by card
    2 s into it. The intent used to be left open at Circle and unwatched for hours; now it
    is expired as soon as it is stored, the traveller is told the order is paid, and no
    poller watches it."""
    fakes = Fakes.make()
    fakes.circle.script_next(never_paid_script())
    slow_edge(fakes, 5.0, circle_post="/v1/paymentIntents")
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        await trio.sleep_until(T0)
        order_id = store_order(path, chat_id=CHAT, reference=USDC_REF)
        usdc = bot.rt.payments.usdc
        assert usdc is not None
        answer: list[str] = []

        async def tap() -> None:
            replies = await usdc.pay_with_usdc(CHAT, USDC_REF)
            answer.extend(text_of(m) for m in replies)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(tap)
            await trio.sleep(2)
            await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
        await trio.sleep(4 * 3600)
        (intent,) = fakes.circle.intent_ids()
        running = bot.rt.pollers.is_running(order_id)
    assert answer == [f"Order {USDC_REF} is already paid."]
    assert since([t for t, _ in fakes.circle.expire_requests], T0) == [5.0]
    assert fakes.circle.latest_status(intent) == "expired"
    assert query(path, "SELECT status FROM circle_intents") == [("expired",)]
    assert not running


@pytest.mark.slow
async def test_an_intent_circle_no_longer_knows_is_let_go_after_its_watch(
    tmp_path: Path, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """USDC review 6: Circle answers 404 for an intent from 100 s on (another environment or
    key, data it dropped). It used to be checked every round for ever; now it is checked
    until its watch ends (creation + 8 h + 900 s) and let go at the first round after it,
    with an ERROR for the operator."""
    fakes = Fakes.make()
    fakes.circle.script_next(never_paid_script())
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        await trio.sleep_until(T0)
        _, intent = await pay_usdc(bot)
        await trio.sleep(100)
        fakes.circle.forget(intent)
        await trio.sleep_until(T0 + 12 * 3600)
    watch_until = 8 * 3600 + MARGIN
    late_gets = since(fakes.circle_gets(intent), T0, after=WINDOW)
    assert late_gets[-1] == WINDOW + LATE * ((watch_until - WINDOW) // LATE + 1)
    assert query(path, "SELECT status FROM circle_intents") == [("lapsed",)]
    assert any(
        r.levelno == logging.ERROR and "no longer watched" in r.getMessage() for r in caplog.records
    )


async def test_a_late_round_that_cannot_read_its_work_does_not_stop_the_bot(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """USDC review 7: an intent's row holds a date the watcher cannot read (written by hand,
    by another version) during the rounds at 3900 and 4200 s. The late watcher is a root
    service: its error used to end the whole bot; now the round is logged and tried again,
    and once the row is repaired (4300 s) the 4500 s round checks the intent."""
    fakes = Fakes.make()
    fakes.circle.script_next(never_paid_script())
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        await trio.sleep_until(T0)
        _, intent = await pay_usdc(bot)
        await trio.sleep_until(T0 + WINDOW + 50)
        ((expires_on,),) = query(path, "SELECT expires_on FROM circle_intents")
        execute(path, "UPDATE circle_intents SET expires_on = 'not a date'")
        await trio.sleep_until(T0 + WINDOW + 700)
        execute(path, f"UPDATE circle_intents SET expires_on = '{expires_on}'")
        await trio.sleep_until(T0 + WINDOW + 1000)
    assert since(fakes.circle_gets(intent), T0, after=WINDOW + 50) == [WINDOW + 3 * LATE]


async def test_a_paid_intent_below_the_price_stays_open_and_is_owed_back(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """USDC review 8: Circle's record of the intent says 1.00 USDC (not the order's 10.00)
    and shows it complete with 1.00 paid. The address message asks for the order's price;
    the payment is refused (an anomaly) and the intent no longer marked paid and dropped
    in silence: it stays open and watched, the 1.00 that arrived is recorded as owed back,
    and the traveller is told."""
    fakes = Fakes.make()
    fakes.circle.script_next(paid_script(pending_after=1, paid_after=3))
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        await trio.sleep_until(T0)
        order_id, intent = await pay_usdc(bot)
        fakes.circle.misstate_amount(intent, Decimal("1.00"))
        await trio.sleep(3 * 3600)
        texts = bot.api.sent_texts(CHAT)
    assert any("send exactly 10.00 USDC" in t for t in texts)
    assert not any("send exactly 1.00 USDC" in t for t in texts)
    assert status_of(path, order_id) == OrderStatus.AWAITING_PAYMENT
    assert query(path, "SELECT DISTINCT reason FROM anomalies") == [("amount_or_currency",)]
    assert query(path, "SELECT kind, amount FROM extra_payments") == [("partial", "1.00")]
    assert query(path, "SELECT status FROM circle_intents") == [("timed_out",)]
    assert any("Circle confirmed 1.00 USDC" in t for t in texts)
    # still watched after its window: the late watcher checks it every round
    assert WINDOW + 2 * LATE in since(fakes.circle_gets(intent), T0)


async def test_more_usdc_on_a_second_payment_raises_what_is_owed(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """USDC review 9: the order is paid by card at 45 s; 10.00 USDC then lands on its open
    intent (a second payment, owed back), and 5.00 more on the same address: Circle's
    notification shows 15.00 paid. The 5.00 used to be dropped; now what is owed back is
    raised to 15.00 and the traveller told the difference."""
    fakes = Fakes.make()
    fakes.circle.script_next(paid_script(pending_after=1, paid_after=40, by_time=True))
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        await trio.sleep_until(T0)
        order_id, intent = await pay_usdc(bot)
        await trio.sleep(45)
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
        await eventually(lambda: any("second payment" in t for t in bot.api.sent_texts(CHAT)))
        fakes.circle.intent_paid_more(intent, Decimal("15.00"))
        assert await post_notification(bot, intent) == (200, "ok")
        await trio.sleep(60)
        texts = bot.api.sent_texts(CHAT)
    assert query(path, "SELECT kind, amount FROM extra_payments") == [("second", "15.00")]
    assert any("We received 5.00 USDC more" in t and "15.00 USDC in all" in t for t in texts)


async def test_more_usdc_on_an_expired_partial_intent_raises_what_is_owed(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """USDC review 9: 5.00 of 10.00 USDC arrived and the intent expired (5.00 owed back);
    then Circle's notification shows 7.00 paid on it (a transfer confirmed late). The 2.00
    used to be dropped; now what is owed back is raised to 7.00 and the traveller told."""
    fakes = Fakes.make()
    fakes.circle.script_next(
        underpaid_then_expired_script(pending_after=1, underpaid_after=2, expired_after=4)
    )
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        await trio.sleep_until(T0)
        _, intent = await pay_usdc(bot)
        await eventually(lambda: any("send it back" in t for t in bot.api.sent_texts(CHAT)))
        fakes.circle.intent_paid_more(intent, Decimal("7.00"))
        assert await post_notification(bot, intent) == (200, "ok")
        await trio.sleep(60)
        texts = bot.api.sent_texts(CHAT)
    assert query(path, "SELECT kind, amount FROM extra_payments") == [("partial", "7.00")]
    assert any("We received 2.00 USDC more" in t and "7.00 USDC in all" in t for t in texts)


async def _lapse_with_five_owed_then_paid(bot: Bot, fakes: Fakes, *, card_first: bool) -> str:
    """5.00 of 10.00 arrives; Circle keeps the intent open past expiresOn + margin, so the
    bot lets it go with 5.00 owed back; then (after a card payment, with `card_first`)
    Circle's notification shows the same intent complete with 10.00 paid."""
    await trio.sleep_until(T0)
    order_id, intent = await pay_usdc(bot)
    fakes.circle.keep_open(intent)
    await trio.sleep_until(T0 + 8 * 3600 + MARGIN + 2 * LATE)
    path = bot.settings.store.path
    assert query(path, "SELECT kind, amount FROM extra_payments") == [("partial", "5.00")]
    if card_first:
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
    fakes.circle.set_script(intent, (Step("complete", "paid", Decimal(1), after_checks=0),))
    fakes.circle.advance(intent)
    assert await post_notification(bot, intent) == (200, "ok")
    await trio.sleep(60)
    return intent


def _underpaid_at_first() -> tuple[Step, ...]:
    return (
        Step("pending", after_checks=1),
        Step("pending", "underpaid", Decimal("0.5"), after_checks=2),
    )


@pytest.mark.slow
async def test_a_lapsed_partial_paid_later_is_no_longer_owed(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """USDC review 10: the 5.00 recorded owed back when the intent lapsed is part of the
    10.00 that later pays the order on the same intent: it is no longer owed (it used to
    stay recorded owed back beside the payment)."""
    fakes = Fakes.make()
    fakes.circle.script_next(_underpaid_at_first())
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        intent = await _lapse_with_five_owed_then_paid(bot, fakes, card_first=False)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
    assert query(path, "SELECT provider_ref, amount FROM payments") == [(intent, "10.00")]
    assert query(path, "SELECT COUNT(*) FROM extra_payments") == [(0,)]


@pytest.mark.slow
async def test_a_lapsed_partial_paid_later_after_a_card_is_owed_once(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """USDC review 10: as above, but the order was paid by card before the intent's 10.00
    was confirmed: 10.00 is owed back (a second payment), not 15.00."""
    fakes = Fakes.make()
    fakes.circle.script_next(_underpaid_at_first())
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        intent = await _lapse_with_five_owed_then_paid(bot, fakes, card_first=True)
    assert query(path, "SELECT kind, amount, provider_ref FROM extra_payments") == [
        ("second", "10.00", intent)
    ]
