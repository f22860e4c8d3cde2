"""Card refunds: a state order that never goes backwards, no idempotency key sent once Stripe
may have forgotten it, and Stripe's refund events and look-ups conclude a refund even when its
answer was lost."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from itinerabot.adapters.stripe.client import StripeApi, build_stripe_client
from itinerabot.errors import TransientServiceError
from itinerabot.operator.attention import needs_attention
from itinerabot.payments.card.refunds import refund_card
from itinerabot.store import money
from itinerabot.store.db import connect
from itinerabot.store.money import RefundStatus
from tests.harness import (
    CARD_REF,
    CHAT,
    START,
    Bot,
    Fakes,
    anomalies,
    begin_card_refund,
    deliver,
    eventually,
    make_settings,
    open_checkout,
    refunds_of,
    running_bot,
    store_order,
    two_paid_sessions,
    wall_clock,
)

REFUNDED = "We refunded"


@asynccontextmanager
async def stripe_client(bot: Bot) -> AsyncIterator[StripeApi]:
    """A Stripe client like the operator's `itinerabot orders refund` builds."""
    client, http = build_stripe_client(bot.settings.stripe, transport=bot.fakes.transports().stripe)
    try:
        yield StripeApi(client)
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]


async def paid_order(bot: Bot) -> tuple[int, str]:
    """Order CARD_REF paid by card (its webhook delivered); its id and PaymentIntent."""
    order_id, session_id = await open_checkout(bot)
    assert await deliver(bot, bot.stripe.complete(session_id)) == [200]
    await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
    return order_id, str(bot.stripe.sessions[session_id]["payment_intent"])


async def store_refund(bot: Bot, order_id: int, intent: str, amount: str) -> money.Refund:
    """A refund stored as the operator's command stores it, before Stripe is asked."""
    return await bot.rt.store.run(
        begin_card_refund, order_id, intent, Decimal(amount), wall_clock()
    )


async def ask_with_answer_lost(bot: Bot, refund: money.Refund) -> None:
    """Stripe carries the refund out, but every answer (and each client retry's) is lost."""
    bot.stripe.lose_next_answers(1000)
    async with stripe_client(bot) as client:
        with pytest.raises(TransientServiceError):
            await refund_card(bot.rt.store, client, refund, wall_clock)
    bot.stripe.clear_faults()


def refund_texts(bot: Bot) -> list[str]:
    return [t for t in bot.api.sent_texts(CHAT) if REFUNDED in t]


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]


# ---------------------------------------------------------------- the state order


