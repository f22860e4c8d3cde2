"""The dialogue through Telegram: a scripted traveller talks to the real runtime over the fake
Bot API, from /start to a stored order, with buttons, typos, restarts and odd messages.

Answers are typed and the buttons the bot really sent are pressed; what counts is what the fake
Bot API received and what the store holds. Flight dates are relative to `START` (today).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import trio

from itinerabot.dialogue import current_question, order_reference
from itinerabot.models import Order, OrderStatus
from itinerabot.store import misc
from itinerabot.store import orders as order_rows
from itinerabot.store.db import connect
from tests.harness import (
    CHAT,
    ONE_WAY,
    OUTBOUND_DAY,
    START,
    Bot,
    Fakes,
    Traveller,
    card_payment,
    chatting,
    eventually,
    store_order,
)

JSON = dict[str, Any]
STALE = "That step is already done."
REFERENCE = re.compile(r"IB-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}")
RETURN_DAY = (START + timedelta(days=37)).date()


def stored_state(bot: Bot, chat: int = CHAT) -> str | None:
    conn = connect(bot.settings.store.path)
    try:
        return misc.get_chat_state(conn, chat)
    finally:
        conn.close()


def stored_orders(bot: Bot) -> list[Order]:
    conn = connect(bot.settings.store.path)
    try:
        return order_rows.chat_orders(conn, CHAT)
    finally:
        conn.close()


def at(bot: Bot) -> str | None:
    """The question the stored dialogue of CHAT is at."""
    return current_question(stored_state(bot))


def flight_time(day: date, dep: str, dep_tz: str, arr: str, arr_tz: str, days: int) -> timedelta:
    """An independent duration: local departure and arrival put on the UTC axis."""
    took_off = datetime.combine(day, time.fromisoformat(dep), ZoneInfo(dep_tz))
    landed = datetime.combine(day + timedelta(days=days), time.fromisoformat(arr), ZoneInfo(arr_tz))
    return landed - took_off


# London is ambiguous: the bot offers buttons. The return's airports are offered as buttons too.
RETURN = [
    "/start",
    "Sean O'Neill",
    "[No, on to the flights]",
    "London",
    "[LHR ·]",
    "JFK",
    "BA 117",
    OUTBOUND_DAY.isoformat(),
    "08:20",
    "11:10",
    "[Next leg]",
    "[JFK ·]",
    "[LHR ·]",
    "ba112",
    RETURN_DAY.strftime("%d.%m.%Y"),
    "18:30",
    "06:40",  # earlier than 18:30: the next day, inferred
    "[Done: show the summary]",
]


def check_summary(said: str, reference: str) -> str:
    """The summary, the last message of `said`; checks what every summary must say."""
    assert "Please check your itinerary." in said, said
    summary = said[said.index("Please check your itinerary.") :]
    assert f"Price: 10.00 USD · Order {reference}" in summary
    assert "It is not an airline ticket or a reservation" in summary
    return summary


# ---------------------------------------------------------------- whole walks


async def test_one_way_walk_to_the_summary_stores_the_order(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with chatting(tmp_path) as traveller:
        bot = traveller.bot
        summary = await traveller.walk(ONE_WAY)
        (order,) = stored_orders(bot)
        assert at(bot) == "summary"
        assert order_reference(stored_state(bot)) == order.reference
        assert traveller.labels() == ["Pay by card", "Pay with USDC", "Edit", "Cancel"]
    assert REFERENCE.fullmatch(order.reference)
    summary = check_summary(summary, order.reference)
    assert "Frankfurt am Main International Airport" in summary
    assert "John F Kennedy International Airport" in summary
    assert order.chat_id == CHAT
    assert order.status is OrderStatus.AWAITING_PAYMENT
    assert (order.price, order.currency) == (Decimal("10.00"), "USD")
    assert START <= order.created_at <= START + timedelta(minutes=5)
    assert order.itinerary.passengers == ("JANE MARY DOE",)
    (flight,) = order.itinerary.flights
    assert flight.flight_number == "LH 400"
    assert (flight.origin.iata, flight.origin.tz) == ("FRA", "Europe/Berlin")
    assert (flight.destination.iata, flight.destination.tz) == ("JFK", "America/New_York")
    assert flight.departure_local == datetime.combine(OUTBOUND_DAY, time(13, 15))
    assert flight.arrival_local == datetime.combine(OUTBOUND_DAY, time(16, 5))
    took = flight_time(OUTBOUND_DAY, "13:15", "Europe/Berlin", "16:05", "America/New_York", 0)
    assert flight.duration == took
    hours, minutes = divmod(int(took.total_seconds()) // 60, 60)
    assert f"Flight time: {hours} h {minutes:02d} min" in summary


async def test_return_walk_with_buttons_to_the_summary_stores_the_order(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with chatting(tmp_path) as traveller:
        bot = traveller.bot
        said = await traveller.walk(RETURN[:4])
        assert "Several airports match “London”" in said
        assert traveller.labels()[0].startswith("LHR · London Heathrow")
        assert at(bot) == "0.origin"
        summary = await traveller.walk(RETURN[4:])
        (order,) = stored_orders(bot)
        assert at(bot) == "summary"
    assert REFERENCE.fullmatch(order.reference)
    summary = check_summary(summary, order.reference)
    assert order.status is OrderStatus.AWAITING_PAYMENT
    assert (order.price, order.currency) == (Decimal("10.00"), "USD")
    assert order.itinerary.passengers == ("SEAN O'NEILL",)
    outbound, back = order.itinerary.flights
    assert outbound.flight_number == "BA 117"
    assert (outbound.origin.iata, outbound.origin.tz) == ("LHR", "Europe/London")
    assert (outbound.destination.iata, outbound.destination.tz) == ("JFK", "America/New_York")
    assert outbound.departure_local == datetime.combine(OUTBOUND_DAY, time(8, 20))
    assert outbound.arrival_local == datetime.combine(OUTBOUND_DAY, time(11, 10))
    assert back.flight_number == "BA 112"
    assert (back.origin.iata, back.destination.iata) == ("JFK", "LHR")
    assert back.departure_local == datetime.combine(RETURN_DAY, time(18, 30))
    assert back.arrival_local == datetime.combine(RETURN_DAY + timedelta(days=1), time(6, 40))
    assert back.duration == flight_time(
        RETURN_DAY, "18:30", "America/New_York", "06:40", "Europe/London", 1
    )
    assert "Return: JFK → LHR" in summary and "Flight 2 BA 112 · British Airways" in summary
    assert "the next day" in summary


# ---------------------------------------------------------------- mistakes keep the question


async def refused(traveller: Traveller, answer: str, expected: str) -> str:
    """Type a wrong `answer`: the reply says `expected`, the stored state does not change."""
    before = stored_state(traveller.bot)
    said = await traveller.says(answer)
    assert expected in said, said
    assert stored_state(traveller.bot) == before
    return said


async def test_typos_unknown_and_ambiguous_airports_and_past_dates_keep_the_question(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    past = (START - timedelta(days=2)).date()
    async with chatting(tmp_path) as traveller:
        bot = traveller.bot
        await traveller.says("/start")
        await refused(traveller, "J4ne Doe", "can't contain 4")
        assert at(bot) == "name.0"
        await traveller.walk(["Jane Doe", "[No, on to the flights]"])
        said = await refused(traveller, "Frnkfurt", "I found no airport for “Frnkfurt”")
        assert "Did you mean" in said
        assert any(label.startswith("FRA ·") for label in traveller.labels())
        assert at(bot) == "0.origin"
        said = await traveller.presses("FRA ·")  # the suggestion answers the same question
        assert "From: FRA" in said
        assert at(bot) == "0.destination"
        await refused(traveller, "London", "Several airports match")
        assert at(bot) == "0.destination"
        said = await traveller.says("LGW")  # typed instead of pressed
        assert "To: LGW · London Gatwick Airport" in said
        await refused(traveller, "Lufthansa", "is not a flight number")
        assert at(bot) == "0.number"
        await traveller.says("LH 900")
        said = await refused(traveller, past.isoformat(), "is in the past")
        assert at(bot) == "0.date"
        said = await traveller.says(OUTBOUND_DAY.isoformat())
        assert "Date:" in said and at(bot) == "0.departure"


async def test_arrival_before_departure_across_the_date_line_keeps_the_question(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Tokyo → Honolulu flies east over the date line: it lands on the previous local day."""
    async with chatting(tmp_path) as traveller:
        bot = traveller.bot
        await traveller.walk(
            ["/start", "Jane Doe", "[No, on]", "HND", "HNL", "JL 72", OUTBOUND_DAY.isoformat()]
        )
        await traveller.says("10:00")
        assert at(bot) == "0.arrival"
        said = await refused(traveller, "05:00 -1", "before the departure")
        assert "absolute time" in said and "land before it took off" in said
        assert at(bot) == "0.arrival"
        await traveller.says("22:00 -1")
        summary = await traveller.presses("Done")
        (order,) = stored_orders(bot)
    summary = check_summary(summary, order.reference)
    (flight,) = order.itinerary.flights
    assert flight.arrival_local == datetime.combine(OUTBOUND_DAY - timedelta(days=1), time(22))
    assert flight.duration == timedelta(hours=7)


