"""Card money: only the bot's own session, paid in full in the key's mode, pays its order;
anything else is an anomaly; a second card payment of a paid order is refunded at Stripe."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import stripe
import trio

from itinerabot.adapters.stripe.client import StripeApi, build_stripe_client, service_error
from itinerabot.errors import PermanentServiceError, TransientServiceError
from itinerabot.models import OrderStatus, PaymentMethod
from itinerabot.payments.card.refunds import refund_card
from itinerabot.payments.card.verify import judge_session
from itinerabot.store import money
from itinerabot.store.db import connect
from itinerabot.store.money import ExtraKind, RefundStatus
from itinerabot.store.orders import OrderHead
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
    status_of,
    store_order,
    text_of,
    two_paid_sessions,
)

OTHER_REF = "IB-B2B2B2"
OTHER_CHAT = 5151


def warnings_about(caplog: pytest.LogCaptureFixture, session_id: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and getattr(r, "session", None) == session_id
    ]


# --------------------------------------------------------------- only our own session pays: webhook


async def test_a_session_the_bot_never_created_pays_nothing(
    tmp_path: Path, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 1: a signed session the bot never created (1 EUR cent, a Payment Link naming
    the order) delivered a PDF. Now: 200, an unknown_session anomaly, a WARNING, no PDF."""
    async with running_bot(tmp_path) as bot:
        order_id = store_order(bot.settings.store.path, reference=CARD_REF)
        foreign = bot.stripe.foreign_session(
            amount=1,
            currency="eur",
            metadata={"order_reference": CARD_REF},
            client_reference_id=CARD_REF,
        )
        answers = await deliver(bot, bot.stripe.complete(foreign["id"]), times=2)
        await trio.sleep(60)
        found = anomalies(bot)
    assert answers == [200, 200]
    assert bot.api.sent_documents() == []
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.AWAITING_PAYMENT
    # filed under the order it names, for the operator; nothing paid
    assert [(a.source, a.provider_ref, a.reason, a.order_id) for a in found] == [
        ("stripe", foreign["id"], "unknown_session", order_id)
    ]
    assert found[0].detail["amount_total"] == 1 and found[0].detail["currency"] == "eur"
    assert found[0].detail["metadata_order_reference"] == CARD_REF
    assert warnings_about(caplog, foreign["id"])