async def test_a_refund_the_bank_returns_after_it_succeeded_is_recorded_failed(
    tmp_path: Path, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Review 1: refund.failed for a refund already succeeded (the card's bank sent it back)
    was ignored: the store kept `succeeded`. Now it is failed, an ERROR is logged, the
    operator's list shows the payment owed back again, the traveller hears nothing new and
    the bot does not refund again on its own."""
    async with running_bot(tmp_path) as bot:
        order_id, first, second = await two_paid_sessions(bot)
        assert await deliver(bot, bot.stripe.complete(first)) == [200]
        assert await deliver(bot, bot.stripe.complete(second)) == [200]
        await eventually(lambda: len(refund_texts(bot)) == 1)
        (stripe_id,) = bot.stripe.refunds
        texts_before = bot.api.sent_texts(CHAT)
        returned = bot.stripe.return_refund(stripe_id)
        assert await deliver(bot, returned) == [200]
        # Stripe's refund.updated of the same change, under its own event id
        assert await deliver(bot, bot.stripe.event("refund.updated", returned["data"]["object"]))
        await trio.sleep(2 * 3600)  # two rounds of the refund service
        texts_after = bot.api.sent_texts(CHAT)
        (refund,) = refunds_of(bot, order_id)
        conn = connect(bot.settings.store.path)
        try:
            owed = money.unrefunded_extra_payments(conn)
            listed = needs_attention(conn, wall_clock())
        finally:
            conn.close()
    assert (refund.status, refund.provider_refund_id) == (RefundStatus.FAILED, stripe_id)
    assert refund.error == "lost_or_stolen_card"
    assert [e.order_id for e in owed] == [order_id]
    assert [item.reference for item in listed if item.kind == "owed_back"] == [CARD_REF]
    assert texts_after == texts_before
    assert len(bot.stripe.refunds) == 1
    returned_errors = [e for e in errors(caplog) if "returned after it succeeded" in e]
    assert len(returned_errors) == 1


async def test_a_late_pending_event_does_not_undo_a_failure(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Review 1: refund.failed, then a refund.updated(pending) sent earlier but delivered
    later, turned the failed refund back into pending. Failed is final now."""
    async with running_bot(tmp_path) as bot:
        bot.stripe.refund_status = "pending"
        order_id, first, second = await two_paid_sessions(bot)
        assert await deliver(bot, bot.stripe.complete(first)) == [200]
        assert await deliver(bot, bot.stripe.complete(second)) == [200]
        await eventually(lambda: [r.status for r in refunds_of(bot, order_id)] == ["pending"])
        (stripe_id,) = bot.stripe.refunds
        stale = bot.stripe.event("refund.updated", bot.stripe.refunds[stripe_id])
        assert await deliver(bot, bot.stripe.settle_refund(stripe_id, "failed")) == [200]
        assert await deliver(bot, stale) == [200]
        await trio.sleep(60)
        (refund,) = refunds_of(bot, order_id)
    assert stale["data"]["object"]["status"] == "pending"
    assert refund.status == RefundStatus.FAILED
    assert refund.error == "expired_or_canceled_card"
    assert refund_texts(bot) == []


def test_the_state_order_of_a_stored_refund(tmp_path: Path) -> None:
    """Review 1: forward only. A refund never goes back to requested or pending; failed is
    final; succeeded becomes failed only when the provider reports it returned."""
    order_id = store_order(tmp_path / "bot.sqlite3")
    conn = connect(tmp_path / "bot.sqlite3")
    now = START

    def after(*steps: tuple[RefundStatus, bool]) -> RefundStatus:
        refund = begin_card_refund(conn, order_id, "pi_3x", Decimal("1.00"), now)
        for status, returned in steps:
            money.set_refund_result(conn, refund.id, status, now, returned=returned)
        found = money.get_refund(conn, refund.id)
        assert found is not None
        return found.status

    requested, pending = RefundStatus.REQUESTED, RefundStatus.PENDING
    succeeded, failed = RefundStatus.SUCCEEDED, RefundStatus.FAILED
    assert after((pending, False), (requested, False)) == pending
    assert after((failed, False), (requested, False)) == failed
    assert after((failed, True), (pending, True)) == failed
    assert after((failed, True), (succeeded, True)) == failed
    assert after((succeeded, False), (pending, True)) == succeeded
    assert after((succeeded, False), (failed, False)) == succeeded
    assert after((succeeded, False), (failed, True)) == failed
    assert after((requested, False), (pending, False), (succeeded, False)) == succeeded
    conn.close()


# ---------------------------------------------------------------- old keys


async def test_a_refund_whose_answer_was_lost_a_day_ago_is_not_made_twice(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Review 2: a partial refund was carried out by Stripe but its answer lost; the bot
    stopped and started again 25 hours later. Stripe had forgotten the idempotency key, so
    sending it again refunded a second time (8.00 of a 10.00 payment for a 4.00 refund).
    Now an old refund is looked up by its metadata: one refund at Stripe, recorded
    succeeded, the traveller told once."""
    fakes = Fakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        order_id, intent = await paid_order(bot)
        refund = await store_refund(bot, order_id, intent, "4.00")
        await ask_with_answer_lost(bot, refund)
        assert [r["amount"] for r in fakes.stripe.refunds.values()] == [400]
    await trio.sleep(25 * 3600)
    before_restart = len(fakes.stripe.requests)
    async with running_bot(tmp_path, fakes) as bot:
        await eventually(
            lambda: [r.status for r in refunds_of(bot, order_id)] == [RefundStatus.SUCCEEDED]
        )
        await eventually(lambda: len(refund_texts(bot)) == 1)
        await trio.sleep(3600)
        (recorded,) = refunds_of(bot, order_id)
    (at_stripe,) = fakes.stripe.refunds.values()
    assert (at_stripe["amount"], at_stripe["payment_intent"]) == (400, intent)
    assert fakes.stripe.charges[intent].refunded == 400
    assert recorded.provider_refund_id == at_stripe["id"]
    assert refund_texts(bot) == [
        f"We refunded 4.00 USD to your card for order {CARD_REF}. Depending on your bank it shows "
        "on your statement within 5 to 10 business days."
    ]
    after_restart = fakes.stripe.requests[before_restart:]
    assert [(r.method, r.path, r.form) for r in after_restart] == [
        ("GET", "/v1/refunds", {"payment_intent": intent, "limit": "100"})
    ]


async def test_an_old_refund_stripe_never_made_is_asked_again_with_a_new_key(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Review 2: Stripe never received a stored refund (down), and 25 hours pass. The old key
    is not sent again: Stripe's list of the PaymentIntent's refunds has none for it, so it
    is marked failed (superseded) and a new stored refund with a new key is asked."""
    fakes = Fakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        order_id, intent = await paid_order(bot)
        old = await store_refund(bot, order_id, intent, "4.00")
        fakes.stripe.fail_next(status=500, count=1000)
        async with stripe_client(bot) as client:
            with pytest.raises(TransientServiceError):
                await refund_card(bot.rt.store, client, old, wall_clock)
        fakes.stripe.clear_faults()
    assert fakes.stripe.refunds == {}
    await trio.sleep(25 * 3600)
    async with running_bot(tmp_path, fakes) as bot:
        await eventually(lambda: len(refunds_of(bot, order_id)) == 2 and bool(refund_texts(bot)))
        superseded, new = refunds_of(bot, order_id)
    (at_stripe,) = fakes.stripe.refunds.values()
    assert superseded.status == RefundStatus.FAILED
    assert superseded.error is not None
    assert superseded.error.startswith(f"superseded by refund #{new.id}")
    assert (new.status, new.amount, new.provider_ref) == (
        RefundStatus.SUCCEEDED,
        Decimal("4.00"),
        intent,
    )
    assert new.idempotency_key != old.idempotency_key
    assert at_stripe["metadata"]["itinerabot_refund_id"] == str(new.id)
    posts = [r for r in fakes.stripe.requests if r.method == "POST" and r.path == "/v1/refunds"]
    assert posts[-1].headers["idempotency-key"] == new.idempotency_key
    assert sum(r.headers["idempotency-key"] == old.idempotency_key for r in posts) == 3
    lookups = [r for r in fakes.stripe.requests if r.method == "GET" and r.path == "/v1/refunds"]
    assert [r.form for r in lookups] == [{"payment_intent": intent, "limit": "100"}]


# ---------------------------------------------------------------- lost answers


async def test_a_refund_event_concludes_a_refund_whose_answer_was_lost(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Review 3: the refund's answer (with its Stripe id) was lost, so its refund.updated was
    dropped, and Stripe does not send an event twice: the refund stayed requested. Now the
    event is matched by the refund id in its metadata, the PaymentIntent and the amount; the
    Stripe id is stored and the traveller told. Another refund naming ours is ignored."""
    settings = make_settings(tmp_path, stripe={"refunds": "operator"})
    async with running_bot(tmp_path, settings=settings) as bot:
        order_id, intent = await paid_order(bot)
        bot.stripe.refund_status = "pending"
        refund = await store_refund(bot, order_id, intent, "10.00")
        await ask_with_answer_lost(bot, refund)
        (stripe_id,) = bot.stripe.refunds
        impostor = {**bot.stripe.refunds[stripe_id], "id": "re_3Other", "status": "succeeded"}
        impostor["payment_intent"] = "pi_3SomeoneElses"
        assert await deliver(bot, bot.stripe.event("refund.updated", impostor)) == [200]
        await trio.sleep(5)
        untouched = refunds_of(bot, order_id)
        assert await deliver(bot, bot.stripe.settle_refund(stripe_id)) == [200]
        await eventually(lambda: len(refund_texts(bot)) == 1)
        (recorded,) = refunds_of(bot, order_id)
    assert [(r.status, r.provider_refund_id) for r in untouched] == [(RefundStatus.REQUESTED, None)]
    assert (recorded.status, recorded.provider_refund_id) == (RefundStatus.SUCCEEDED, stripe_id)


async def test_a_pending_refund_whose_event_was_lost_is_looked_up_hourly(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Review 3: with refunds: operator nothing ran in the background, so a pending refund
    whose refund.updated never arrived stayed pending for ever. Now the refund service runs
    whenever Stripe is on and looks it up every hour (GET /v1/refunds/{id}): concluded at
    the first round after Stripe settled it, and the traveller told."""
    settings = make_settings(tmp_path, stripe={"refunds": "operator"})
    async with running_bot(tmp_path, settings=settings) as bot:
        order_id, intent = await paid_order(bot)
        bot.stripe.refund_status = "pending"
        refund = await store_refund(bot, order_id, intent, "10.00")
        async with stripe_client(bot) as client:
            asked = await refund_card(bot.rt.store, client, refund, wall_clock)
        assert asked.status == RefundStatus.PENDING
        bot.stripe.settle_refund(str(asked.provider_refund_id))  # its event is lost
        await trio.sleep_until(3599)
        before_round = refunds_of(bot, order_id)[0].status
        await trio.sleep_until(3601)
        after_round = refunds_of(bot, order_id)[0].status
        await eventually(lambda: len(refund_texts(bot)) == 1)
    assert (before_round, after_round) == (RefundStatus.PENDING, RefundStatus.SUCCEEDED)
    gets = [r for r in bot.stripe.requests if r.path == f"/v1/refunds/{asked.provider_refund_id}"]
    assert len(gets) == 1


# ---------------------------------------------------------------- odd events and long lists


@pytest.mark.parametrize("named", ["²", "9" * 30])
async def test_a_refund_event_with_a_strange_refund_id_is_ignored(
    tmp_path: Path, autojump_clock: trio.abc.Clock, named: str
) -> None:
    """Review (minor): `"²".isdigit()` is true and 30 digits overflow SQLite's INTEGER: a
    signed refund event naming such a refund id was answered 500 with a traceback. Now it
    is answered 200 and changes nothing."""
    async with running_bot(tmp_path) as bot:
        order_id, intent = await paid_order(bot)
        event = bot.stripe.event(
            "refund.updated",
            {
                "id": "re_3Odd",
                "object": "refund",
                "amount": 1000,
                "payment_intent": intent,
                "status": "succeeded",
                "metadata": {"itinerabot_refund_id": named},
            },
        )
        answers = await deliver(bot, event)
        refunds = refunds_of(bot, order_id)
    assert answers == [200]
    assert refunds == []


@pytest.mark.parametrize("answer", ["lost", "late"])
async def test_an_answer_after_a_failure_event_does_not_undo_it(
    tmp_path: Path, autojump_clock: trio.abc.Clock, answer: str
) -> None:
    """Review (minor): Stripe takes the refund but its answer is slow; meanwhile the refund
    fails and its event is recorded. The answer then arrives late (pending) or is lost (the
    client's transient error): neither may write pending or requested over the failure."""
    settings = make_settings(tmp_path, stripe={"refunds": "operator", "max_network_retries": 0})
    async with running_bot(tmp_path, settings=settings) as bot:
        order_id, intent = await paid_order(bot)
        bot.stripe.refund_status = "pending"
        refund = await store_refund(bot, order_id, intent, "10.00")
        bot.stripe.delay_next_answers(10)
        if answer == "lost":
            bot.stripe.lose_next_answers(1)
        outcome: list[Any] = []

        async def ask() -> None:
            async with stripe_client(bot) as client:
                try:
                    outcome.append(await refund_card(bot.rt.store, client, refund, wall_clock))
                except TransientServiceError as exc:
                    outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
            await eventually(lambda: bool(bot.stripe.refunds))
            (stripe_id,) = bot.stripe.refunds
            assert await deliver(bot, bot.stripe.settle_refund(stripe_id, "failed")) == [200]
        (recorded,) = refunds_of(bot, order_id)
    if answer == "lost":
        assert isinstance(outcome[0], TransientServiceError)
    else:
        assert outcome[0].status == RefundStatus.FAILED
    assert (recorded.status, recorded.provider_refund_id) == (RefundStatus.FAILED, stripe_id)
    assert recorded.error == "expired_or_canceled_card"


async def test_a_second_card_payment_without_a_payment_intent_is_one_anomaly(
    tmp_path: Path, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Review (minor): a second card payment with no PaymentIntent cannot be refunded by the
    bot; it was logged again at every start-up and recorded nowhere. Now it is one anomaly
    (listed for the operator) and one ERROR, however often the bot starts."""
    fakes = Fakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        order_id, first, second = await two_paid_sessions(bot)
        assert await deliver(bot, bot.stripe.complete(first)) == [200]
        odd = bot.stripe.restate(bot.stripe.complete(second), payment_intent=None)
        assert await deliver(bot, odd) == [200]
        await eventually(lambda: bool(anomalies(bot)))
    for _ in range(2):
        async with running_bot(tmp_path, fakes) as bot:
            await trio.sleep(3700)
    found = anomalies(bot)
    assert [(a.reason, a.provider_ref, a.order_id) for a in found] == [
        ("no_payment_intent", second, order_id)
    ]
    assert "Stripe dashboard" in found[0].detail["why"]
    assert sum("has no PaymentIntent" in e for e in errors(caplog)) == 1
    assert fakes.stripe.refunds == {}
    assert refunds_of(bot, order_id) == []


async def test_an_old_refund_is_found_past_the_first_page_of_stripes_list(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Review 2: the look-up of an old refund pages through the PaymentIntent's refunds
    (Stripe lists 100 at most, newest first): the bot's refund, made before 120 others on
    the same payment, is found on the second page and nothing is sent again."""
    settings = make_settings(tmp_path, stripe={"refunds": "operator"})
    async with running_bot(tmp_path, settings=settings) as bot:
        order_id, intent = await paid_order(bot)
        refund = await store_refund(bot, order_id, intent, "0.01")
        await ask_with_answer_lost(bot, refund)
        async with stripe_client(bot) as client:
            for i in range(120):  # the Dashboard's, say: no metadata of ours
                await client.create_refund(
                    {"payment_intent": intent, "amount": 1}, idempotency_key=f"dashboard-{i}"
                )
            asked = len(bot.stripe.requests)
            a_day_later = await refund_card(
                bot.rt.store, client, refund, lambda: wall_clock() + timedelta(hours=24)
            )
        lookups = bot.stripe.requests[asked:]
    ours = [r for r in bot.stripe.refunds.values() if r["metadata"]]
    assert len(bot.stripe.refunds) == 121
    assert (a_day_later.status, a_day_later.provider_refund_id) == (
        RefundStatus.SUCCEEDED,
        ours[0]["id"],
    )
    assert [(r.method, r.path, r.form.get("starting_after") is not None) for r in lookups] == [
        ("GET", "/v1/refunds", False),
        ("GET", "/v1/refunds", True),
    ]


async def test_the_fake_stripe_keeps_an_idempotency_key_24_hours(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The sandbox as Stripe documents it: the same key within 24 h gets the first answer
    back; after 24 h the key is a new request (a second refund)."""
    fakes = Fakes.make()
    client, http = build_stripe_client(
        make_settings(tmp_path).stripe, transport=fakes.transports().stripe
    )
    options: Any = {"idempotency_key": "itinerabot-refund-sandbox"}
    try:
        session = await client.v1.checkout.sessions.create_async(
            {
                "mode": "payment",
                "success_url": "https://example.com/ok",
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "usd",
                            "unit_amount": 1000,
                            "product_data": {"name": "itinerary"},
                        },
                    }
                ],
            }
        )
        fakes.stripe.complete(session.id)
        intent = str(fakes.stripe.sessions[session.id]["payment_intent"])
        params: Any = {"payment_intent": intent, "amount": 100}
        first = await client.v1.refunds.create_async(params, options)
        await trio.sleep(23 * 3600)
        again = await client.v1.refunds.create_async(params, options)
        await trio.sleep(3600)
        later = await client.v1.refunds.create_async(params, options)
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
    assert again.id == first.id
    assert later.id != first.id
    assert fakes.stripe.charges[intent].refunded == 200