async def test_a_return_before_the_outbound_lands_keeps_the_question(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    day = OUTBOUND_DAY.isoformat()
    async with chatting(tmp_path) as traveller:
        bot = traveller.bot
        await traveller.walk(
            ["/start", "Jane Doe", "[No, on]", "FRA", "JFK", "LH 400", day, "13:15", "16:05"]
        )
        await traveller.walk(["[Next leg]", "JFK", "FRA", "LH 401"])
        assert at(bot) == "1.date"
        said = await refused(
            traveller, (OUTBOUND_DAY - timedelta(days=1)).isoformat(), "This flight can't be on"
        )
        assert "the flight before it lands" in said
        assert at(bot) == "1.date"
        await traveller.says(day)
        assert at(bot) == "1.departure"
        await refused(traveller, "15:30", "before the flight before it lands")  # it lands 16:05
        assert traveller.labels() == ["Change the date"]
        assert at(bot) == "1.departure"
        said = await traveller.says("18:00")
        assert "Departs:" in said and at(bot) == "1.arrival"


# ---------------------------------------------------------------- restarts


async def test_a_restart_mid_dialogue_resumes_at_the_same_question(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    fakes = Fakes.make()
    async with chatting(tmp_path, fakes) as traveller:
        await traveller.walk(["/start", "Jane Doe"])
        assert at(traveller.bot) == "travellers"
        trip_question = traveller.last_keyboard_id()
    # a button sent by the previous instance answers the question it asked
    async with chatting(tmp_path, fakes) as traveller:
        said = await traveller.presses("No, on", trip_question)
        assert "1 traveller." in said and "Flight – departure airport?" in said
        assert at(traveller.bot) == "0.origin"
        await traveller.walk(["FRA", "JFK", "LH 400"])
        assert at(traveller.bot) == "0.date"
    before = len(fakes.api.sent_texts(CHAT))
    async with chatting(tmp_path, fakes) as traveller:
        said = await traveller.says(OUTBOUND_DAY.isoformat())
        assert at(traveller.bot) == "0.departure"
    assert said.startswith(f"Date: {OUTBOUND_DAY:%a} {OUTBOUND_DAY.day} "), said
    assert "Flight – departure time on" in said
    assert len(fakes.api.sent_texts(CHAT)) == before + 1  # nothing re-sent by the restart


# ---------------------------------------------------------------- callbacks


async def test_every_press_is_answered_and_a_finished_steps_buttons_are_removed(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with chatting(tmp_path) as traveller:
        bot, api = traveller.bot, traveller.bot.api
        await traveller.walk(["/start", "Jane Doe"])
        trip_question = traveller.last_keyboard_id()
        await traveller.presses("No, on")
        await traveller.says("London")
        airports = traveller.last_keyboard_id()
        await traveller.presses("LCY ·")
        assert at(bot) == "0.destination"
    for message_id in (trip_question, airports):
        message = api.message(CHAT, message_id)
        assert message is not None and "reply_markup" not in message
    removed = [c.params["message_id"] for c in api.calls_to("editMessageReplyMarkup")]
    assert removed == [trip_question, airports]
    answers = api.calls_to("answerCallbackQuery")
    assert [c.params["callback_query_id"] for c in answers] == traveller.callback_ids
    assert all(c.status == 200 for c in answers)


async def test_a_stale_press_is_answered_already_done_and_changes_nothing(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with chatting(tmp_path) as traveller:
        bot, api = traveller.bot, traveller.bot.api
        await traveller.walk(["/start", "Jane Doe"])
        # a double tap: both presses reach the bot before it took the buttons away
        traveller.press_now("No, on")
        said = await traveller.presses("Add another")
        assert said.count("departure airport?") == 1 and "Flight – departure airport?" in said
        assert api.callback_answers[traveller.callback_ids[-1]].get("text") == STALE
        await traveller.says("London")
        old = traveller.last_keyboard_id()
        state = stored_state(bot)
        await traveller.says("LHR")  # typed: the London buttons are done all the same
        assert stored_state(bot) != state
        message = api.message(CHAT, old)
        assert message is not None and "reply_markup" not in message
    answers = api.calls_to("answerCallbackQuery")
    assert [c.params["callback_query_id"] for c in answers] == traveller.callback_ids


async def test_a_press_the_bot_fails_to_handle_is_still_answered(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """An order row the bot cannot read makes loading the chat fail: the press is answered all
    the same and the traveller reads a plain sentence."""
    async with chatting(tmp_path) as traveller:
        bot, api = traveller.bot, traveller.bot.api
        await traveller.walk(["/start", "Jane Doe"])
        state = stored_state(bot)
        conn = connect(bot.settings.store.path)
        conn.execute(
            "INSERT INTO orders (reference, chat_id, itinerary, price, currency, status,"
            " created_at) VALUES ('IB-BROKEN', ?, '{}', '10.00', 'USD', 'awaiting_payment', ?)",
            (CHAT, START.isoformat()),
        )
        conn.close()
        said = await traveller.presses("No, on")
        assert said == "Sorry, something went wrong on our side. Please try again."
        assert stored_state(bot) == state
    answers = api.calls_to("answerCallbackQuery")
    assert [c.params["callback_query_id"] for c in answers] == traveller.callback_ids


async def test_an_update_whose_write_sqlite_refuses_is_skipped_and_the_bot_keeps_serving(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """SQLite refuses the order the last answer creates (a trigger's ABORT, as a schema check
    would): the same write would be refused at every start, so it is a bug, not an outage.
    The traveller reads a plain sentence, another chat walks to its summary meanwhile, and
    the chat's next message is answered (the error used to stop serve, and the update,
    fetched again at every start, stopped it again)."""
    async with chatting(tmp_path) as traveller:
        bot = traveller.bot
        conn = connect(bot.settings.store.path)
        conn.execute(
            f"CREATE TRIGGER refuse_order BEFORE INSERT ON orders WHEN NEW.chat_id = {CHAT}"
            " BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
        )
        conn.close()
        said = await traveller.walk(ONE_WAY)
        other = await Traveller(bot, CHAT + 1).walk(ONE_WAY)
        help_text = await traveller.says("/help")
        stopped = bot.stopped.is_set()
    assert said == "Sorry, something went wrong on our side. Please try again."
    assert "Please check your itinerary." in other
    assert "PDF itinerary" in help_text
    assert not stopped
    assert stored_orders(bot) == []


# ---------------------------------------------------------------- everything else


async def test_photos_and_stickers_get_a_one_line_hint(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with chatting(tmp_path) as traveller:
        bot, api = traveller.bot, traveller.bot.api
        await traveller.says("/start")
        state = stored_state(bot)
        said = await traveller.sends(lambda: api.user_photo(CHAT, caption="my passport"))
        assert "\n" not in said
        assert "can't use this photo" in said and "passenger name" in said
        said = await traveller.sends(lambda: user_sticker(bot, CHAT))
        assert "\n" not in said
        assert "can't use this sticker" in said and "passenger name" in said
        assert stored_state(bot) == state


def user_sticker(bot: Bot, chat_id: int) -> JSON:
    """The traveller sends a sticker. The fake has no `user_sticker` (yet), so this builds the
    Update from the fake's own message maker; the Sticker has every field the spec requires."""
    api = bot.api
    message = api._user_message(chat_id, None, "private")
    message["sticker"] = {
        "file_id": "CAACAgIAAxkBAAIsandboxsticker",
        "file_unique_id": "AgADsticker",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": "✈",
    }
    return api._enqueue({"message": message})


async def test_group_messages_get_the_private_only_reply(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    group = -100_555
    async with chatting(tmp_path) as traveller:
        bot = traveller.bot
        said = await Traveller(bot, group).says("/start")
        assert stored_state(bot, group) is None
    assert said == "I work in private chats only. Open a private chat with me to make an itinerary."
    assert bot.api.sent_texts(CHAT) == []


async def test_over_long_input_is_refused_with_the_limit(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with chatting(tmp_path) as traveller:
        await traveller.says("/start")
        await refused(traveller, "A" * 201, "That's 201 characters; answers here are at most 200")
        assert at(traveller.bot) == "name.0"
        await traveller.says("A" * 20 + " " + "B" * 30)
        assert at(traveller.bot) == "travellers"


# ---------------------------------------------------------------- orders and start-up


async def test_orders_button_sends_the_same_pdf_again(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with chatting(tmp_path) as traveller:
        bot, api = traveller.bot, traveller.bot.api
        order_id = store_order(bot.settings.store.path, reference="IB-7K3Q9P")
        said = await traveller.says("/orders")
        assert "IB-7K3Q9P" in said and "waiting for payment" in said
        assert traveller.labels() == []  # no PDF before payment
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="test")
        await eventually(lambda: len(api.sent_documents(CHAT)) == 1 and bot.rt.sender.busy == 0)
        said = await traveller.says("/orders")
        assert "IB-7K3Q9P" in said and "paid, PDF sent" in said
        assert traveller.labels() == ["PDF IB-7K3Q9P"]
        orders_message = traveller.last_keyboard_id()
        await traveller.presses("PDF IB-7K3Q9P")
        await eventually(lambda: len(api.sent_documents(CHAT)) == 2)
        (order,) = stored_orders(bot)
    first, again = api.sent_documents(CHAT)
    assert (
        again.data == first.data and again.file_name == first.file_name == "itinerary-IB-7K3Q9P.pdf"
    )
    assert again.data.startswith(b"%PDF")
    assert api.callback_answers[traveller.callback_ids[-1]].get("text") == "Sending the PDF again…"
    assert order.status is OrderStatus.DELIVERED
    assert order.document_message_id == first.message_id  # the copy is not the delivery
    message = api.message(CHAT, orders_message)
    assert message is not None and "reply_markup" in message  # the list stays usable


async def test_commands_are_registered_at_start_up(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with chatting(tmp_path) as traveller:
        api = traveller.bot.api
        methods = [c.method for c in api.calls]
    assert methods[:4] == ["getMe", "setMyCommands", "setMyCommands", "getUpdates"]
    assert all(call.status == 200 for call in api.calls_to("setMyCommands"))
    names = ["start", "help", "cancel", "status", "orders", "language"]
    assert [c["command"] for c in api.commands] == names
    assert api.commands[0]["description"] == "make a new itinerary"
    russian = api.commands_by_language["ru"]
    assert [c["command"] for c in russian] == names
    assert russian[0]["description"] != api.commands[0]["description"]
    assert all(0 < len(c["description"]) <= 256 for c in api.commands + russian)