async def test_a_zero_total_session_pays_nothing(
    tmp_path: Path, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 1: a session with payment_status=no_payment_required and a total of 0,
    naming the order, delivered a PDF. Now: an anomaly, a WARNING, a 200, no PDF."""
    async with running_bot(tmp_path) as bot:
        order_id = store_order(bot.settings.store.path, reference=CARD_REF)
        free = bot.stripe.foreign_session(
            amount=0,
            currency="usd",
            metadata={"order_reference": CARD_REF},
            client_reference_id=CARD_REF,
        )
        event = bot.stripe.complete(free["id"])
        answers = await deliver(bot, event)
        await trio.sleep(60)
        found = anomalies(bot)
    assert event["data"]["object"]["payment_status"] == "no_payment_required"
    assert event["data"]["object"]["amount_total"] == 0
    assert answers == [200]
    assert bot.api.sent_documents() == []
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.AWAITING_PAYMENT
    assert [(a.provider_ref, a.reason) for a in found] == [(free["id"], "unknown_session")]
    assert warnings_about(caplog, free["id"])


async def test_a_session_carrying_another_orders_metadata_pays_its_own_order(
    tmp_path: Path, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 1: order A's own session carrying B's metadata delivered B and left A unpaid.
    Now the stored session ↔ order mapping decides: A is paid and delivered, B is not, and
    the mismatch is recorded as an anomaly with a WARNING."""
    async with running_bot(tmp_path) as bot:
        other_id = store_order(bot.settings.store.path, chat_id=OTHER_CHAT, reference=OTHER_REF)
        order_id, session_id = await open_checkout(bot)
        bot.stripe.set_metadata(session_id, {"order_reference": OTHER_REF})
        answers = await deliver(bot, bot.stripe.complete(session_id))
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await trio.sleep(60)
        found = anomalies(bot)
    assert answers == [200]
    assert len(bot.api.sent_documents(CHAT)) == 1
    assert bot.api.sent_documents(OTHER_CHAT) == []
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED
    assert status_of(bot.settings.store.path, other_id) == OrderStatus.AWAITING_PAYMENT
    assert [(a.provider_ref, a.reason, a.order_id) for a in found] == [
        (session_id, "metadata_mismatch", order_id)
    ]
    assert found[0].detail["metadata_order_reference"] == OTHER_REF
    assert warnings_about(caplog, session_id)


def _tax(bot: Bot, session_id: str) -> dict[str, Any]:
    return bot.stripe.complete(session_id, tax=100)  # 11.00 for a 10.00 order


def _all_discounted(bot: Bot, session_id: str) -> dict[str, Any]:
    return bot.stripe.complete(session_id, discount=1000)  # a 100 % promotion code


def _euros(bot: Bot, session_id: str) -> dict[str, Any]:
    return bot.stripe.restate(bot.stripe.complete(session_id), currency="eur")


def _live(bot: Bot, session_id: str) -> dict[str, Any]:
    return bot.stripe.restate(bot.stripe.complete(session_id), livemode=True)


@pytest.mark.parametrize(
    ("make_event", "reason"),
    [(_tax, "amount"), (_euros, "currency"), (_live, "livemode"), (_all_discounted, "not_paid")],
)
async def test_the_bots_own_session_pays_only_the_exact_price(
    tmp_path: Path,
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
    make_event: Any,
    reason: str,
) -> None:
    """Finding 1: the webhook recorded amount_total and currency without comparing them.
    Now a wrong amount (even more than the price), another currency, a live event for a
    test key or nothing paid is an anomaly: 200, a WARNING, no PDF."""
    async with running_bot(tmp_path) as bot:
        order_id, session_id = await open_checkout(bot)
        answers = await deliver(bot, make_event(bot, session_id))
        await trio.sleep(60)
        found = anomalies(bot)
    assert answers == [200]
    assert bot.api.sent_documents() == []
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.AWAITING_PAYMENT
    assert [(a.provider_ref, a.reason, a.order_id) for a in found] == [
        (session_id, reason, order_id)
    ]
    assert warnings_about(caplog, session_id)


async def test_an_async_method_still_settling_is_no_anomaly(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """A bank debit completes `unpaid` and pays later: nothing to record until it does."""
    async with running_bot(tmp_path) as bot:
        order_id, session_id = await open_checkout(bot)
        assert await deliver(bot, bot.stripe.complete(session_id, payment_status="unpaid")) == [200]
        await trio.sleep(10)
        assert bot.api.sent_documents() == []
        assert await deliver(bot, bot.stripe.async_payment_succeeded(session_id)) == [200]
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        found = anomalies(bot)
    assert found == []
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED


# ---------------------------------------------------- only our own session pays: deep-link return


async def test_deep_link_return_with_a_wrong_amount_delivers_nothing(
    tmp_path: Path, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 1: the deep-link return fulfilled any session Stripe reported paid. A session
    paid for another amount (11.00 for a 10.00 order) now gives no PDF and an anomaly."""
    async with running_bot(tmp_path) as bot:
        order_id, session_id = await open_checkout(bot)
        bot.stripe.complete(session_id, tax=100)  # paid at Stripe; no webhook
        card = bot.rt.payments.card
        assert card is not None
        reply = await card.deep_link_return(CHAT, f"ok_{CARD_REF}")
        await trio.sleep(60)
        found = anomalies(bot)
    assert bot.api.sent_documents() == []
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.AWAITING_PAYMENT
    assert "does not match" in text_of(reply[0])
    assert [(a.provider_ref, a.reason) for a in found] == [(session_id, "amount")]
    assert found[0].detail["amount_total"] == 1100
    assert found[0].detail["expected_amount_total"] == 1000
    assert warnings_about(caplog, session_id)


# ---------------------------------------------------------------- the pure check


def _order() -> OrderHead:
    return OrderHead(7, CARD_REF, CHAT, OrderStatus.AWAITING_PAYMENT, Decimal("10.00"), "USD")


def _session(**changes: Any) -> dict[str, Any]:
    session: dict[str, Any] = {
        "id": "cs_test_a1x",
        "object": "checkout.session",
        "amount_total": 1000,
        "currency": "usd",
        "livemode": False,
        "payment_status": "paid",
        "payment_intent": "pi_3x",
        "metadata": {"order_reference": CARD_REF},
        "client_reference_id": CARD_REF,
    }
    return {**session, **changes}


@pytest.mark.parametrize(
    ("changes", "order", "event_livemode", "reasons"),
    [
        ({}, _order(), False, []),
        ({}, _order(), None, []),  # retrieved from the API: no event flag
        ({}, None, False, ["unknown_session"]),
        ({"amount_total": 999}, _order(), False, ["amount"]),
        ({"amount_total": 1001}, _order(), False, ["amount"]),
        ({"currency": "eur"}, _order(), False, ["currency"]),
        ({"livemode": True}, _order(), False, ["livemode"]),
        ({}, _order(), True, ["livemode"]),
        (
            {"payment_status": "no_payment_required", "amount_total": 0},
            _order(),
            False,
            ["not_paid"],
        ),
        ({"client_reference_id": OTHER_REF}, _order(), False, ["metadata_mismatch"]),
    ],
)
def test_judge_session(
    changes: dict[str, Any],
    order: OrderHead | None,
    event_livemode: bool | None,
    reasons: list[str],
) -> None:
    """Finding 1: the one decision, without a network: who pays, and why not."""
    verdict = judge_session(
        _session(**changes), order, livemode=False, event_livemode=event_livemode, paid_at=START
    )
    assert [p.reason for p in verdict.problems] == reasons
    pays = reasons in ([], ["metadata_mismatch"])
    assert (verdict.payment is not None) == pays
    if verdict.payment is not None:
        assert verdict.payment.provider_ref == "cs_test_a1x"
        assert verdict.payment.provider_payment_id == "pi_3x"
        assert (verdict.payment.amount, verdict.payment.currency) == (Decimal("10.00"), "USD")


def test_an_unpaid_session_waits() -> None:
    verdict = judge_session(
        _session(payment_status="unpaid"),
        _order(),
        livemode=False,
        event_livemode=False,
        paid_at=START,
    )
    assert verdict.waiting and verdict.payment is None and verdict.problems == ()


def test_stripe_errors_become_the_project_tree() -> None:
    refused = stripe.InvalidRequestError(  # type: ignore[no-untyped-call]
        "No such payment_intent: 'pi_x'", "payment_intent", code="resource_missing", http_status=400
    )
    down = stripe.APIError("Sandbox: injected server error.", http_status=500)
    busy = stripe.RateLimitError("Request rate limit exceeded.", http_status=429)
    offline = stripe.APIConnectionError("Network error")  # type: ignore[no-untyped-call]
    assert isinstance(service_error(refused, "refunding"), PermanentServiceError)
    assert str(service_error(refused, "refunding")) == (
        "stripe: refunding: No such payment_intent: 'pi_x' (resource_missing)"
    )
    for transient in (down, busy, offline):
        assert isinstance(service_error(transient, "refunding"), TransientServiceError)


# ---------------------------------------------------------------- double payments and refunds


def extras_of(bot: Bot, order_id: int) -> list[money.ExtraPayment]:
    conn = connect(bot.settings.store.path)
    try:
        return money.extra_payments(conn, order_id)
    finally:
        conn.close()


async def test_a_second_card_payment_is_refunded_at_stripe_once(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """A second card session paid for an already-paid order: one PDF, an extra payment,
    the traveller told, and (refunds: automatic) one refund at Stripe of that PaymentIntent
    for its amount, however often Stripe repeats the event."""
    async with running_bot(tmp_path) as bot:
        order_id, first, second = await two_paid_sessions(bot)
        assert await deliver(bot, bot.stripe.complete(first)) == [200]
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        repeated = bot.stripe.complete(second)
        assert await deliver(bot, repeated, times=3) == [200, 200, 200]
        await eventually(lambda: any("We refunded" in t for t in bot.api.sent_texts(CHAT)))
        # Stripe sends the same news again under a new event id
        again = bot.stripe.event("checkout.session.completed", bot.stripe.sessions[second])
        assert await deliver(bot, again) == [200]
        await trio.sleep(120)
        texts = bot.api.sent_texts(CHAT)
        extras, refunds = extras_of(bot, order_id), refunds_of(bot, order_id)
    intent = bot.stripe.sessions[second]["payment_intent"]
    assert len(bot.api.sent_documents(CHAT)) == 1
    assert [
        (e.kind, e.method, e.amount, e.provider_ref, e.provider_payment_id) for e in extras
    ] == [(ExtraKind.SECOND, PaymentMethod.CARD, Decimal("10.00"), second, intent)]
    assert sum("second payment of 10.00 USD" in t for t in texts) == 1
    assert [t for t in texts if "We refunded" in t] == [
        f"We refunded 10.00 USD to your card for order {CARD_REF}. Depending on your bank it shows "
        "on your statement within 5 to 10 business days."
    ]
    (at_stripe,) = bot.stripe.refunds.values()
    assert (at_stripe["payment_intent"], at_stripe["amount"], at_stripe["currency"]) == (
        intent,
        1000,
        "usd",
    )
    assert at_stripe["metadata"]["order_reference"] == CARD_REF
    (refund,) = refunds
    assert (refund.status, refund.provider_refund_id, refund.provider_ref) == (
        RefundStatus.SUCCEEDED,
        at_stripe["id"],
        intent,
    )
    refund_posts = [r for r in bot.stripe.requests if (r.method, r.path) == ("POST", "/v1/refunds")]
    assert {r.headers["idempotency-key"] for r in refund_posts} == {refund.idempotency_key}


@pytest.mark.parametrize("stripe_acted", [False, True])
async def test_a_refund_stored_but_not_answered_is_asked_again_after_a_restart(
    tmp_path: Path, autojump_clock: trio.abc.Clock, stripe_acted: bool
) -> None:
    """The bot stops between storing the refund and hearing from Stripe (Stripe down, or
    its answer lost). At the next start the same idempotency key is sent: one refund."""
    fakes = Fakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        order_id, first, second = await two_paid_sessions(bot)
        assert await deliver(bot, bot.stripe.complete(first)) == [200]
        if stripe_acted:
            fakes.stripe.lose_next_answers(1000)
        else:
            fakes.stripe.fail_next(status=500, count=1000)
        assert await deliver(bot, bot.stripe.complete(second)) == [200]
        await eventually(lambda: any(r.error for r in refunds_of(bot, order_id)))
    (stored,) = refunds_of(bot, order_id)
    assert stored.status == RefundStatus.REQUESTED
    assert len(fakes.stripe.refunds) == (1 if stripe_acted else 0)
    fakes.stripe.clear_faults()
    async with running_bot(tmp_path, fakes) as bot:
        await eventually(
            lambda: [r.status for r in refunds_of(bot, order_id)] == [RefundStatus.SUCCEEDED]
        )
        # and Stripe repeats the second session's event after the restart
        again = bot.stripe.event("checkout.session.completed", bot.stripe.sessions[second])
        assert await deliver(bot, again, times=2) == [200, 200]
        await eventually(lambda: any("We refunded" in t for t in bot.api.sent_texts(CHAT)))
        await trio.sleep(60)
        texts = bot.api.sent_texts(CHAT)
    (refund,) = refunds_of(bot, order_id)
    (at_stripe,) = fakes.stripe.refunds.values()
    assert refund.idempotency_key == stored.idempotency_key
    assert refund.provider_refund_id == at_stripe["id"]
    assert at_stripe["payment_intent"] == fakes.stripe.sessions[second]["payment_intent"]
    assert sum("We refunded" in t for t in texts) == 1
    assert len(fakes.api.sent_documents(CHAT)) == 1


async def test_transient_refund_failures_are_retried_with_backoff(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Stripe answers 500 twice: the refund is asked again 5 s, then 10 s later."""
    settings = make_settings(tmp_path, stripe={"max_network_retries": 0})
    async with running_bot(tmp_path, settings=settings) as bot:
        order_id, first, second = await two_paid_sessions(bot)
        assert await deliver(bot, bot.stripe.complete(first)) == [200]
        bot.stripe.fail_next(status=500, count=2)
        paid_twice_at = trio.current_time()
        assert await deliver(bot, bot.stripe.complete(second)) == [200]
        await eventually(lambda: bool(bot.stripe.refunds))
        (at_stripe,) = bot.stripe.refunds.values()
    refund_posts = [
        r.status for r in bot.stripe.requests if (r.method, r.path) == ("POST", "/v1/refunds")
    ]
    assert refund_posts == [500, 500, 200]
    # the mock clock does not move while the webhook is handled: asked at +0, +5, +15
    assert at_stripe["created"] == START.timestamp() + paid_twice_at + 15
    assert [r.status for r in refunds_of(bot, order_id)] == [RefundStatus.SUCCEEDED]


async def test_with_operator_refunds_nothing_is_refunded_automatically(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """refunds: operator: the second payment is recorded and the traveller told, no refund."""
    settings = make_settings(tmp_path, stripe={"refunds": "operator"})
    async with running_bot(tmp_path, settings=settings) as bot:
        order_id, first, second = await two_paid_sessions(bot)
        assert await deliver(bot, bot.stripe.complete(first)) == [200]
        assert await deliver(bot, bot.stripe.complete(second)) == [200]
        await eventually(lambda: any("second payment" in t for t in bot.api.sent_texts(CHAT)))
        await trio.sleep(600)
        extras, refunds = extras_of(bot, order_id), refunds_of(bot, order_id)
    assert len(extras) == 1
    assert refunds == []
    assert bot.stripe.refunds == {}
    assert not any(r.path == "/v1/refunds" for r in bot.stripe.requests)
    assert len(bot.api.sent_documents(CHAT)) == 1


async def test_a_refund_stripe_refuses_is_recorded_failed(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """refund_card: a refund larger than the charge, or of an unknown PaymentIntent, is
    refused by Stripe and recorded as failed with Stripe's reason (for the operator)."""
    settings = make_settings(tmp_path, stripe={"refunds": "operator"})
    fakes = Fakes.make()
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        order_id, session_id = await open_checkout(bot)
        assert await deliver(bot, bot.stripe.complete(session_id)) == [200]
        intent = bot.stripe.sessions[session_id]["payment_intent"]
        client, http = build_stripe_client(settings.stripe, transport=fakes.transports().stripe)
        try:
            results = []
            for pi, amount in ((intent, "20.00"), ("pi_3Unknown", "10.00"), (intent, "10.00")):
                refund = await bot.rt.store.run(
                    begin_card_refund, order_id, pi, Decimal(amount), START
                )
                results.append(
                    await refund_card(bot.rt.store, StripeApi(client), refund, lambda: START)
                )
        finally:
            await http.close_async()  # type: ignore[no-untyped-call]
        await eventually(lambda: any("We refunded" in t for t in bot.api.sent_texts(CHAT)))
    too_large, unknown, ok = results
    assert too_large.status == RefundStatus.FAILED
    assert too_large.error is not None
    assert "Refund amount ($20.00) is greater than unrefunded amount on charge ($10.00)" in (
        too_large.error
    )
    assert unknown.status == RefundStatus.FAILED
    assert unknown.error is not None and "No such payment_intent" in unknown.error
    assert ok.status == RefundStatus.SUCCEEDED
    assert list(bot.stripe.refunds) == [ok.provider_refund_id]


async def test_a_pending_refund_is_concluded_by_stripes_refund_event(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Stripe answers `pending`; the traveller is told only once refund.updated says it
    succeeded. A refund event that is not one of ours changes nothing."""
    async with running_bot(tmp_path) as bot:
        bot.stripe.refund_status = "pending"
        order_id, first, second = await two_paid_sessions(bot)
        assert await deliver(bot, bot.stripe.complete(first)) == [200]
        assert await deliver(bot, bot.stripe.complete(second)) == [200]
        await eventually(lambda: bool(bot.stripe.refunds))
        await trio.sleep(60)
        pending = [r.status for r in refunds_of(bot, order_id)]
        told_early = any("We refunded" in t for t in bot.api.sent_texts(CHAT))
        (refund_id,) = bot.stripe.refunds
        foreign = {**bot.stripe.refunds[refund_id], "id": "re_3NotOurs", "status": "succeeded"}
        assert await deliver(bot, bot.stripe.event("refund.updated", foreign)) == [200]
        await trio.sleep(5)
        still = [r.status for r in refunds_of(bot, order_id)]
        assert await deliver(bot, bot.stripe.settle_refund(refund_id)) == [200]
        await eventually(lambda: any("We refunded" in t for t in bot.api.sent_texts(CHAT)))
        await trio.sleep(60)
        texts = bot.api.sent_texts(CHAT)
    assert pending == still == [RefundStatus.PENDING]
    assert not told_early
    assert [r.status for r in refunds_of(bot, order_id)] == [RefundStatus.SUCCEEDED]
    assert sum("We refunded" in t for t in texts) == 1
