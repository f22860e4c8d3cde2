"""Delivery through the sender when Telegram or the store misbehaves: long outages, give-up,
sends that cannot be recorded, answers that never come, the mapping of python-telegram-bot's
errors, the pace's memory, and the outbox's indexes.
"""

from __future__ import annotations

import collections
import inspect
import itertools
import re
import sqlite3
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from telegram import error as tg_error

from itinerabot.adapters.telegram.client import convert_error, open_telegram
from itinerabot.adapters.telegram.pacing import Pacer
from itinerabot.adapters.telegram.retries import ending_after
from itinerabot.config import SenderSettings
from itinerabot.errors import (
    Conflict,
    InvalidToken,
    OutcomeUnknown,
    PermanentServiceError,
    RateLimited,
    RecipientBlocked,
    ServiceError,
    TransientServiceError,
)
from itinerabot.models import OrderStatus
from itinerabot.store import outbox
from itinerabot.store.db import connect
from itinerabot.wiring import Transports
from tests.harness import (
    CHAT,
    ONE_WAY,
    START,
    Fakes,
    Traveller,
    card_payment,
    eventually,
    make_settings,
    query,
    running_bot,
    status_of,
    store_order,
)

REFERENCE = re.compile(r"IB-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}")

#: nginx's answer while Telegram's backend is down
BAD_GATEWAY = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


class LosingAnswers(httpx.AsyncBaseTransport):
    """The fake Bot API behind a network that loses answers. The next `lose[method]` calls
    of a method reach the fake and take effect; then the answer never arrives, so the
    client waits out its read timeout and gets `httpx.ReadTimeout`, as when a connection
    dies after an upload. `waits` holds each read timeout waited out."""

    def __init__(self, inner: httpx.AsyncBaseTransport, lose: collections.Counter[str]) -> None:
        self._inner = inner
        self.lose = lose
        self.waits: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        method = request.url.path.rsplit("/", 1)[-1]
        if self.lose[method] <= 0:
            return response
        self.lose[method] -= 1
        await response.aread()
        await response.aclose()
        read_timeout = float(request.extensions["timeout"]["read"])
        self.waits.append(read_timeout)
        await trio.sleep(read_timeout)
        raise httpx.ReadTimeout("the answer was lost", request=request)


@dataclass
class LossyFakes(Fakes):
    """The sandbox fakes, with Telegram's answers lost as `lose` says (shared by restarts)."""

    lose: collections.Counter[str] = field(default_factory=collections.Counter)
    edges: list[LosingAnswers] = field(default_factory=list)

    @classmethod
    def make(cls) -> LossyFakes:
        fakes = super().make()
        assert isinstance(fakes, LossyFakes)
        return fakes

    def transports(self) -> Transports:
        plain = super().transports()
        assert plain.telegram is not None
        self.edges.append(LosingAnswers(plain.telegram, self.lose))
        return replace(plain, telegram=self.edges[-1])

    def read_timeouts(self) -> list[float]:
        return [w for edge in self.edges for w in edge.waits]


def outbox_rows(path: Path, kind: str) -> list[sqlite3.Row]:
    conn = connect(path)
    try:
        return conn.execute("SELECT * FROM outbox WHERE kind = ? ORDER BY id", (kind,)).fetchall()
    finally:
        conn.close()


def delivery_error(path: Path, order_id: int) -> str:
    conn = connect(path)
    try:
        query = "SELECT delivery_error FROM orders WHERE id = ?"
        return str(conn.execute(query, (order_id,)).fetchone()[0])
    finally:
        conn.close()


def backoff_times(count: int, cap: float = 60.0) -> list[float]:
    """Times of `count` tries from the first (at 0), each failing: 1, 2, 4 … cap s apart."""
    times = [0.0]
    while len(times) < count:
        times.append(times[-1] + min(cap, 2.0 ** (len(times) - 1)))
    return times


# ---------------------------------------------------------------- finding 6: outages


