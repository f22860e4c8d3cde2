"""USDC refunds after Circle took them: money owed back is sent back, and its outcome is
followed until Circle concludes it.

Circle answers a crypto refund `pending`; the running bot looks each one up at start-up and
every hour (`refund_checks.CHECK_INTERVAL`) until Circle shows it `paid` or `failed`. The
refund is asked the way the operator's `orders refund` asks it: another store connection and
another Circle client, while `serve` runs. Times are trio times; the bot starts at 0.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import trio

from itinerabot.adapters.circle.client import CircleClient
from itinerabot.models import PaymentMethod
from itinerabot.payments.usdc.refund_checks import CHECK_INTERVAL
from itinerabot.payments.usdc.refunds import circle_idempotency_key, refund_usdc
from itinerabot.store import money, open_store
from itinerabot.store.money import Refund, RefundStatus
from sandbox.circle import RefundScript, underpaid_then_expired_script
from sandbox.serve import InProcessTransport
from tests.harness import (
    CHAT,
    START,
    USDC_REF,
    Bot,
    Fakes,
    eventually,
    pay_usdc,
    query,
    running_bot,
    wall_clock,
)

T0 = 10.0
DESTINATION = "0x8381470ED67C3802402dbbFa0058E8871F017A6F"
SENT = f"We sent 5.00 USDC back to the address you gave us for order {USDC_REF}."


async def owed_back(bot: Bot) -> tuple[int, str]:
    """At T0 an order's intent gets 5.00 of 10.00 USDC, then expires: 5.00 is owed back
    (the traveller is told by T0 + 90 s). The order id and the intent id."""
    bot.circle.script_next(
        underpaid_then_expired_script(pending_after=1, underpaid_after=2, expired_after=4)
    )
    await trio.sleep_until(T0)
    order_id, intent = await pay_usdc(bot)
    await eventually(lambda: any("send it back" in t for t in bot.api.sent_texts(CHAT)))
    return order_id, intent


async def stored_refund(bot: Bot, order_id: int, *, key: str | None = None) -> Refund:
    """Store the refund of the order's extra payment, as the operator's command does first;
    with `key`, the idempotency key is replaced by it (a refund stored by an older version)."""
    async with open_store(bot.settings.store.path, migrate_schema=False) as store:
        (extra,) = await store.run(money.extra_payments, order_id)
        now = wall_clock()
        refund = await store.run(
            lambda conn: money.begin_refund(
                conn,
                order_id=order_id,
                method=PaymentMethod.USDC,
                provider_ref=extra.provider_ref,
                amount=extra.amount,
                currency=extra.currency,
                now=now,
                extra_payment_id=extra.id,
            )
        )
        if key is not None:
            await store.run(
                lambda conn: conn.execute(
                    "UPDATE refunds SET idempotency_key = ? WHERE id = ?", (key, refund.id)
                )
            )
            found = await store.run(money.get_refund, refund.id)
            assert found is not None
            refund = found
    return refund


async def ask_circle(bot: Bot, refund: Refund) -> Refund:
    """`refund_usdc` from another process's store and Circle client (the operator's)."""
    transport = InProcessTransport(bot.fakes.circle_app)
    async with (
        open_store(bot.settings.store.path, migrate_schema=False) as store,
        CircleClient(bot.settings.circle, transport=transport) as client,
    ):
        return await refund_usdc(
            store, client, refund, address=DESTINATION, chain="ETH", clock=wall_clock
        )


def look_ups(fakes: Fakes, circle_refund: str) -> list[float]:
    """Trio times of the bot's `GET /v1/payments/{id}` of one refund."""
    path = f"/v1/payments/{circle_refund}"
    return [t for t, method, p in fakes.circle_log if method == "GET" and p == path]


def refund_row(bot: Bot) -> tuple[str, str | None, str]:
    (row,) = query(bot.settings.store.path, "SELECT status, error, updated_at FROM refunds")
    return row[0], row[1], row[2]


def at(seconds: float) -> str:
    """The wall-clock record of trio time `seconds`."""
    return (START + timedelta(seconds=seconds)).isoformat()


