"""The update inbox (store/inbox.py): a store whose writer stalls holds up the updates in hand,
never the fetching of new ones, and updates Telegram was told to forget before they committed
are handled after a crash, each once."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import trio

from itinerabot.adapters.telegram.longpoll import FULL_POLL_EVERY
from itinerabot.config import Settings
from itinerabot.store.inbox import Inbox, inbox_path
from sandbox.demo import Traveller as ProcessTraveller
from sandbox.demo import open_sandbox
from sandbox.serve import wait_for
from tests.harness import (
    CHAT,
    ONE_WAY,
    Bot,
    Fakes,
    Traveller,
    eventually,
    hold_write_lock_until,
    make_settings,
    running_bot,
)

PRICE = 250
#: more updates than one getUpdates answer holds (Telegram sends at most 100)
CROWD = 150
HELP = "/help"


def help_answers(texts: list[str]) -> int:
    return sum("PDF itinerary" in text for text in texts)


async def invoice_then_lock_until_checkout(bot: Bot) -> tuple[int, threading.Thread, list[bool]]:
    """Our traveller gets a Stars invoice; then another process takes the store's write
    lock and holds it until the bot has answered a pre-checkout query (at most 10 s of real
    time). (the invoice's message id, the holder's thread, whether it was answered then)"""
    api = bot.api
    traveller = Traveller(bot, CHAT)
    await traveller.walk(ONE_WAY)
    await traveller.presses(f"Pay {PRICE}")
    invoice = api.last_invoice(CHAT)
    assert invoice is not None
    taken, held = threading.Event(), list[bool]()
    holder = threading.Thread(
        target=hold_write_lock_until,
        args=(bot.settings.store.path, lambda: bool(api.pre_checkout_answers), taken, held),
    )
    holder.start()
    await trio.to_thread.run_sync(taken.wait)
    return invoice[0], holder, held


async def test_a_pre_checkout_query_behind_a_full_window_is_answered_while_the_store_is_locked(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Another process holds the store's write lock while 150 other travellers write /help
    and then our traveller pays a Stars invoice. Not one of the 150 can commit, and
    Telegram sends at most 100 updates from the offset the bot confirms: without the inbox
    the pre-checkout query, the 151st, would not even be fetched before the lock went. With
    it, the query is answered ok while the lock is still held (the holder lets go only then,
    or after 10 s of real time), and once it goes every /help is answered once and the PDF
    arrives."""
    settings = make_settings(tmp_path, stars={"price": PRICE})
    async with running_bot(tmp_path, settings=settings) as bot:
        api = bot.api
        invoice, holder, held = await invoice_then_lock_until_checkout(bot)
        crowd = [CHAT + 1 + i for i in range(CROWD)]
        for chat in crowd:
            api.user_command(chat, HELP)
        charge = await api.pay_invoice(CHAT, invoice)
        await trio.to_thread.run_sync(holder.join)
        await eventually(lambda: len(api.sent_documents(CHAT)) == 1)
        await eventually(lambda: all(help_answers(api.sent_texts(c)) == 1 for c in crowd))
        await trio.sleep(30)  # anything sent twice would be sent by now
        answered = [help_answers(api.sent_texts(c)) for c in crowd]
    assert held == [True]  # answered while the store's writer was stuck behind the lock
    (answer,) = api.calls_to("answerPreCheckoutQuery")
    assert answer.params["ok"] is True
    assert charge is not None
    assert answered == [1] * CROWD
    assert len(api.sent_documents(CHAT)) == 1