async def test_a_35_minute_outage_delivers_the_pdf_once_right_after_it(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 6: 35 minutes of 502s used to fail the PDF for good (20 attempts, about 16
    minutes). Now it is retried every 1, 2, 4 … 60 s (backoff_cap) and arrives once, at the
    first retry after Telegram is back."""
    fakes = Fakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        order_id = store_order(bot.settings.store.path)
        fakes.api.fail_share(["sendDocument"], 1.0, status=502)
        began = trio.current_time()
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
        await trio.sleep_until(began + 35 * 60)
        fakes.api.fail_share(["sendDocument"], 0.0)
        await eventually(lambda: len(fakes.api.sent_documents(CHAT)) == 1)
        await trio.sleep(600)
    calls = fakes.api.calls_to("sendDocument")
    first = calls[0].at
    assert first - began < 1
    # 0, 1, 3, 7, 15, 31, 63, then every 60 s: 123 … 2043 fail; 2103 is the first try after
    # the outage, which ended at 2100
    assert [round(c.at - first, 6) for c in calls] == backoff_times(41)
    assert round(calls[-1].at - first, 6) == 2103
    assert [c.status for c in calls] == [502] * 40 + [200]
    assert len(fakes.api.sent_documents(CHAT)) == 1
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED
    (row,) = outbox_rows(bot.settings.store.path, "document")
    assert (row["status"], row["attempts"], row["in_flight"]) == ("sent", 41, 0)


async def test_a_send_failing_for_give_up_after_is_given_up_and_left_to_the_operator(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 6: a send is given up only after `sender.give_up_after` seconds of failures
    (here 600), measured from its first failure; then the order is delivery_failed and the
    row failed (what `itinerabot orders` lists), and nothing is tried again."""
    fakes = Fakes.make()
    settings = make_settings(tmp_path, sender={"give_up_after": 600})
    fakes.api.fail_share(["sendDocument"], 1.0, status=502)
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        order_id = store_order(settings.store.path)
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
        await trio.sleep(603 + 3600)
    calls = fakes.api.calls_to("sendDocument")
    first = calls[0].at
    # 0, 1, 3, 7, 15, 31, 63, 123 … 543 fail and are retried; 603 fails 603 s after the
    # first failure, at least give_up_after: given up, and nothing after it in an hour
    assert [round(c.at - first, 6) for c in calls] == backoff_times(16)
    assert round(calls[-1].at - first, 6) == 603
    assert all(c.status == 502 for c in calls)
    assert status_of(settings.store.path, order_id) == OrderStatus.DELIVERY_FAILED
    (row,) = outbox_rows(settings.store.path, "document")
    assert (row["status"], row["attempts"], row["in_flight"]) == ("failed", 16, 0)
    assert row["first_failed_at"] == (START + timedelta(seconds=first)).isoformat()
    assert row["error"] == "gave up after 16 attempts in 603 s: Bad Gateway"
    assert delivery_error(settings.store.path, order_id) == row["error"]
    assert fakes.api.sent_texts(CHAT)  # "payment received" went out meanwhile


# ---------------------------------------------------------------- finding 7: store failures


async def test_a_send_the_store_cannot_record_is_not_sent_again(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 7: with the store refusing to record sends (a full disk), the same message
    was sent again and again (10 and 24 PDFs in 2 minutes). Now each message goes out once;
    recording it is retried (1, 2, 4 … 60 s) until the store takes it, and the next message
    of the chat waits for that."""
    async with running_bot(tmp_path) as bot:
        path = bot.settings.store.path
        order_id = store_order(path)
        fault = sqlite3.connect(path, isolation_level=None)
        fault.execute(
            "CREATE TRIGGER disk_full BEFORE UPDATE ON outbox WHEN NEW.status = 'sent'"
            " BEGIN SELECT RAISE(ABORT, 'database or disk is full (injected)'); END"
        )
        began = trio.current_time()
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
        await trio.sleep_until(began + 100)
        during = len(bot.api.calls_to("sendMessage")), len(bot.api.calls_to("sendDocument"))
        fault.execute("DROP TRIGGER disk_full")
        fault.close()
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await trio.sleep(600)
    assert during == (1, 0)
    (text,) = bot.api.calls_to("sendMessage")
    (document,) = bot.api.calls_to("sendDocument")
    assert "Payment received" in str(text.params["text"])
    # the text's record is tried at +0, 1, 3, 7, 15, 31, 63 (refused) and 123 (taken)
    assert round(document.at - text.at, 6) == 123
    assert status_of(path, order_id) == OrderStatus.DELIVERED
    conn = connect(path)
    rows = conn.execute("SELECT kind, status, attempts, in_flight FROM outbox").fetchall()
    conn.close()
    assert [tuple(r) for r in rows] == [("text", "sent", 1, 0), ("document", "sent", 1, 0)]


# ---------------------------------------------------------------- finding 8: lost answers


async def test_an_answer_lost_after_the_upload_repeats_the_pdf_once(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 8: a read timeout after the upload may mean the PDF arrived. It is sent once
    more (at least once), and the unknown outcome is counted on the row."""
    fakes = LossyFakes.make()
    fakes.lose["sendDocument"] = 1
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        order_id = store_order(path)
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
        await eventually(lambda: len(fakes.api.sent_documents(CHAT)) == 2)
        await trio.sleep(600)
    (read_timeout,) = fakes.read_timeouts()
    first, second = fakes.api.calls_to("sendDocument")
    assert round(second.at - first.at, 6) == read_timeout + 1  # waited out the answer, then 1 s
    assert len(fakes.api.sent_documents(CHAT)) == 2
    (row,) = outbox_rows(path, "document")
    assert isinstance(second.result, dict)
    assert (row["status"], row["unknown_outcomes"], row["in_flight"]) == ("sent", 1, 0)
    assert row["message_id"] == second.result["message_id"]
    assert status_of(path, order_id) == OrderStatus.DELIVERED


async def test_a_second_lost_answer_leaves_the_pdf_unconfirmed_and_unsent(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 8: after two sends without an answer the PDF is not sent a third time: the
    row is unconfirmed and the order delivery_failed, with an error that says why."""
    fakes = LossyFakes.make()
    fakes.lose["sendDocument"] = 2
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        order_id = store_order(path)
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
        await trio.sleep(3600)
    assert len(fakes.api.calls_to("sendDocument")) == 2
    assert len(fakes.api.sent_documents(CHAT)) == 2
    (row,) = outbox_rows(path, "document")
    assert (row["status"], row["unknown_outcomes"], row["in_flight"]) == ("unconfirmed", 2, 0)
    assert row["error"].startswith("sent 2 times without an answer from Telegram")
    assert delivery_error(path, order_id) == row["error"]


async def test_sends_in_flight_at_a_stop_count_as_unanswered_at_the_next_start(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 8: a send still waiting for its answer when the bot stops (past the shutdown
    grace) may have arrived. The next start counts it as an unknown outcome: a PDF with
    none before is sent once more; one that had one already is not sent again."""
    fakes = LossyFakes.make()
    fakes.lose["sendDocument"] = 2
    path = tmp_path / "bot.sqlite3"
    first_order = store_order(path)
    second_order = store_order(path, chat_id=CHAT + 1, reference="IB-7K3Q9Q")
    async with running_bot(tmp_path, fakes) as bot:
        began = trio.current_time()
        payment = card_payment("cs_second")
        await bot.rt.fulfilment.handle_successful_payment(second_order, payment, source="t")
        # the second order's PDF is sent at 0 (answer lost at 15) and at 16 (lost at 31)
        await trio.sleep_until(began + 17)
        fakes.lose["sendDocument"] = 1
        await bot.rt.fulfilment.handle_successful_payment(first_order, card_payment(), source="t")
        # the first order's PDF is sent at 17 (lost at 32); the bot stops at 18 and its
        # 10 s grace ends at 28 with both sends still waiting for an answer
        await trio.sleep_until(began + 18)
    assert len(fakes.api.calls_to("sendDocument")) == 3
    assert len(fakes.api.sent_documents(CHAT)) == 1
    assert len(fakes.api.sent_documents(CHAT + 1)) == 2
    in_flight = {r["order_id"]: r["in_flight"] for r in outbox_rows(path, "document")}
    assert in_flight == {first_order: 1, second_order: 1}
    async with running_bot(tmp_path, fakes) as bot:
        await eventually(lambda: status_of(path, first_order) == OrderStatus.DELIVERED)
        await trio.sleep(600)
    assert len(fakes.api.sent_documents(CHAT)) == 2  # once more: at least once
    assert len(fakes.api.sent_documents(CHAT + 1)) == 2  # a third time: never
    rows = {r["order_id"]: r for r in outbox_rows(path, "document")}
    assert (rows[first_order]["status"], rows[first_order]["unknown_outcomes"]) == ("sent", 1)
    assert (rows[second_order]["status"], rows[second_order]["unknown_outcomes"]) == (
        "unconfirmed",
        2,
    )
    assert status_of(path, second_order) == OrderStatus.DELIVERY_FAILED


async def test_a_dialogue_answer_caught_in_flight_by_two_stops_is_still_sent(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """A bot killed twice while a dialogue answer was in flight (the second kill soon after
    the restart, as in a burst) must not leave the traveller without it: a text interrupted
    by a stop is sent again, whatever stops came before (a PDF still ends unconfirmed on its
    second: it never goes out three times)."""
    path = tmp_path / "bot.sqlite3"
    conn = connect(path)
    with conn:
        conn.execute("BEGIN")
        row = outbox.enqueue(conn, CHAT, "text", {"text": "Passenger name?"}, created_at=START)
        # in flight at a first stop (counted then), and again at a second one
        conn.execute(
            "UPDATE outbox SET in_flight = 1, attempts = 1, unknown_outcomes = 1,"
            " first_failed_at = ? WHERE id = ?",
            (START.isoformat(), row),
        )
        conn.execute("COMMIT")
    conn.close()
    async with running_bot(tmp_path) as bot:
        await eventually(lambda: bot.api.sent_texts(CHAT) == ["Passenger name?"])
    (sent,) = outbox_rows(path, "text")
    assert (sent["status"], sent["in_flight"]) == ("sent", 0)


async def test_a_text_caught_in_flight_by_stop_after_stop_is_not_repeated_for_ever(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """A crash loop must not send a message once per restart: the fourth stop that finds the
    same text in flight ends it as unconfirmed, for the operator."""
    path = tmp_path / "bot.sqlite3"
    conn = connect(path)
    with conn:
        conn.execute("BEGIN")
        row = outbox.enqueue(conn, CHAT, "text", {"text": "Passenger name?"}, created_at=START)
        conn.execute(
            "UPDATE outbox SET in_flight = 1, attempts = 3, unknown_outcomes = 3,"
            " first_failed_at = ? WHERE id = ?",
            (START.isoformat(), row),
        )
        conn.execute("COMMIT")
    conn.close()
    async with running_bot(tmp_path) as bot:
        await trio.sleep(5)
        sent = bot.api.sent_texts(CHAT)
    (ended,) = outbox_rows(path, "text")
    assert sent == []
    assert (ended["status"], ended["unknown_outcomes"], ended["in_flight"]) == (
        "unconfirmed",
        4,
        0,
    )


#: every error class python-telegram-bot has, made as PTB makes it, and where it lands
PTB_ERRORS: dict[str, tuple[tg_error.TelegramError, type[ServiceError]]] = {
    # PTB raises the base class for a success answer it cannot parse: Telegram acted
    "TelegramError": (tg_error.TelegramError("Invalid server response"), OutcomeUnknown),
    "Forbidden": (tg_error.Forbidden("Forbidden: bot was blocked by the user"), RecipientBlocked),
    "InvalidToken": (tg_error.InvalidToken(), InvalidToken),
    "EndPointNotFound": (tg_error.EndPointNotFound("Not Found"), PermanentServiceError),
    # without an httpx cause: an error answer PTB has no class for, e.g. 502
    "NetworkError": (tg_error.NetworkError("Bad Gateway"), TransientServiceError),
    "BadRequest": (tg_error.BadRequest("Chat not found"), PermanentServiceError),
    # without a cause nobody can tell whether the request went out
    "TimedOut": (tg_error.TimedOut(), OutcomeUnknown),
    "ChatMigrated": (tg_error.ChatMigrated(-100123), PermanentServiceError),
    "RetryAfter": (tg_error.RetryAfter(7), RateLimited),
    "Conflict": (tg_error.Conflict("Conflict: terminated by other getUpdates"), Conflict),
    "PassportDecryptionError": (tg_error.PassportDecryptionError("bad"), PermanentServiceError),
}


def test_every_python_telegram_bot_error_class_has_a_place_in_the_tree() -> None:
    """Finding 8: every PTB error class maps onto our tree as expected (and a class that a
    new PTB adds fails here until it is placed)."""
    classes = {
        name
        for name in tg_error.__all__
        if inspect.isclass(obj := getattr(tg_error, name))
        and issubclass(obj, tg_error.TelegramError)
    }
    assert classes == set(PTB_ERRORS)
    for name, (exc, expected) in PTB_ERRORS.items():
        assert type(exc).__name__ == name
        converted = convert_error(exc)
        assert type(converted) is expected, name
        assert converted.service == "telegram"
    rate_limited = convert_error(tg_error.RetryAfter(7))
    assert isinstance(rate_limited, RateLimited) and rate_limited.retry_after == 7


def _answer(status: int, description: str, **parameters: int) -> httpx.Response:
    body: dict[str, object] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        # the request never fully left: Telegram cannot have acted
        pytest.param(httpx.ConnectError("refused"), TransientServiceError, id="connect"),
        pytest.param(httpx.ConnectTimeout("slow"), TransientServiceError, id="connect-timeout"),
        pytest.param(httpx.PoolTimeout("busy"), TransientServiceError, id="pool-timeout"),
        pytest.param(httpx.WriteError("reset"), TransientServiceError, id="write"),
        pytest.param(httpx.WriteTimeout("slow"), TransientServiceError, id="write-timeout"),
        # it went out and no answer came: Telegram may have acted
        pytest.param(httpx.ReadTimeout("slow"), OutcomeUnknown, id="read-timeout"),
        pytest.param(httpx.ReadError("reset"), OutcomeUnknown, id="read"),
        pytest.param(httpx.RemoteProtocolError("closed"), OutcomeUnknown, id="connection-lost"),
        pytest.param(httpx.Response(200, content=b'{"ok": tr'), OutcomeUnknown, id="200-garbled"),
        # Telegram answered
        pytest.param(httpx.Response(502, content=BAD_GATEWAY), TransientServiceError, id="502"),
        pytest.param(_answer(500, "Internal Server Error"), TransientServiceError, id="500"),
        pytest.param(_answer(429, "Too Many Requests", retry_after=3), RateLimited, id="429"),
        pytest.param(_answer(403, "Forbidden: bot was blocked"), RecipientBlocked, id="403"),
        pytest.param(_answer(400, "Bad Request: chat not found"), PermanentServiceError, id="400"),
    ],
)
async def test_telegram_failures_through_python_telegram_bot_say_whether_it_may_have_acted(
    tmp_path: Path, fault: Exception | httpx.Response, expected: type[ServiceError]
) -> None:
    """Finding 8: through PTB's real HTTPXRequest, a failure that may have reached Telegram
    (a read timeout, a connection lost after sending, an unreadable success answer) is
    OutcomeUnknown, repeated at most once; one that surely did not (connect, pool and write
    failures, error answers) is an ordinary transient error, retried until give-up."""
    me = {"id": 1, "is_bot": True, "first_name": "Itinerabot", "username": "itinera_bot"}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/getMe"):
            return httpx.Response(200, json={"ok": True, "result": me})
        if isinstance(fault, Exception):
            raise fault
        return fault

    settings = make_settings(tmp_path).telegram
    with trio.fail_after(10):
        async with open_telegram(settings, transport=httpx.MockTransport(handler)) as telegram:
            with pytest.raises(ServiceError) as info:
                await telegram.send_text(CHAT, "hello")
    assert type(info.value) is expected


# ---------------------------------------------------------------- finding 12: pace memory


async def test_the_pace_memory_stays_bounded_over_thousands_of_chats(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Finding 12: the per-chat pacing dictionary never forgot a chat. Now only chats whose
    pace lies in the future are remembered: never more than global_rate × per_chat_burst ×
    per_chat_interval + 1 (61 by default), over 3 000 chats; none once their paces passed.
    The pace itself still holds: slots 1/30 s apart, a chat's third message a second after
    its first."""
    settings = SenderSettings()
    pacer = Pacer(settings)
    window = settings.per_chat_burst * settings.per_chat_interval
    bound = settings.global_rate * window + 1
    remembered: list[int] = []
    slots: dict[int, list[float]] = collections.defaultdict(list)

    async def chat(chat_id: int, messages: int) -> None:
        for _ in range(messages):
            slot = await pacer.slot(chat_id)
            slots[chat_id].append(slot)
            pacer.sent(chat_id, slot)
            remembered.append(pacer.remembered_chats)

    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            for chat_id in range(3000):
                nursery.start_soon(chat, chat_id, 1)
            for chat_id in range(3000, 3100):  # a few chats with bursts: paces pushed ahead
                nursery.start_soon(chat, chat_id, 5)
    assert len(remembered) == 3500
    assert max(remembered) <= bound
    every = sorted(s for chat_slots in slots.values() for s in chat_slots)
    assert all(b - a >= 1 / settings.global_rate - 1e-9 for a, b in itertools.pairwise(every))
    for chat_id in range(3000, 3100):
        mine = slots[chat_id]
        assert all(
            c - a >= settings.per_chat_interval - 1e-9 for a, c in zip(mine, mine[2:], strict=False)
        )
    await trio.sleep(window)
    assert pacer.remembered_chats == 0


async def test_the_sender_forgets_the_paces_of_chats_it_has_finished_with(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Finding 12: after sending one message to each of 150 chats the sender remembered all
    150 paces for ever; now at most 61 at any time, and none once their paces have passed."""
    path = tmp_path / "bot.sqlite3"
    conn = connect(path)
    conn.execute("BEGIN")
    for chat_id in range(1000, 1150):
        outbox.enqueue(
            conn, chat_id, "text", {"text": "Your flight is confirmed."}, created_at=START
        )
    conn.execute("COMMIT")
    conn.close()
    seen: list[int] = []
    async with running_bot(tmp_path) as bot:

        def all_sent() -> bool:
            seen.append(bot.rt.sender.paced_chats)
            return len(bot.api.calls_to("sendMessage")) == 150 and bot.rt.sender.busy == 0

        await eventually(all_sent, max_step=0.25)
        await trio.sleep(2)
        after = bot.rt.sender.paced_chats
    assert max(seen) <= 30 * 2 * 1 + 1
    assert after == 0


# ---------------------------------------------------------------- finding 11: indexes


def test_live_step_keyboard_reads_two_index_entries_not_the_outbox(tmp_path: Path) -> None:
    """Finding 11: finding a chat's live step keyboard scanned the whole outbox for its
    `remove_buttons` rows. Both queries it runs now search an index: outbox_by_chat, then
    the expression index outbox_removed_buttons."""
    conn = connect(tmp_path / "bot.sqlite3")
    conn.execute("BEGIN")
    for chat_id in (CHAT - 1, CHAT, CHAT + 1):
        keyboard = [[{"text": "Economy", "data": "3:economy"}]]
        row = outbox.enqueue(
            conn, chat_id, "text", {"text": "Cabin?", "keyboard": keyboard}, created_at=START
        )
        outbox.mark_sent(conn, row, 40 + chat_id % 10, START)
        outbox.enqueue(conn, chat_id, "text", {"text": "Thanks."}, created_at=START)
    conn.execute("COMMIT")
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    live = outbox.live_step_keyboard(conn, CHAT)
    conn.set_trace_callback(None)
    assert live == 40 + CHAT % 10
    plans = [
        [str(r["detail"]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}")] for sql in statements
    ]
    assert plans == [
        ["SEARCH outbox USING INDEX outbox_by_chat (chat_id=?)"],
        ["SEARCH outbox USING INDEX outbox_removed_buttons (chat_id=? AND <expr>=?)"],
    ]
    conn.execute("BEGIN")
    outbox.enqueue(conn, CHAT, "remove_buttons", {"message_id": live}, created_at=START)
    conn.execute("COMMIT")
    assert outbox.live_step_keyboard(conn, CHAT) is None
    assert outbox.live_step_keyboard(conn, CHAT + 1) == 40 + (CHAT + 1) % 10
    conn.close()


def queue_text(path: Path, chat_id: int, text: str) -> None:
    """A row written by another process (the operator's CLI): nobody wakes the sender."""
    conn = connect(path)
    conn.execute("BEGIN")
    outbox.enqueue(conn, chat_id, "text", {"text": text}, created_at=START)
    conn.execute("COMMIT")
    conn.close()


async def test_rows_queued_without_a_wake_up_go_out_within_a_minute_on_a_busy_bot(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Review (sender 1): the rescan ran only after 60 s without any wake-up, so on a bot
    with steady traffic a PDF queued by `itinerabot orders resend` was never sent."""
    async with running_bot(tmp_path) as bot:
        began = trio.current_time()  # the sender's schedule of rescans starts here
        queue_text(bot.settings.store.path, CHAT, "queued by the operator")
        for n in range(20):  # another traveller's messages, every 10 s for 200 s
            queue_text(bot.settings.store.path, CHAT + 1, f"busy {n}")
            bot.rt.sender.notify(CHAT + 1)
            await trio.sleep(10)
        sent = [c for c in bot.api.calls_to("sendMessage") if c.params["chat_id"] == CHAT]
    assert len(sent) == 1
    assert 60 <= sent[0].at - began < 61  # the first rescan, on its fixed schedule


async def test_no_send_starts_after_stop_and_none_is_left_in_flight(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Review (sender 5): calls waiting for a slot when `stop()` came still sent, and the
    grace period then cut them in flight, spending their one allowed repeat."""
    settings = make_settings(tmp_path, sender={"global_rate": 5})
    path = settings.store.path
    for chat in range(100):
        queue_text(path, 9000 + chat, "backlog")
    async with running_bot(tmp_path, settings=settings) as bot:
        await trio.sleep(2)
        bot.rt.shutdown()
        stopped_at = trio.current_time()
        await bot.stopped.wait()
    late = [c for c in bot.api.calls_to("sendMessage") if c.at > stopped_at]
    assert late == []
    conn = sqlite3.connect(path)
    in_flight = conn.execute("SELECT COUNT(*) FROM outbox WHERE in_flight = 1").fetchone()[0]
    sent = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'sent'").fetchone()[0]
    conn.close()
    assert in_flight == 0
    assert 5 <= sent <= 15  # about 5 a second for 2 s; the rest waits for the next start


async def test_a_429_pauses_every_send_even_those_already_waiting_for_a_slot(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Review (sender 6): a 429's retry_after delayed only slots booked after it, so sends
    that already held one went out inside Telegram's pause."""
    fakes = Fakes.make()
    settings = make_settings(tmp_path, sender={"global_rate": 1})
    for chat in range(6):
        queue_text(settings.store.path, 9100 + chat, "hello")
    fakes.api.fail_next("sendMessage", status=429, retry_after=5)
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        await eventually(lambda: len(bot.api.calls_to("sendMessage")) >= 7)
        calls = bot.api.calls_to("sendMessage")
    refused_at = calls[0].at
    assert calls[0].status == 429
    # nothing goes out in the 5 s after the 429, then one a second again
    assert [round(c.at - refused_at, 3) for c in calls[1:]] == [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]


async def test_a_copy_of_the_pdf_delivers_an_order_whose_delivery_had_failed(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Review (sender 7): the PDF button's copy reached the chat, but the order stayed
    delivery_failed and `itinerabot orders` kept asking for a resend."""
    fakes = Fakes.make()
    fakes.api.block(CHAT)
    path = tmp_path / "bot.sqlite3"
    order_id = store_order(path)
    async with running_bot(tmp_path, fakes) as bot:
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
        await eventually(lambda: status_of(path, order_id) == OrderStatus.DELIVERY_FAILED)
        fakes.api.blocked.discard(CHAT)  # the traveller unblocked the bot and tapped "PDF"
        conn = connect(path)
        conn.execute("BEGIN")
        outbox.enqueue(conn, CHAT, "document_copy", {}, created_at=START, order_id=order_id)
        conn.execute("COMMIT")
        conn.close()
        bot.rt.sender.notify(CHAT)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await eventually(lambda: status_of(path, order_id) == OrderStatus.DELIVERED)


def test_a_refused_token_keeps_the_messages_for_when_it_is_fixed() -> None:
    """Review (sender, minor): a token revoked in BotFather ended every pending PDF at once,
    each order delivery_failed; they now wait (with backoff) until the token is fixed."""
    failures = outbox.Failures(attempts=1, unknown_outcomes=0, first_failed_at=START)
    refused = InvalidToken("telegram", "the bot token was refused (401/404)", status=401)
    assert ending_after(refused, failures, START + timedelta(hours=1), 86400) is None
    blocked = RecipientBlocked("telegram", "Forbidden: bot was blocked by the user", status=403)
    assert ending_after(blocked, failures, START, 86400) is not None


@pytest.mark.parametrize(
    ("fault", "ending"),
    [
        ({"status": 400, "description": "Bad Request: STARS_INVOICE_INVALID"}, "failed"),
        ({"drop": True, "count": 2}, "unconfirmed"),
    ],
)
async def test_an_invoice_that_cannot_be_sent_is_followed_by_a_sentence_saying_so(
    tmp_path: Path, autojump_clock: trio.abc.Clock, fault: dict[str, Any], ending: str
) -> None:
    """Telegram refuses the Stars invoice, or twice gives no answer to it: the row ends for the
    operator, and the traveller, who tapped "Pay 250 ⭐" and would otherwise see nothing, is
    told to try again or pay another way. Tapping again sends a new invoice."""
    fakes = Fakes.make()
    settings = make_settings(tmp_path, stars={"price": 250})
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        traveller = Traveller(bot)
        await traveller.walk(ONE_WAY)
        summary = traveller.last_keyboard_id()
        fakes.api.fail_next("sendInvoice", **fault)
        said = await traveller.presses("Pay 250", summary)
        first = fakes.api.last_invoice(CHAT)
        await traveller.presses("Pay 250", summary)
        second = fakes.api.last_invoice(CHAT)
    rows = query(settings.store.path, "SELECT status FROM outbox WHERE kind = 'invoice'")
    reference = REFERENCE.search(said)
    assert reference is not None, said
    assert said == (
        f"We could not send you the Telegram Stars invoice for order {reference[0]}."
        " Please tap the button again, or choose another way to pay."
    )
    assert (first, rows) == (None, [(ending,), ("sent",)])
    assert second is not None
