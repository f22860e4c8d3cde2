"""Many travellers at once: chats are handled concurrently and each chat in order, and the
offset never passes an update whose effects are not committed.

On trio's mock clock, through the real runtime and the fake Bot API.
"""

from __future__ import annotations

from pathlib import Path

import trio

from itinerabot.adapters.telegram.window import UpdateWindow
from itinerabot.store import misc
from itinerabot.store.db import connect
from tests.harness import ONE_WAY, Fakes, Traveller, eventually, query, running_bot

CHECKOUT = "on Stripe's secure checkout page"
HELP = "I turn the flights you enter into a neat PDF itinerary"
PREPARING = "Preparing your payment…"
PROVIDER_DELAY = 19.0  # Stripe answers the Checkout Session 19 s late (the limit is 20 s)


async def test_a_slow_provider_call_in_one_chat_holds_up_no_other_chat(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Chat A taps "Pay by card" while Stripe takes 19 s: the tap is answered at once
    ("Preparing your payment…"), A's next message is answered meanwhile, and chat B walks its
    whole dialogue at the pace of its own messages. The payment page follows when Stripe
    answers; A's answers come in the order A wrote."""
    async with running_bot(tmp_path) as bot:
        a, b = Traveller(bot, 1001), Traveller(bot, 1002)
        await a.walk(ONE_WAY)
        bot.stripe.delay_next_answers(PROVIDER_DELAY, count=1)
        tapped = trio.current_time()
        a.press_now("Pay by card")
        bot.api.user_command(a.chat, "/help")  # A's next message
        await eventually(lambda: PREPARING in bot.api.sent_texts(a.chat))
        preparing = trio.current_time()
        await b.walk(ONE_WAY)
        b_done = trio.current_time()
        a_waiting = not any(CHECKOUT in t for t in bot.api.sent_texts(a.chat))
        await eventually(lambda: any(CHECKOUT in t for t in bot.api.sent_texts(a.chat)))
        paid_page = trio.current_time()
    assert preparing - tapped < 1.5  # the sender's pace for A, not Stripe's delay
    # B's nine moves took their own pace (one message a second), not A's provider's
    assert b_done - tapped < PROVIDER_DELAY
    assert a_waiting
    assert PROVIDER_DELAY <= paid_page - tapped < PROVIDER_DELAY + 2
    said = [line.what for line in bot.api.chat_log(a.chat)]
    order = [
        next(i for i, what in enumerate(said) if marker in what)
        for marker in (PREPARING, HELP, CHECKOUT)
    ]
    assert order == sorted(order)


async def test_a_restart_skips_the_updates_done_above_the_offset_and_handles_the_rest(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """After a crash, the store holds the offset (the lowest update not committed) and the
    updates committed above it. Three chats' /start wait at Telegram; the middle one was
    committed before the crash: only the other two are answered, each once."""
    fakes = Fakes.make()
    async with running_bot(tmp_path, fakes):
        pass  # the store exists, with its schema
    chats = [2001, 2002, 2003]
    ids = [int(fakes.api.user_command(chat, "/start")["update_id"]) for chat in chats]
    conn = connect(tmp_path / "bot.sqlite3")
    with conn:
        misc.set_offset(conn, ids[0])
        conn.execute("INSERT INTO handled_updates (update_id) VALUES (?)", (ids[1],))
    conn.close()
    async with running_bot(tmp_path, fakes) as bot:
        await eventually(lambda: bot.rt.longpoll.offset == ids[2] + 1 and bot.rt.sender.busy == 0)
        await trio.sleep(2)  # anything handled twice would be sent by now
        answered = [len(bot.api.sent_texts(chat)) for chat in chats]
        path = bot.settings.store.path
        stored = [u for (u,) in query(path, "SELECT update_id FROM handled_updates")]
        offset = int(query(path, "SELECT value FROM kv WHERE key = ?", misc.OFFSET_KEY)[0][0])
    assert answered == [1, 0, 1]
    # what is remembered is only what lies at or above the stored offset (the rest is pruned)
    assert ids[0] < offset <= ids[2] + 1
    assert all(u >= offset for u in stored)


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