@pytest.mark.process
async def test_updates_confirmed_before_they_committed_are_handled_once_after_a_crash(
    tmp_path: Path,
) -> None:
    """The real `serve`: another process holds the store's write lock while 150 travellers
    write /help. The bot keeps them in its inbox and confirms them to Telegram, which
    forgets them; then it is killed (SIGKILL) with none committed. At the next start, with
    the lock gone, every one is answered, once."""
    with trio.fail_after(60):
        async with open_sandbox(tmp_path) as sandbox:
            await sandbox.start_bot()
            api = sandbox.api
            store = tmp_path / "itinerabot.sqlite3"
            await ProcessTraveller(api, CHAT).say(HELP, "PDF itinerary")
            lock = sqlite3.connect(store, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")
            crowd = [CHAT + 1 + i for i in range(CROWD)]
            for chat in crowd:
                api.user_command(chat, HELP)
            # Telegram forgets an update once the bot confirms an offset past it
            await wait_for(lambda: api.pending_updates == 0, 20, interval=0.01)
            answered_before = [help_answers(api.sent_texts(c)) for c in crowd]
            assert await sandbox.kill_bot() == -9
            lock.execute("ROLLBACK")
            lock.close()
            await sandbox.start_bot()
            await wait_for(
                lambda: all(help_answers(api.sent_texts(c)) >= 1 for c in crowd), 20, interval=0.05
            )
            await trio.sleep(1.0)  # anything sent twice would be sent by now
            answered = [help_answers(api.sent_texts(c)) for c in crowd]
            code, _ = await sandbox.stop_bot()
    assert answered_before == [0] * CROWD  # nothing committed before the crash
    assert answered == [1] * CROWD
    assert code == 0
    assert "updates from the inbox handed out again" in sandbox.log
    assert api.violations == []


async def test_the_inbox_keeps_updates_until_the_store_has_committed_them(tmp_path: Path) -> None:
    """An update kept is pending until the store's offset passes it; kept twice, it is one;
    the inbox sits beside the store."""
    path = inbox_path(tmp_path / "bot.sqlite3")
    assert path == tmp_path / "bot.inbox.sqlite3"
    inbox = await trio.to_thread.run_sync(Inbox.open, path)
    try:
        await inbox.keep([(10, {"update_id": 10}), (11, {"update_id": 11})], below=0)
        await inbox.keep([(11, {"update_id": 11}), (12, {"update_id": 12, "x": "é"})], below=11)
        assert await inbox.pending(0) == [
            (11, {"update_id": 11}),
            (12, {"update_id": 12, "x": "é"}),
        ]
        assert await inbox.pending(12) == [(12, {"update_id": 12, "x": "é"})]
    finally:
        inbox.close()
    reopened = await trio.to_thread.run_sync(Inbox.open, path)  # it survives a restart
    try:
        assert [u for u, _ in await reopened.pending(0)] == [11, 12]
    finally:
        reopened.close()


def leaf(exc: BaseException) -> BaseException:
    """The error a start failed with, out of the nurseries' groups around it."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def until(predicate: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Wait in real time (in a worker thread) for `predicate()`: while the store's writer
    waits for a lock, the test's mock clock stands still, so `eventually` would never wake."""
    give_up = time.monotonic() + seconds
    while not predicate() and time.monotonic() < give_up:
        time.sleep(0.002)
    return predicate()


async def test_a_second_serve_on_the_same_store_is_refused(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Two `serve` processes on one store would hand each other's kept updates out twice:
    the inbox is locked for its process, and the second start says so."""
    settings = make_settings(tmp_path)
    async with running_bot(tmp_path, settings=settings) as bot:
        with pytest.raises(BaseExceptionGroup) as caught:
            async with running_bot(tmp_path, settings=settings):
                pass
        assert "another itinerabot serve is running on this store" in str(leaf(caught.value))
        assert help_answers([await Traveller(bot, CHAT).says(HELP)]) == 1  # the first goes on
    second = await trio.to_thread.run_sync(Inbox.open, inbox_path(settings.store.path))
    second.close()  # free again once the first has stopped


async def stop_with_updates_kept(
    tmp_path: Path,
    fakes: Fakes,
    count: int,
    clock: trio.testing.MockClock,
    settings: Settings | None = None,
) -> list[int]:
    """`count` travellers write /help while another process holds the store's write lock:
    the bot keeps them in its inbox and Telegram forgets them; the bot is stopped with
    none of them committed when it stops handling updates (the lock goes only then)."""
    settings = settings or make_settings(tmp_path)
    crowd = [CHAT + 1 + i for i in range(count)]
    polls_at_stop: list[int] = []

    def offset_confirmed_at_stop() -> bool:
        # the stop's one short getUpdates comes once updates are no longer handled
        return bool(polls_at_stop) and len(fakes.api.calls_to("getUpdates")) > polls_at_stop[0]

    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        await Traveller(bot, CHAT).says(HELP)
        taken, held = threading.Event(), list[bool]()
        holder = threading.Thread(
            target=hold_write_lock_until,
            args=(settings.store.path, offset_confirmed_at_stop, taken, held),
        )
        holder.start()
        await trio.to_thread.run_sync(taken.wait)
        for chat in crowd:
            fakes.api.user_command(chat, HELP)
        assert await trio.to_thread.run_sync(until, lambda: bot.rt.longpoll.waiting == count)
        # with a full hand getUpdates (which tells Telegram what to forget) comes once a
        # second; the mock clock stands still while the store's writer waits for the lock,
        # so those seconds pass here
        for _ in range(3):
            confirmed = partial(until, lambda: fakes.api.pending_updates == 0, 1.0)
            if await trio.to_thread.run_sync(confirmed):
                break
            clock.jump(FULL_POLL_EVERY)
        assert fakes.api.pending_updates == 0
        polls_at_stop.append(len(fakes.api.calls_to("getUpdates")))
        bot.rt.shutdown()
        await bot.stopped.wait()
        await trio.to_thread.run_sync(holder.join)
    assert held == [True]
    return crowd


def lose_inbox(tmp_path: Path) -> None:
    """The inbox file is gone (with its WAL and lock file)."""
    for leftover in tmp_path.glob("bot.inbox.sqlite3*"):
        leftover.unlink()


async def test_an_inbox_lost_after_a_stop_that_left_updates_in_it_stops_the_start(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The bot stops while updates Telegram forgot wait in its inbox, and the inbox file is
    then lost (a container that keeps only the store file, a restore of the store alone):
    the next start refuses, naming the file and what to do, rather than lose them without
    a word. `serve --new-inbox` starts all the same."""
    fakes = Fakes.make()
    crowd = await stop_with_updates_kept(tmp_path, fakes, 60, autojump_clock)
    lose_inbox(tmp_path)
    settings = make_settings(tmp_path)
    with pytest.raises(BaseExceptionGroup) as caught:
        async with running_bot(tmp_path, fakes, settings=settings):
            pass
    refusal = str(leaf(caught.value))
    assert "bot.inbox.sqlite3 is not the one this store last ran with" in refusal
    assert "itinerabot serve --new-inbox" in refusal
    async with running_bot(tmp_path, fakes, settings=settings, new_inbox=True) as bot:
        assert help_answers([await Traveller(bot, CHAT).says(HELP)]) == 1
        await trio.sleep(30)
    # what the lost inbox held had committed as the store let go: nothing answered twice
    assert max(help_answers(fakes.api.sent_texts(c)) for c in crowd) <= 1


async def test_the_updates_kept_at_a_stop_are_handled_once_at_the_next_start(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The same stop with the inbox kept: every traveller of the crowd is answered once
    across the two runs."""
    fakes = Fakes.make()
    crowd = await stop_with_updates_kept(tmp_path, fakes, 60, autojump_clock)
    async with running_bot(tmp_path, fakes, settings=make_settings(tmp_path)):
        await eventually(lambda: all(help_answers(fakes.api.sent_texts(c)) for c in crowd))
        await trio.sleep(30)
    assert [help_answers(fakes.api.sent_texts(c)) for c in crowd] == [1] * len(crowd)


async def test_parked_updates_left_at_a_stop_are_handled_once_at_the_next_start(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """60 updates wait in the inbox at a stop and at most 20 fit in memory: the next start
    parks the other 40 and hands everything out, each once."""
    fakes = Fakes.make()
    settings = make_settings(tmp_path, telegram={"max_updates_in_hand": 20})
    crowd = await stop_with_updates_kept(tmp_path, fakes, 60, autojump_clock, settings)
    async with running_bot(tmp_path, fakes, settings=settings):
        await eventually(lambda: all(help_answers(fakes.api.sent_texts(c)) for c in crowd))
        await trio.sleep(30)
    assert [help_answers(fakes.api.sent_texts(c)) for c in crowd] == [1] * len(crowd)


async def test_an_inbox_lost_after_a_clean_stop_loses_nothing_and_is_replaced(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """A stop that left nothing in the inbox: losing the file loses nothing, and the next
    start makes a new one without asking."""
    fakes = Fakes.make()
    settings = make_settings(tmp_path)
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        await Traveller(bot, CHAT).says(HELP)
    lose_inbox(tmp_path)
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        assert help_answers([await Traveller(bot, CHAT).says(HELP)]) == 1


async def test_once_the_store_stalls_further_updates_are_parked_and_checkout_goes_first(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """At most 20 updates in memory (`telegram.max_updates_in_hand`), and another process
    holds the store's write lock: 30 travellers write /help, all fetched, none committing.
    After a second without a commit (FULL_POLL_EVERY) the store counts as stalled: the next
    40 /help are parked in the inbox, and the pre-checkout query that follows them is
    answered at once all the same. Once the lock goes, the parked ones are handed out in
    turn: every /help answered once, the PDF sent once."""
    settings = make_settings(tmp_path, stars={"price": PRICE}, telegram={"max_updates_in_hand": 20})
    async with running_bot(tmp_path, settings=settings) as bot:
        api, longpoll = bot.api, bot.rt.longpoll
        invoice, holder, held = await invoice_then_lock_until_checkout(bot)
        crowd = [CHAT + 1 + i for i in range(70)]
        for chat in crowd[:30]:
            api.user_command(chat, HELP)
        assert await trio.to_thread.run_sync(until, lambda: longpoll.waiting == 30)
        # the hand is full: the next getUpdates comes a second after the last (the mock clock
        # stands still while the store's writer waits for the lock: that second passes here)
        autojump_clock.jump(FULL_POLL_EVERY)
        for chat in crowd[30:]:
            api.user_command(chat, HELP)
        charge = await api.pay_invoice(CHAT, invoice)
        in_hand, parked = longpoll.waiting, longpoll.parked
        await trio.to_thread.run_sync(holder.join)
        await eventually(lambda: all(help_answers(api.sent_texts(c)) for c in crowd))
        await eventually(lambda: len(api.sent_documents(CHAT)) == 1)
        await trio.sleep(30)
    assert held == [True] and charge is not None
    assert (in_hand, parked) == (31, 40)  # 30 /help and the query; the next 40 parked
    assert [help_answers(api.sent_texts(c)) for c in crowd] == [1] * 70
    assert len(api.sent_documents(CHAT)) == 1


async def test_a_busy_bot_that_keeps_committing_never_parks(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """A full hand that commits steadily waits for room instead (a parked update costs a
    write and a read): 200 travellers at once, 20 in memory at most, nothing ever parked,
    every one answered once."""
    settings = make_settings(tmp_path, telegram={"max_updates_in_hand": 20})
    async with running_bot(tmp_path, settings=settings) as bot:
        api, longpoll = bot.api, bot.rt.longpoll
        crowd = [CHAT + 1 + i for i in range(200)]
        for chat in crowd:
            api.user_command(chat, HELP)
        most_parked = 0
        while not all(help_answers(api.sent_texts(c)) for c in crowd):
            most_parked = max(most_parked, longpoll.parked)
            await trio.sleep(0.01)
    assert most_parked == 0
    assert [help_answers(api.sent_texts(c)) for c in crowd] == [1] * 200
