"""A tap on "Pay" is answered at once and carried out after its update commits: the payment
page follows when the provider answers, a provider that fails gets a clear "try again", and a
process stopped in between carries the tap out at its next start, creating nothing twice.

On trio's mock clock, through the real runtime and the fake Bot API and Stripe.
"""

from __future__ import annotations

from pathlib import Path

import trio

from tests.harness import ONE_WAY, Fakes, Traveller, eventually, query, running_bot

CHECKOUT = "on Stripe's secure checkout page"
PREPARING = "Preparing your payment…"


async def test_a_tap_is_answered_at_once_and_the_page_follows_the_provider(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path) as bot:
        traveller = Traveller(bot)
        await traveller.walk(ONE_WAY)
        bot.stripe.delay_next_answers(12, count=1)
        tapped = trio.current_time()
        traveller.press_now("Pay by card")
        await eventually(lambda: PREPARING in bot.api.sent_texts(traveller.chat))
        preparing = trio.current_time() - tapped
        answered = bot.api.callback_answers
        await eventually(lambda: CHECKOUT in bot.api.sent_texts(traveller.chat)[-1])
        page = trio.current_time() - tapped
    assert preparing < 1.5
    assert len(answered) == len(traveller.callback_ids)  # the press itself was answered too
    assert 12 <= page < 13.5


async def test_a_provider_that_fails_gets_a_try_again_and_no_page(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path) as bot:
        traveller = Traveller(bot)
        await traveller.walk(ONE_WAY)
        bot.stripe.fail_next(status=500, count=100)
        traveller.press_now("Pay by card")
        await eventually(
            lambda: "not available right now" in bot.api.sent_texts(traveller.chat)[-1],
            timeout=60,
        )
        texts = bot.api.sent_texts(traveller.chat)
        open_requests = query(
            bot.settings.store.path, "SELECT COUNT(*) FROM payment_requests WHERE done_at IS NULL"
        )
    assert PREPARING in texts
    assert not any(CHECKOUT in t for t in texts)
    assert open_requests == [(0,)]


async def test_a_tap_left_open_by_a_stop_is_carried_out_at_the_next_start_once(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The process stops while Stripe has not answered the Checkout Session yet: the request
    stays open in the store. The next start asks Stripe again with the stored idempotency key
    and sends the one page; Stripe holds one session."""
    fakes = Fakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        traveller = Traveller(bot)
        await traveller.walk(ONE_WAY)
        bot.stripe.delay_next_answers(600, count=1)
        traveller.press_now("Pay by card")
        await eventually(lambda: PREPARING in bot.api.sent_texts(traveller.chat))
    path = tmp_path / "bot.sqlite3"
    assert query(path, "SELECT COUNT(*) FROM payment_requests WHERE done_at IS NULL") == [(1,)]
    async with running_bot(tmp_path, fakes) as bot:
        await eventually(lambda: CHECKOUT in bot.api.sent_texts(traveller.chat)[-1], timeout=60)
        await trio.sleep(5)
        pages = [t for t in bot.api.sent_texts(traveller.chat) if CHECKOUT in t]
    assert len(pages) == 1
    assert len(fakes.stripe.sessions) == 1
    assert query(path, "SELECT COUNT(*) FROM payment_requests WHERE done_at IS NULL") == [(0,)]


async def test_a_slow_provider_for_one_traveller_holds_up_no_other_travellers_tap(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """A's Checkout Session takes Stripe 19 s; B taps 0.5 s after A and gets its page at
    once: taps on different orders never wait for each other."""
    async with running_bot(tmp_path) as bot:
        a, b = Traveller(bot, 3001), Traveller(bot, 3002)
        await a.walk(ONE_WAY)
        await b.walk(ONE_WAY)
        bot.stripe.delay_next_answers(19, count=1)
        tapped = trio.current_time()
        a.press_now("Pay by card")
        await trio.sleep(0.5)
        b.press_now("Pay by card")
        await eventually(lambda: CHECKOUT in bot.api.sent_texts(b.chat)[-1])
        b_page = trio.current_time() - tapped
        await eventually(lambda: CHECKOUT in bot.api.sent_texts(a.chat)[-1], timeout=30)
        a_page = trio.current_time() - tapped
    assert b_page < 3
    assert 19 <= a_page < 21
