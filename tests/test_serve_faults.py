"""Faults at scale, in process on the mock clock: a few hundred orders paid at once while the
webhooks are repeated or lost, Circle misbehaves and Telegram rate-limits documents.

Every order paid in the bot's eyes gets exactly one PDF; none gets two; an order whose payment
the bot never hears of (Stripe webhook lost, traveller never back) stays unpaid and gets none.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing

from itinerabot.models import OrderStatus
from itinerabot.pdf import sample_order
from itinerabot.store import circle_intents as intents
from itinerabot.store import orders as order_rows
from itinerabot.store.db import connect
from sandbox.circle import Step, paid_script
from sandbox.sns_signer import encode
from sandbox.telegram import SentDocument
from tests.harness import (
    START,
    STRIPE_WHSEC,
    Bot,
    Fakes,
    button,
    eventually,
    make_settings,
    order_counts,
    running_bot,
    text_of,
)

pytestmark = pytest.mark.slow

ORDERS = 300  # half by card, half in USDC
SEED = 20261126
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PAID_AT_NEXT_CHECK = Step("complete", "paid", Decimal(1), after_checks=0)


def reference(n: int) -> str:
    digits = ""
    for _ in range(6):
        n, d = divmod(n, len(_ALPHABET))
        digits = _ALPHABET[d] + digits
    return f"IB-{digits}"


def insert_orders(path: Path, count: int) -> dict[str, tuple[int, int]]:
    """`count` orders awaiting payment, one chat each: reference → (order id, chat id)."""
    order, _ = sample_order()
    conn = connect(path)
    made = {}
    with conn:
        conn.execute("BEGIN")
        for n in range(count):
            chat = 10_000 + n
            order_id = order_rows.insert_order(
                conn,
                reference=reference(n),
                chat_id=chat,
                itinerary=order.itinerary,
                price=Decimal("10.00"),
                currency="USD",
                created_at=START,
            )
            made[reference(n)] = (order_id, chat)
        conn.execute("COMMIT")
    conn.close()
    return made


async def open_card_payment(bot: Bot, chat: int, ref: str) -> str:
    """The traveller taps "pay by card"; returns the Checkout Session id."""
    card = bot.rt.payments.card
    assert card is not None
    (message,) = await card.pay_by_card(chat, ref)
    url = button(message).url
    (session,) = [str(s["id"]) for s in bot.stripe.sessions.values() if s["url"] == url]
    return session


async def open_usdc_payment(bot: Bot, chat: int, ref: str) -> int:
    """The traveller taps "pay with USDC" until the bot has an intent; returns the taps."""
    usdc = bot.rt.payments.usdc
    assert usdc is not None
    taps = 1
    while "not available" in text_of((await usdc.pay_with_usdc(chat, ref))[0]):
        taps += 1  # Circle failed the create: the traveller taps again a minute later
        await trio.sleep(60)
    return taps


async def in_parallel(jobs: Sequence[Callable[[], Awaitable[object]]], width: int = 25) -> None:
    """Run every job, at most `width` at a time."""
    limit = trio.CapacityLimiter(width)

    async def one(job: Callable[[], Awaitable[object]]) -> None:
        async with limit:
            await job()

    async with trio.open_nursery() as nursery:
        for job in jobs:
            nursery.start_soon(one, job)


async def test_hundreds_of_orders_through_lost_and_repeated_webhooks_and_faults(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    rng = random.Random(SEED)
    fakes = Fakes.make()
    # pending with an address at the first check; paid when the test says so (below)
    fakes.circle.default_script = paid_script(pending_after=1, paid_after=1_000_000)
    fakes.circle.fault_share(0.2)  # 429 + Retry-After, 500, too slow, non-JSON: a fifth of calls
    fakes.api.fail_share(["sendDocument"], 0.2, status=429, retry_after=2)
    settings = make_settings(
        tmp_path,
        circle={"request_timeout": 5, "requests_per_second": 100},
        sender={"global_rate": 1000},
    )
    orders = insert_orders(settings.store.path, ORDERS)
    refs = list(orders)
    card_refs, usdc_refs = refs[: ORDERS // 2], refs[ORDERS // 2 :]
    counts: collections.Counter[str] = collections.Counter()

    with trio.fail_after(3 * 3600):  # trio time
        async with running_bot(tmp_path, fakes, settings=settings) as bot:
            sessions: dict[str, str] = {}

            async def card_tap(ref: str) -> None:
                sessions[ref] = await open_card_payment(bot, orders[ref][1], ref)

            async def usdc_tap(ref: str) -> None:
                counts["usdc taps"] += await open_usdc_payment(bot, orders[ref][1], ref)

            await in_parallel(
                [partial(card_tap, r) for r in card_refs]
                + [partial(usdc_tap, r) for r in usdc_refs]
            )

            # Card: every session is paid at Stripe; its webhook comes 0-3 times, shuffled.
            # With none, half the travellers come back through the success link.
            deliveries: list[Callable[[], Awaitable[object]]] = []
            returns: list[Callable[[], Awaitable[object]]] = []
            expect_paid = set(usdc_refs)
            for ref in card_refs:
                event = bot.stripe.complete(sessions[ref])
                times = rng.choice([0, 1, 2, 3])
                counts[f"stripe webhook x{times}"] += 1
                deliveries += [partial(deliver_stripe, bot, event)] * times
                if times:
                    expect_paid.add(ref)
                elif rng.random() < 0.5:
                    returns.append(partial(deep_link_return, bot, orders[ref][1], ref))
                    expect_paid.add(ref)
                    counts["card via deep link"] += 1
                else:
                    counts["card never heard of"] += 1
            rng.shuffle(deliveries)
            await in_parallel(deliveries + returns)

            # USDC: every intent is paid now. Circle notifies half of them, 1-3 times (SNS
            # keeps the MessageId); the others only the pollers find, at their next good check.
            notify: list[Callable[[], Awaitable[object]]] = []
            for ref in usdc_refs:
                row = await bot.rt.store.run(intents.latest, orders[ref][0])
                assert row is not None and row.intent_id is not None
                if rng.random() < 0.5:
                    counts["circle webhook sent"] += 1
                    notify.append(
                        partial(pay_and_notify, bot, row.intent_id, rng.choice([1, 2, 3]))
                    )
                else:
                    bot.circle.set_script(row.intent_id, (PAID_AT_NEXT_CHECK,))
            await in_parallel(notify)

            await eventually(
                lambda: all(documents(bot, orders[ref][1]) for ref in expect_paid),
                timeout=3600,
                max_step=10,
            )
            await trio.sleep(600)  # anything sent twice would have arrived by now

            statuses = await bot.rt.store.run(order_counts)
            sources = await bot.rt.store.run(
                lambda conn: dict(
                    conn.execute("SELECT source, COUNT(*) FROM payments GROUP BY source").fetchall()
                )
            )

    per_order = {ref: len(documents(bot, orders[ref][1])) for ref in refs}
    counts["orders"] = ORDERS
    counts["paid (bot)"] = len(expect_paid)
    counts["PDFs sent"] = len(fakes.api.sent_documents())
    counts["sendDocument calls"] = len(fakes.api.calls_to("sendDocument"))
    for fault, n in fakes.api.faults_injected.items():
        counts[f"telegram {fault}"] = n
    for fault, n in fakes.circle.faults_injected.items():
        counts[f"circle {fault}"] = n
    print("\nfault test:", dict(sorted(counts.items())))
    print("paid by:", sources, "| orders by status:", statuses)

    assert {ref for ref, n in per_order.items() if n} == expect_paid
    assert max(per_order.values()) == 1  # none twice
    assert counts["PDFs sent"] == len(expect_paid)
    assert statuses == {
        OrderStatus.DELIVERED.value: len(expect_paid),
        OrderStatus.AWAITING_PAYMENT.value: ORDERS - len(expect_paid),
    }
    assert counts["card never heard of"] > 0 and counts["card via deep link"] > 0
    assert counts["stripe webhook x3"] > 0 and counts["circle webhook sent"] > 0
    assert fakes.api.faults_injected["sendDocument:429"] > 0
    assert set(fakes.circle.faults_injected) == {"rate_limit", "server_error", "slow", "garbage"}
    assert sources.get("circle-poller", 0) > 0 and sources.get("circle-webhook", 0) > 0
    assert fakes.api.violations == []


def documents(bot: Bot, chat: int) -> list[SentDocument]:
    return bot.api.sent_documents(chat)


async def deliver_stripe(bot: Bot, event: dict[str, object]) -> None:
    async with bot.web() as web:
        (answer,) = await bot.stripe.deliver_event(
            event, "http://bot.test/webhooks/stripe", STRIPE_WHSEC, client=web
        )
    assert answer.status_code == 200


async def deep_link_return(bot: Bot, chat: int, ref: str) -> None:
    card = bot.rt.payments.card
    assert card is not None
    # Stripe says the session is paid, so the bot fulfils at once and has nothing else to say
    assert await card.deep_link_return(chat, f"ok_{ref}") == []


async def pay_and_notify(bot: Bot, intent_id: str, times: int) -> None:
    """The intent is paid at Circle, and Circle's notification of it comes `times` times."""
    while bot.circle.latest_status(intent_id) != "complete":
        bot.circle.advance(intent_id)
    message = bot.sns.notification(bot.circle.notification_message(intent_id))
    async with bot.web() as web:
        for _ in range(times):
            answer = await web.post("/webhooks/circle", content=encode(message))
            assert answer.status_code == 200
