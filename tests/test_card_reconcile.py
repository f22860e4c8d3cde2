"""Card payments whose webhook never came are found by the reconciler, and the deep-link
return asks Stripe briefly, rarely, and only about an open session."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import trio

from itinerabot.dialogue.types import InlineButton
from itinerabot.models import OrderStatus
from itinerabot.store import card_sessions
from itinerabot.store.db import connect
from itinerabot.wiring import Transports
from sandbox.serve import InProcessTransport
from tests.harness import (
    CARD_REF,
    CHAT,
    Fakes,
    button,
    deliver,
    eventually,
    open_checkout,
    running_bot,
    status_of,
    store_order,
    text_of,
)

NOT_CONFIRMED = "not confirmed yet"


@dataclass
class TimedFakes(Fakes):
    """The fakes, with each request that reaches the fake Stripe written down with its trio
    time, and the most requests it had in hand at once."""

    stripe_log: list[tuple[float, str, str]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    async def stripe_app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.stripe(scope, receive, send)
            return
        self.stripe_log.append((trio.current_time(), scope["method"], scope["path"]))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.stripe(scope, receive, send)
        finally:
            self.in_flight -= 1

    def session_gets(self, session_id: str) -> list[float]:
        path = f"/v1/checkout/sessions/{session_id}"
        return [t for t, m, p in self.stripe_log if m == "GET" and p == path]

    def transports(self) -> Transports:
        return replace(super().transports(), stripe=InProcessTransport(self.stripe_app))

    @classmethod
    def make(cls) -> TimedFakes:
        base = Fakes.make()
        return cls(base.api, base.stripe, base.circle, base.sns)


def stored_status(bot: Any, session_id: str) -> str | None:
    conn = connect(bot.settings.store.path)
    try:
        found = card_sessions.by_session_id(conn, session_id)
    finally:
        conn.close()
    return found.status if found else None


def confirmations(caplog: pytest.LogCaptureFixture) -> list[Any]:
    return [getattr(r, "source", None) for r in caplog.records if r.msg == "payment confirmed"]


# ---------------------------------------------------------------- the reconciler


async def test_a_card_payment_whose_webhook_never_came_is_delivered_within_the_hour(
    tmp_path: Path, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Review 4: Stripe's webhooks never arrive and the traveller closed the tab before the
    success page: the card payment was never credited. Now the open session is retrieved at
    the next hourly round (t = 3600) and the PDF delivered, logged as "stripe-reconcile"."""
    caplog.set_level(logging.INFO)
    fakes = TimedFakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        order_id, session_id = await open_checkout(bot)
        await trio.sleep_until(100)
        bot.stripe.complete(session_id)  # no event reaches the bot
        await trio.sleep_until(3599)
        before = status_of(bot.settings.store.path, order_id)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
    assert before == OrderStatus.AWAITING_PAYMENT
    assert [round(t) for t in fakes.session_gets(session_id)] == [3600]
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED
    assert confirmations(caplog) == ["stripe-reconcile"]
    assert stored_status(bot, session_id) == "complete"


