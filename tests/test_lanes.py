"""Many travellers at once: chats are handled concurrently and each chat in order, and the
offset never passes an update whose effects are not committed.

On trio's mock clock, through the real runtime and the fake Bot API.
"""

from __future__ import annotations

from pathlib import Path

import trio

from itinerabot.adapters.telegram.window import UpdateWindow
from itinerabot.store import misc
from tests.harness import ONE_WAY, Traveller, eventually, query, running_bot

CHECKOUT = "on Stripe's secure checkout page"
HELP = "I turn the flights you enter into a neat PDF itinerary"
PROVIDER_DELAY = 15.0  # Stripe answers the Checkout Session 15 s late (the limit is 20 s)


async def test_a_slow_provider_call_in_one_chat_holds_up_no_other_chat(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Chat A taps "Pay by card" while Stripe takes 15 s; chat B walks its whole dialogue
    meanwhile at the pace of its own messages. A's later message is answered after A's
    payment page, in the order A sent them."""
    async with running_bot(tmp_path) as bot:
        a, b = Traveller(bot, 1001), Traveller(bot, 1002)
        await a.walk(ONE_WAY)
        bot.stripe.delay_next_answers(PROVIDER_DELAY, count=1)
        tapped = trio.current_time()
        a.press_now("Pay by card")
        bot.api.user_command(a.chat, "/help")  # A's next message, behind its payment
        await b.walk(ONE_WAY)
        b_done = trio.current_time()
        a_waiting = not any(CHECKOUT in t for t in bot.api.sent_texts(a.chat))
        await eventually(lambda: any(CHECKOUT in t for t in bot.api.sent_texts(a.chat)))
        paid_page = trio.current_time()
        await eventually(lambda: any(HELP in t for t in bot.api.sent_texts(a.chat)), timeout=30)
    # B's nine moves took their own pace (one message a second), not A's provider's
    assert b_done - tapped < PROVIDER_DELAY
    assert a_waiting
    assert PROVIDER_DELAY <= paid_page - tapped < PROVIDER_DELAY + 2
    said = [line.what for line in bot.api.chat_log(a.chat)]
    page = next(i for i, what in enumerate(said) if CHECKOUT in what)
    help_reply = next(i for i, what in enumerate(said) if HELP in what)
    assert page < help_reply  # A's messages answered in the order A sent them


async def test_the_stored_offset_never_passes_an_update_still_in_hand(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """While A's tap is in hand (its provider call pending), B's updates commit above it: the
    stored offset stays at A's tap, and B's are remembered as handled, so a restart now would
    handle A's tap and skip B's."""
    async with running_bot(tmp_path) as bot:
        a, b = Traveller(bot, 1001), Traveller(bot, 1002)
        await a.walk(ONE_WAY)
        bot.stripe.delay_next_answers(PROVIDER_DELAY, count=1)
        tap = int(a.press_now("Pay by card")["update_id"])
        await b.walk(ONE_WAY[:3])
        path = bot.settings.store.path
        stored = query(path, "SELECT value FROM kv WHERE key = ?", misc.OFFSET_KEY)
        done_above = query(path, "SELECT update_id FROM handled_updates ORDER BY update_id")
        told = bot.rt.longpoll.offset
        async with bot.web() as web:
            health = (await web.get("/healthz")).json()
        await eventually(lambda: bot.rt.longpoll.handled(tap), timeout=30)
        after = bot.rt.longpoll.offset
    assert int(stored[0][0]) == tap == told
    assert health["updates_waiting"] == 1  # A's tap
    assert [u for (u,) in done_above] == list(range(tap + 1, tap + 4))
    assert after > tap + 3


def test_the_window_offset_is_the_lowest_update_not_committed() -> None:
    window = UpdateWindow(100)
    assert [window.admit(u) for u in (100, 101, 102)] == [True, True, True]
    assert window.offset_after(101) == 100  # 100 is still in hand
    window.finish(101)
    assert (window.offset, window.committed(101), window.committed(100)) == (100, True, False)
    assert not window.admit(101)  # Telegram sends it again: not new work
    window.finish(100)
    assert window.offset == 102
    window.finish(102)
    assert window.offset == 103


def test_after_a_restart_the_updates_done_above_the_offset_are_skipped() -> None:
    window = UpdateWindow(100, done={101, 103})
    new = [u for u in (100, 101, 102, 103, 104) if window.admit(u)]
    assert new == [100, 102, 104]
    assert window.offset == 100
    for u in new:
        window.finish(u)
    assert window.offset == 105
