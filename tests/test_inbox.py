"""The update inbox (store/inbox.py): a store whose writer stalls holds up the updates in hand,
never the fetching of new ones, and updates Telegram was told to forget before they committed
are handled after a crash, each once."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import trio

from itinerabot.store.inbox import Inbox, inbox_path
from sandbox.demo import Traveller as ProcessTraveller
from sandbox.demo import open_sandbox
from sandbox.serve import wait_for
from tests.harness import (
    CHAT,
    ONE_WAY,
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
        api, path = bot.api, settings.store.path
        traveller = Traveller(bot, CHAT)
        await traveller.walk(ONE_WAY)
        await traveller.presses(f"Pay {PRICE}")
        invoice = api.last_invoice(CHAT)
        assert invoice is not None
        taken, held = threading.Event(), list[bool]()
        holder = threading.Thread(
            target=hold_write_lock_until,
            args=(path, lambda: bool(api.pre_checkout_answers), taken, held),
        )
        holder.start()
        await trio.to_thread.run_sync(taken.wait)
        crowd = [CHAT + 1 + i for i in range(CROWD)]
        for chat in crowd:
            api.user_command(chat, HELP)
        charge = await api.pay_invoice(CHAT, invoice[0])
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