async def test_a_card_payment_made_while_the_bot_was_down_is_delivered_at_start_up(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Review 4: paid while the bot was stopped and the webhook given up on: delivered by
    the start-up round, without waiting an hour."""
    fakes = TimedFakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        order_id, session_id = await open_checkout(bot)
    await trio.sleep(600)
    fakes.stripe.complete(session_id)
    await trio.sleep(600)
    restarted = trio.current_time()
    async with running_bot(tmp_path, fakes) as bot:
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        delivered = trio.current_time()
    assert fakes.session_gets(session_id) == [pytest.approx(restarted, abs=1)]
    assert delivered - restarted < 10
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED


async def test_a_session_that_expired_unseen_is_marked_expired_and_told_once(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Review 4: a session that expired while webhooks were down stayed open in the store.
    Now the round marks it expired and offers the traveller a new payment; the expired
    event delivered later tells nothing again."""
    fakes = TimedFakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        order_id, session_id = await open_checkout(bot)
        expired = bot.stripe.expire(session_id)  # at Stripe; the event is not delivered
        await trio.sleep_until(3601)
        marked = stored_status(bot, session_id)
        await eventually(lambda: any("expired" in t for t in bot.api.sent_texts(CHAT)))
        keyboard = bot.api.last_keyboard(CHAT)
        assert await deliver(bot, expired) == [200]
        await trio.sleep(60)
        told = [t for t in bot.api.sent_texts(CHAT) if "expired" in t]
    assert marked == "expired"
    assert (
        keyboard is not None
        and keyboard.data_for("Pay 10.00 USD by card") == f"pay:card:{CARD_REF}"
    )
    assert told == [
        f"The card payment for order {CARD_REF} expired. Nothing was charged. "
        "You can start a new payment:"
    ]
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.AWAITING_PAYMENT


async def test_a_session_stripe_is_slow_to_report_is_tried_again_next_round(
    tmp_path: Path, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Review 4: each retrieve has a time limit (30 s, the client's own retries inside it);
    one that runs out is logged and the session tried again at the next round."""
    fakes = TimedFakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        order_id, session_id = await open_checkout(bot)
        bot.stripe.complete(session_id)
        await trio.sleep_until(3500)
        bot.stripe.delay_next_answers(100, count=10)  # each try of the 3600 round times out
        await trio.sleep_until(3700)
        bot.stripe.clear_faults()
        await trio.sleep_until(7199)
        undelivered = bot.api.sent_documents(CHAT) == []
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
    gets = [round(t) for t in fakes.session_gets(session_id)]
    assert undelivered
    assert gets[0] == 3600 and gets[-1] == 7200
    assert all(3600 <= t <= 3630 for t in gets[:-1])
    warned = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and getattr(r, "session", None) == session_id
    ]
    assert [r.getMessage() for r in warned] == [
        "stripe reconcile: a session could not be checked; trying again next round"
    ]
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED


async def test_the_reconciler_asks_about_four_sessions_at_a_time(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Review 4: bounded concurrency: ten sessions paid unseen, Stripe slow (10 s each):
    never more than four retrieves at once, all ten delivered in that round."""
    fakes = TimedFakes.make()
    chats = list(range(7000, 7010))
    async with running_bot(tmp_path, fakes) as bot:
        card = bot.rt.payments.card
        assert card is not None
        for i, chat in enumerate(chats):
            ref = f"IB-RC{i:04d}"
            store_order(bot.settings.store.path, chat_id=chat, reference=ref)
            await card.pay_by_card(chat, ref)
        for session_id in list(bot.stripe.sessions):
            bot.stripe.complete(session_id)
        await trio.sleep_until(3590)
        bot.stripe.delay_next_answers(10, count=10)
        await eventually(lambda: all(bot.api.sent_documents(c) for c in chats), timeout=3600)
        done = trio.current_time()
    assert fakes.most_in_flight == 4
    assert 3630 <= done < 3700  # three waves of 10 s


# ---------------------------------------------------------------- the deep link


async def test_a_deep_link_return_waits_at_most_five_seconds_for_stripe(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Review 5: `/start ok_<ref>` retrieved the session with no time limit: with Stripe
    slow it took about a minute (20 s read timeout, two network retries), and every chat
    waited for it. Now it answers "not confirmed yet" after 5 s, and asks Stripe at most
    once per order every 10 s."""
    fakes = TimedFakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        _, session_id = await open_checkout(bot)
        card = bot.rt.payments.card
        assert card is not None
        bot.stripe.delay_next_answers(100, count=10)
        asked = trio.current_time()
        first = await card.deep_link_return(CHAT, f"ok_{CARD_REF}")
        took = trio.current_time() - asked
        await trio.sleep(3)
        second = await card.deep_link_return(CHAT, f"ok_{CARD_REF}")
        gets_within_10_s = len(fakes.session_gets(session_id))
        await trio.sleep(10)
        await card.deep_link_return(CHAT, f"ok_{CARD_REF}")
        gets_later = len(fakes.session_gets(session_id))
    assert took == pytest.approx(5, abs=0.01)
    assert NOT_CONFIRMED in text_of(first[0])
    assert NOT_CONFIRMED in text_of(second[0])
    assert (gets_within_10_s, gets_later) == (1, 2)


async def test_back_from_a_session_that_ended_offers_a_new_payment(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Review 5 (minor): `back_` re-sent the stored URL even when that session had expired,
    a page that only says it expired. Now it offers a new payment (a `pay:card:` button),
    without asking Stripe about a session the store knows ended."""
    fakes = TimedFakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        _, session_id = await open_checkout(bot)
        assert await deliver(bot, bot.stripe.expire(session_id)) == [200]
        card = bot.rt.payments.card
        assert card is not None
        (reply,) = await card.deep_link_return(CHAT, f"back_{CARD_REF}")
    assert button(reply) == InlineButton("Pay 10.00 USD by card", data=f"pay:card:{CARD_REF}")
    assert "Nothing was charged" in text_of(reply)
    assert fakes.session_gets(session_id) == []


async def test_back_from_a_session_still_open_offers_the_same_page(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """`back_` from a page still open: the same Checkout page, after asking Stripe once."""
    fakes = TimedFakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        _, session_id = await open_checkout(bot)
        card = bot.rt.payments.card
        assert card is not None
        (reply,) = await card.deep_link_return(CHAT, f"back_{CARD_REF}")
    url = bot.stripe.sessions[session_id]["url"]
    assert button(reply) == InlineButton("Pay 10.00 USD by card", url=url)
    assert len(fakes.session_gets(session_id)) == 1