async def test_a_refund_circle_sends_is_recorded_at_the_next_hourly_look_up_and_told_once(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 4 (USDC owed back): the operator's refund is asked at 200 s and Circle answers
    `pending`; Circle sends it at 1200 s. The hourly look-up at 3600 s finds it `paid`: the
    refund is recorded succeeded at 3600 s, and the traveller is told at once, once, with the
    transaction. It is never looked up again (the start-up round at 0 had nothing to do)."""
    fakes = Fakes.make()
    fakes.circle.script_next_refunds(RefundScript("paid", after_seconds=1000))
    async with running_bot(tmp_path, fakes) as bot:
        order_id, _ = await owed_back(bot)
        await trio.sleep_until(200)
        asked = await ask_circle(bot, await stored_refund(bot, order_id))
        assert asked.status == RefundStatus.PENDING and asked.provider_refund_id is not None
        await trio.sleep_until(CHECK_INTERVAL - 0.001)
        before = refund_row(bot)
        await trio.sleep_until(CHECK_INTERVAL + 1)
        told_by = [t for t in bot.api.sent_texts(CHAT) if t.startswith("We sent")]
        await trio.sleep_until(3 * CHECK_INTERVAL + 1)
        texts = bot.api.sent_texts(CHAT)
    assert look_ups(fakes, asked.provider_refund_id) == [CHECK_INTERVAL]
    assert before[0] == "pending"
    assert refund_row(bot) == ("succeeded", None, at(CHECK_INTERVAL))
    circle_refund = fakes.circle.refund(asked.provider_refund_id)
    assert circle_refund["status"] == "paid"
    assert told_by == [f"{SENT} Transaction: {circle_refund['transactionHash']}"]
    assert [t for t in texts if t.startswith("We sent")] == told_by


async def test_a_refund_circle_failed_while_the_bot_was_down_is_recorded_failed_at_start_up(
    tmp_path: Path, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 4 (USDC owed back): Circle fails the refund (`payment_failed`) while the bot
    is down. The look-up at start-up records it failed with Circle's reason and logs an
    ERROR for the operator; the traveller is not told it was sent, and the money is still
    owed back (the refund no longer stands for it)."""
    fakes = Fakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        order_id, _ = await owed_back(bot)
        await trio.sleep_until(200)
        asked = await ask_circle(bot, await stored_refund(bot, order_id))
    assert asked.provider_refund_id is not None
    await trio.sleep_until(1000)
    fakes.circle.settle_refund(asked.provider_refund_id, "failed", error_code="payment_failed")
    await trio.sleep_until(5000)
    caplog.set_level(logging.ERROR)
    async with running_bot(tmp_path, fakes) as bot:
        restarted = trio.current_time()
        await eventually(lambda: refund_row(bot)[0] == "failed")
        await trio.sleep(CHECK_INTERVAL * 2)
        texts = bot.api.sent_texts(CHAT)
        owed = await bot.rt.store.run(money.unrefunded_extra_payments)
    assert look_ups(fakes, asked.provider_refund_id) == [restarted]
    assert refund_row(bot) == ("failed", "payment_failed", at(restarted))
    errors = [r for r in caplog.records if "usdc refund failed at circle" in r.getMessage()]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR
    assert not any(t.startswith("We sent") for t in texts)
    assert [e.order_id for e in owed] == [order_id]


async def test_a_look_up_that_fails_is_tried_again_at_the_next_round(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 4 (USDC owed back): the look-up at 3600 s gets a 500 from Circle, so the
    refund stays pending; the next round, at 7200 s, records it succeeded and tells the
    traveller once."""
    fakes = Fakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        order_id, _ = await owed_back(bot)
        await trio.sleep_until(200)
        asked = await ask_circle(bot, await stored_refund(bot, order_id))
        assert asked.provider_refund_id is not None
        fakes.circle.settle_refund(asked.provider_refund_id)
        await trio.sleep_until(CHECK_INTERVAL - 1)
        fakes.circle.fail_next("server_error")
        await trio.sleep_until(CHECK_INTERVAL + 1)
        after_500 = refund_row(bot)
        await trio.sleep_until(3 * CHECK_INTERVAL + 1)
        texts = bot.api.sent_texts(CHAT)
    assert fakes.circle.faults_injected["server_error"] == 1
    assert look_ups(fakes, asked.provider_refund_id) == [CHECK_INTERVAL, 2 * CHECK_INTERVAL]
    assert after_500[0] == "pending"
    assert refund_row(bot) == ("succeeded", None, at(2 * CHECK_INTERVAL))
    assert len([t for t in texts if t.startswith("We sent")]) == 1


# ---------------------------------------------------------------- idempotency keys


async def test_a_refund_is_stored_with_a_uuid_key_and_circle_is_asked_with_it_unchanged(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 4 (USDC owed back): Circle takes only a UUID as idempotencyKey. A stored
    refund's key is a bare UUID4, and Circle is asked with exactly that key."""
    fakes = Fakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        order_id, _ = await owed_back(bot)
        refund = await stored_refund(bot, order_id)
        asked = await ask_circle(bot, refund)
    key = refund.idempotency_key
    assert str(uuid.UUID(key)) == key and uuid.UUID(key).version == 4
    assert fakes.circle.refund_keys == {key: asked.provider_refund_id}


async def test_a_refund_stored_with_an_old_format_key_is_asked_again_with_the_same_uuid(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """A refund stored before keys were bare UUIDs ("itinerabot-refund-<uuid>") is sent
    as the UUID it ends with, each time: asking again after a lost answer finds the refund
    Circle made, not a second one (a guard for rows stored by the older version)."""
    fakes = Fakes.make()
    old_uuid = "3e1f6b2a-9c4d-4e8f-a1b2-c3d4e5f60718"
    async with running_bot(tmp_path, fakes) as bot:
        order_id, _ = await owed_back(bot)
        refund = await stored_refund(bot, order_id, key=f"itinerabot-refund-{old_uuid}")
        first = await ask_circle(bot, refund)
        again = await ask_circle(bot, refund)
    assert fakes.circle.refund_keys == {old_uuid: first.provider_refund_id}
    assert again.provider_refund_id == first.provider_refund_id
    assert len(fakes.circle.refunds) == 1


def test_the_key_sent_to_circle_is_the_stored_uuid_or_the_same_uuid_each_time() -> None:
    """A stored UUID is sent as it is; an older key as the UUID it ends with; any other key
    as a UUID derived from it, the same every time."""
    key = "3e1f6b2a-9c4d-4e8f-a1b2-c3d4e5f60718"
    assert circle_idempotency_key(key) == key
    assert circle_idempotency_key(f"itinerabot-refund-{key}") == key
    derived = circle_idempotency_key("refund-7")
    assert derived == circle_idempotency_key("refund-7") == str(uuid.UUID(derived))
    assert derived != circle_idempotency_key("refund-8")
