"""The dialogue, step by step: whole walks to the summary, mistakes, buttons, edits and commands."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from itinerabot.dialogue import current_question, initial_state, order_reference, step
from itinerabot.dialogue.types import (
    AnswerCallback,
    CancelOrder,
    DeepLinkReturn,
    OtherMessage,
    Outcome,
    PayByCard,
    PayWithStars,
    PayWithUsdc,
    RemoveButtons,
    ResendDocument,
    TextMessage,
)
from itinerabot.i18n import texts_for
from itinerabot.models import OrderStatus, TripShape
from tests.chat import (
    ONE_WAY,
    RETURN,
    STALE,
    Chat,
    created,
    make_context,
    make_order,
    said,
    sent,
    walk,
)

# ---------------------------------------------------------------- whole walks


def test_one_way_walk_reaches_the_summary_and_creates_the_order() -> None:
    chat = Chat()
    outcome = walk(chat, ONE_WAY)
    assert chat.at == "summary"
    order = created(outcome)
    assert order.reference == "IB-7K3Q9P"
    assert order.itinerary.passengers == ("JANE MARY DOE",)
    (flight,) = order.itinerary.flights
    assert flight.flight_number == "LH 400"
    assert flight.origin.iata == "FRA"
    assert flight.origin.tz == "Europe/Berlin"
    assert flight.origin.country == "DE"
    assert flight.destination.iata == "JFK"
    assert flight.destination.city == "New York"
    assert flight.departure_local == datetime(2026, 12, 24, 13, 15)
    assert flight.arrival_local == datetime(2026, 12, 24, 16, 5)
    assert flight.duration.total_seconds() == 8 * 3600 + 50 * 60
    summary = sent(outcome)[-1]
    assert "Frankfurt am Main International Airport" in summary.text
    assert "John F Kennedy International Airport" in summary.text
    assert "Thu 24 Dec 2026, 13:15 (UTC+01:00)" in summary.text
    assert "Thu 24 Dec 2026, 16:05 (UTC−05:00)" in summary.text
    assert "8 h 50 min" in summary.text
    assert "10.00 USD" in summary.text
    assert "not an airline ticket or a reservation" in summary.text
    assert order_reference(chat.state) == "IB-7K3Q9P"
    assert chat.button("card") == "pay:card:IB-7K3Q9P"
    assert chat.button("USDC") == "pay:usdc:IB-7K3Q9P"
    assert chat.button("Edit") and chat.button("Cancel")


def test_return_walk_reaches_the_summary_with_both_flights() -> None:
    chat = Chat()
    outcome = walk(chat, RETURN)
    order = created(outcome)
    outbound, back = order.itinerary.flights
    assert (outbound.origin.iata, outbound.destination.iata) == ("FRA", "JFK")
    assert (back.origin.iata, back.destination.iata) == ("JFK", "FRA")
    assert back.flight_number == "LH 401"
    assert back.departure_local == datetime(2027, 1, 2, 17, 50)
    # 07:35 is earlier than 17:50, so it is the next day, and the dialogue says so.
    assert back.arrival_local == datetime(2027, 1, 3, 7, 35)
    assert "the next day" in said(chat.last) or "the next day" in sent(outcome)[-1].text
    assert order.itinerary.shape is TripShape.RETURN
    assert "Outbound: FRA → JFK" in sent(outcome)[-1].text
    assert "Return: JFK → FRA" in sent(outcome)[-1].text
    assert "Flight 2 LH 401 · Lufthansa" in sent(outcome)[-1].text
    assert "7 h 45 min" in sent(outcome)[-1].text


def test_each_answer_is_acknowledged_with_the_next_question() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:3])
    assert chat.at == "0.origin"
    assert "1 traveller." in said(chat.last)
    chat.text("Heathrow")
    assert "LHR · London Heathrow Airport" in said(chat.last)
    assert chat.at == "0.destination"


def test_choice_buttons_answer_the_question_and_are_removed() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:2])
    outcome = chat.press(chat.button("No, on to the flights"), message_id=55)
    assert outcome.replies[:2] == (AnswerCallback("cb1"), RemoveButtons(55))
    assert chat.at == "0.origin"


# ---------------------------------------------------------------- mistakes keep the question


@pytest.mark.parametrize(
    ("at", "wrong", "expect", "right"),
    [
        ("name.0", "J4ne Doe", "can't contain 4", "Jane Doe"),
        ("name.0", "José Núñez", "JOSE NUNEZ", "Jose Nunez"),
        ("travellers", "sometimes", "Add another traveller, or No", "no"),
        ("0.origin", "Frnkfurt", "no airport", "Frankfurt"),
        ("0.origin", "xqzxqzxqz", "no airport", "FRA"),
        ("0.number", "Lufthansa", "not a flight number", "LH400"),
        ("0.number", "LH12345", "1–4 digits", "LH 1234"),
        ("0.date", "31.02.2027", "not a day", "24 Dec 2026"),
        ("0.date", "2026-05-31", "in the past", "2026-12-24"),
        ("0.date", "2027-06-02", "more than a year", "2027-06-01"),
        ("0.date", "tomorrowish", "couldn't read", "Dec 24"),
        ("0.departure", "25:10", "couldn't read", "13:15"),
        ("0.arrival", "16:05 +5", "+1 or +2", "16:05"),
        ("0.arrival", "07:20 +0", "at least 15 min", "16:05"),
    ],
)
def test_a_wrong_answer_is_refused_and_the_same_question_takes_the_right_one(
    at: str, wrong: str, expect: str, right: str
) -> None:
    chat = Chat()
    answers = ["/start", "Jane Mary Doe", "no", "FRA", "JFK", "LH400", "24 Dec 2026", "13:15"]
    stops = ["name.0", "travellers", "0.origin", "0.destination", "0.number", "0.date"]
    stops.append("0.departure")
    walk(chat, answers[: 1 + [*stops, "0.arrival"].index(at)])
    assert chat.at == at
    before = chat.state
    outcome = chat.text(wrong)
    assert expect in said(outcome), said(outcome)
    assert chat.at == at
    assert not outcome.actions
    assert chat.state == before
    chat.text(right)
    assert chat.at != at


def test_ambiguous_city_offers_buttons_and_a_press_picks_one() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:3])
    outcome = chat.text("London")
    assert chat.at == "0.origin"
    codes = [row[0].data.rsplit(":", 1)[1] for row in sent(outcome)[0].keyboard if row[0].data]
    assert codes[:2] == ["LHR", "LGW"]
    assert {"STN", "LCY", "LTN"} <= set(codes)
    chat.press(chat.button("LGW"), message_id=9)
    assert chat.last.replies[:2] == (AnswerCallback("cb1"), RemoveButtons(9))
    assert chat.at == "0.destination"
    assert "London Gatwick Airport" in said(chat.last)


def test_unknown_airport_suggests_the_closest_and_a_suggestion_can_be_pressed() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:3])
    outcome = chat.text("Frnkfurt")
    assert "Did you mean" in said(outcome)
    chat.press(chat.button("FRA"))
    assert chat.at == "0.destination"


def test_frankfurt_means_fra_and_heathrow_means_lhr() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:3])
    chat.text("frankfurt")
    assert "To:" not in said(chat.last) and "From: FRA" in said(chat.last)
    chat.text("Heathrow")
    assert "To: LHR" in said(chat.last)


def test_arrival_airport_must_differ_from_departure() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:4])
    outcome = chat.text("fra")
    assert "can't land where it took off" in said(outcome)
    assert chat.at == "0.destination"
    chat.text("JFK")
    assert chat.at == "0.number"


def test_a_departure_earlier_today_is_refused() -> None:
    chat = Chat()
    walk(chat, [*ONE_WAY[:6], "1 Jun 2026"])
    assert chat.at == "0.departure"
    outcome = chat.text("13:30")  # 13:30 in Frankfurt is 11:30 UTC, before NOW
    assert "already passed" in said(outcome)
    assert chat.at == "0.departure"
    chat.text("15:00")
    assert chat.at == "0.arrival"


# Tokyo → Honolulu crosses the date line eastward: leaving at 10:00 on the 24th, the flight lands
# on the evening of the 23rd, local time.
TOKYO_HONOLULU = ["/start", "Jane Doe", "no", "HND", "HNL", "JL 72", "24 Dec 2026", "10:00"]


def test_an_arrival_before_the_departure_in_absolute_time_is_refused_with_the_reason() -> None:
    chat = Chat()
    walk(chat, TOKYO_HONOLULU)
    outcome = chat.text("05:00 -1")
    text = said(outcome)
    assert chat.at == "0.arrival"
    assert "before the departure" in text and "absolute time" in text
    assert "15:00 UTC on 23 Dec" in text and "01:00 UTC on 24 Dec" in text
    assert chat.at == "0.arrival"
    chat.text("22:00 -1")
    (flight,) = created(chat.text("done")).itinerary.flights
    assert flight.arrival_local == datetime(2026, 12, 23, 22, 0)
    assert flight.duration.total_seconds() == 7 * 3600


def test_arrival_on_the_previous_local_day_is_inferred_and_said() -> None:
    chat = Chat()
    walk(chat, TOKYO_HONOLULU)
    outcome = chat.text("22:00")
    assert "previous day" in said(outcome)
    (flight,) = created(chat.text("done")).itinerary.flights
    assert flight.arrival_local == datetime(2026, 12, 23, 22, 0)


def test_westward_same_day_arrival_that_lands_before_take_off_is_refused() -> None:
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", "HNL", "HND", "JL 73", "24 Dec 2026", "10:00"])
    outcome = chat.text("14:00 +0")
    assert "land before it took off" in said(outcome)
    assert chat.at == "0.arrival"
    chat.text("14:00 +1")
    assert created(chat.text("done")).itinerary.flights[0].arrival_local == datetime(
        2026, 12, 25, 14, 0
    )


def test_an_implausibly_long_flight_is_refused() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:-2])
    outcome = chat.text("16:05 +1")
    assert "up to 20 h" in said(outcome)
    assert chat.at == "0.arrival"


def test_return_date_before_the_outbound_lands_is_refused() -> None:
    chat = Chat()
    walk(chat, RETURN[:13])
    assert chat.at == "1.date"
    outcome = chat.text("23 Dec 2026")
    assert "the flight before it lands Thu 24 Dec 2026, 16:05" in said(outcome)
    assert chat.at == "1.date"
    chat.text("24 Dec 2026")
    assert chat.at == "1.departure"


def test_return_departing_before_the_outbound_lands_is_refused() -> None:
    chat = Chat()
    walk(chat, [*RETURN[:13], "24 Dec 2026"])
    outcome = chat.text("15:30")  # the outbound lands at JFK at 16:05
    assert "before the flight before it lands" in said(outcome)
    assert chat.at == "1.departure"
    chat.press(chat.button("Change the date"))
    assert chat.at == "1.date"
    chat.text("25 Dec 2026")
    assert chat.at == "1.departure"
    chat.text("15:30")
    assert chat.at == "1.arrival"


def test_overlong_text_is_refused_with_the_limit() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:1])
    outcome = chat.text("A" * 201)
    assert "at most 200" in said(outcome)
    assert chat.at == "name.0"


def test_non_text_messages_get_a_hint_for_the_current_question() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:5])
    outcome = chat.feed(OtherMessage("sticker"))
    assert said(outcome).count("\n") == 0
    assert "sticker" in said(outcome) and "flight number" in said(outcome)
    assert chat.at == "0.number"


# ---------------------------------------------------------------- buttons


def test_a_button_of_a_finished_step_is_stale_and_changes_nothing() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:2])
    add = chat.button("Add another traveller")
    chat.text("no")
    before = chat.state
    outcome = chat.press(add)
    assert outcome == Outcome(before or "", (AnswerCallback("cb1", STALE),))


@pytest.mark.parametrize("data", ["", "garbage", "1:trip:oneway", "999999999999:sum:edit", "pay:"])
def test_garbage_buttons_are_answered_and_change_nothing(data: str) -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:2])
    before = chat.state
    outcome = chat.press(data)
    assert outcome.state == before
    assert len(outcome.replies) == 1 and isinstance(outcome.replies[0], AnswerCallback)
    assert not outcome.actions


def test_buttons_from_before_a_restart_of_the_dialogue_stay_stale() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:2])
    old = chat.button("Add another traveller")
    chat.command("cancel")
    walk(chat, ONE_WAY[:2])
    assert chat.press(old).replies == (AnswerCallback("cb1", STALE),)


def test_a_press_without_a_message_id_removes_nothing() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:2])
    outcome = chat.press(chat.button("No, on"), message_id=None)
    assert not [r for r in outcome.replies if isinstance(r, RemoveButtons)]


# ---------------------------------------------------------------- summary: pay, edit, cancel


def test_pay_buttons_emit_payment_actions_and_keep_the_state() -> None:
    chat = Chat()
    walk(chat, ONE_WAY)
    itinerary = created(chat.last).itinerary
    chat.orders(make_order("IB-7K3Q9P", itinerary, OrderStatus.AWAITING_PAYMENT))
    before = chat.state
    outcome = chat.press("pay:card:IB-7K3Q9P")
    assert outcome == Outcome(before or "", (AnswerCallback("cb1"),), (PayByCard("IB-7K3Q9P"),))
    outcome = chat.press("pay:usdc:IB-7K3Q9P")
    assert outcome.actions == (PayWithUsdc("IB-7K3Q9P"),)


@pytest.mark.parametrize("method", ["card", "usdc", "stars"])
def test_pay_buttons_of_paid_or_cancelled_orders_only_answer(method: str) -> None:
    chat = Chat(make_context(stars_price=250))
    walk(chat, ONE_WAY)
    itinerary = created(chat.last).itinerary
    for status, toast in [(OrderStatus.PAID, "already paid"), (OrderStatus.CANCELLED, "cancelled")]:
        chat.orders(make_order("IB-7K3Q9P", itinerary, status))
        before = chat.state
        outcome = chat.press(f"pay:{method}:IB-7K3Q9P")
        (answer,) = outcome.replies
        assert isinstance(answer, AnswerCallback) and toast in (answer.text or "")
        assert not outcome.actions and outcome.state == before


def pay_labels(outcome: Outcome) -> list[str]:
    """The labels of the summary's pay buttons, in the order shown."""
    return [
        b.text
        for m in sent(outcome)
        for row in m.keyboard
        for b in row
        if (b.data or "").startswith("pay:")
    ]


def test_stars_come_first_with_their_price_beside_the_money_price() -> None:
    chat = Chat(make_context(stars_price=250))
    outcome = walk(chat, ONE_WAY)
    assert pay_labels(outcome) == ["Pay 250 ⭐", "Pay by card", "Pay with USDC"]
    assert chat.button("250 ⭐") == "pay:stars:IB-7K3Q9P"
    assert "Price: 250 ⭐ or 10.00 USD · Order IB-7K3Q9P" in sent(outcome)[-1].text


def test_stars_only_shows_one_button_and_only_the_stars_price() -> None:
    chat = Chat(make_context(stars_price=250, card_enabled=False, usdc_enabled=False))
    outcome = walk(chat, ONE_WAY)
    assert pay_labels(outcome) == ["Pay 250 ⭐"]
    summary = sent(outcome)[-1].text
    assert "Price: 250 ⭐ · Order IB-7K3Q9P" in summary
    assert "USD" not in summary


def test_without_stars_there_is_no_stars_button_nor_price() -> None:
    outcome = walk(Chat(), ONE_WAY)
    assert pay_labels(outcome) == ["Pay by card", "Pay with USDC"]
    assert "⭐" not in said(outcome)
    assert "Price: 10.00 USD · Order IB-7K3Q9P" in said(outcome)


def test_a_stars_press_asks_for_an_invoice_and_answers_the_tap() -> None:
    chat = Chat(make_context(stars_price=250))
    walk(chat, ONE_WAY)
    itinerary = created(chat.last).itinerary
    chat.orders(make_order("IB-7K3Q9P", itinerary, OrderStatus.AWAITING_PAYMENT))
    before = chat.state
    outcome = chat.press(chat.button("⭐"))
    assert outcome == Outcome(before or "", (AnswerCallback("cb1"),), (PayWithStars("IB-7K3Q9P"),))


def test_a_stars_press_when_stars_are_not_offered_says_so() -> None:
    """A Stars button from before the owner turned Stars off (stars_price None) is answered
    with a toast and asks for nothing."""
    chat = Chat(make_context(stars_price=250))
    walk(chat, ONE_WAY)
    data = chat.button("⭐")
    chat.orders(make_order("IB-7K3Q9P", created(chat.last).itinerary, OrderStatus.AWAITING_PAYMENT))
    chat.ctx = dataclasses.replace(chat.ctx, stars_price=None)
    before = chat.state
    outcome = chat.press(data)
    assert outcome == Outcome(
        before or "",
        (AnswerCallback("cb1", "Payment in Telegram Stars is not available at the moment."),),
    )


@pytest.mark.parametrize(
    ("offered", "price", "cost"),
    [
        ({}, "10.00 USD", "It costs 10.00 USD, paid by card or in USDC."),
        (
            {"stars_price": 250},
            "250 ⭐ or 10.00 USD",
            "It costs 250 ⭐ or 10.00 USD, paid in Telegram Stars, by card or in USDC.",
        ),
        (
            {"stars_price": 250, "usdc_enabled": False},
            "250 ⭐ or 10.00 USD",
            "It costs 250 ⭐ or 10.00 USD, paid in Telegram Stars or by card.",
        ),
        (
            {"stars_price": 250, "card_enabled": False, "usdc_enabled": False},
            "250 ⭐",
            "It costs 250 ⭐, paid in Telegram Stars.",
        ),
        ({"card_enabled": False, "usdc_enabled": False}, "10.00 USD", "It costs 10.00 USD."),
    ],
)
def test_greeting_and_help_name_only_the_prices_and_methods_offered(
    offered: dict[str, object], price: str, cost: str
) -> None:
    """With Stars alone (Telegram's rule for digital goods), nothing the traveller reads
    speaks of cards or USDC."""
    chat = Chat(make_context(**offered))
    greeting = said(chat.command("start"))
    assert f"Hello! I make a PDF itinerary of the flights you tell me, for {price}." in greeting
    help_text = said(chat.command("help"))
    assert f"airports, local times and flight durations. {cost}\n\n" in help_text
    if price == "250 ⭐":
        assert "card" not in help_text + greeting and "USD" not in help_text + greeting


def test_help_in_russian_names_the_methods_offered() -> None:
    chat = Chat(make_context(stars_price=250, usdc_enabled=False, texts=texts_for("ru")))
    help_text = said(chat.command("help"))
    assert "Это стоит 250 ⭐ или 10.00 USD, оплата в Telegram Stars или картой." in help_text


def test_only_enabled_payment_methods_get_buttons() -> None:
    chat = Chat(make_context(card_enabled=False))
    walk(chat, ONE_WAY)
    labels = [b.text for m in sent(chat.last) for row in m.keyboard for b in row]
    assert "Pay with USDC" in labels and "Pay by card" not in labels
    outcome = chat.press("pay:card:IB-7K3Q9P")
    assert not outcome.actions


def test_edit_goes_back_to_one_field_and_returns_to_a_new_summary() -> None:
    chat = Chat()
    walk(chat, RETURN)
    first = created(chat.last)
    chat.orders(make_order("IB-7K3Q9P", first.itinerary, OrderStatus.AWAITING_PAYMENT))
    chat.press(chat.button("Edit"))
    assert chat.at == "edit"
    chat.press(chat.button("✎ 2. LH 401 JFK→FRA"))
    assert chat.at == "flight.1"
    outcome = chat.press(chat.button("flight number"))
    assert outcome.actions == (CancelOrder("IB-7K3Q9P"),)
    assert "LH 401" in said(outcome)  # the current answer is shown
    assert chat.at == "1.number"
    chat.ctx = dataclasses.replace(chat.ctx, new_reference="IB-22222")
    outcome = chat.text("LH 403")
    assert chat.at == "summary"
    second = created(outcome)
    assert second.reference == "IB-22222"
    assert second.itinerary.flights[1].flight_number == "LH 403"
    assert second.itinerary.flights[0] == first.itinerary.flights[0]
    assert second.itinerary.passengers == first.itinerary.passengers
    assert chat.button("card") == "pay:card:IB-22222"


def test_edit_never_cancels_a_paid_order() -> None:
    chat = Chat()
    walk(chat, ONE_WAY)
    itinerary = created(chat.last).itinerary
    chat.orders(make_order("IB-7K3Q9P", itinerary, OrderStatus.DELIVERED))
    chat.press(chat.button("Edit"))
    outcome = chat.press(chat.button("✎ JANE MARY DOE"))
    assert not outcome.actions
    assert "already paid" in said(outcome)
    assert chat.at == "name.0"


def test_an_edit_that_breaks_a_later_answer_asks_that_answer_again() -> None:
    chat = Chat()
    walk(chat, RETURN)
    chat.press(chat.button("Edit"))
    chat.press(chat.button("✎ 1."))
    chat.press(chat.button("date"))
    outcome = chat.text("5 Jan 2027")  # after the return of 2 Jan
    assert chat.at == "1.date"
    assert "the flight before it lands" in said(outcome)
    chat.text("10 Jan 2027")
    assert chat.at == "summary"


def test_adding_a_flight_on_the_edit_menu_asks_only_the_new_flight() -> None:
    chat = Chat()
    walk(chat, ONE_WAY)
    chat.press(chat.button("Edit"))
    chat.press(chat.button("Add a flight"))
    assert chat.at == "more"
    chat.press(chat.button("Next leg"))
    assert chat.at == "1.origin"
    walk(chat, RETURN[10:])
    assert chat.at == "summary"
    assert len(created(chat.last).itinerary.flights) == 2


def test_back_to_the_summary_keeps_the_order() -> None:
    chat = Chat()
    walk(chat, ONE_WAY)
    chat.press(chat.button("Edit"))
    old_edit = chat.button("✎ JANE")
    outcome = chat.press(chat.button("Back to the summary"))
    assert not outcome.actions
    assert chat.at == "summary"
    assert chat.button("card") == "pay:card:IB-7K3Q9P"
    assert chat.press(old_edit).replies == (AnswerCallback("cb3", STALE),)


def test_cancel_button_cancels_an_unpaid_order_and_drops_the_draft() -> None:
    chat = Chat()
    walk(chat, ONE_WAY)
    itinerary = created(chat.last).itinerary
    chat.orders(make_order("IB-7K3Q9P", itinerary, OrderStatus.AWAITING_PAYMENT))
    outcome = chat.press(chat.button("Cancel"))
    assert outcome.actions == (CancelOrder("IB-7K3Q9P"),)
    assert chat.at is None


@pytest.mark.parametrize("status", [OrderStatus.PAID, OrderStatus.DELIVERED])
def test_cancel_never_cancels_a_paid_order(status: OrderStatus) -> None:
    chat = Chat()
    walk(chat, ONE_WAY)
    itinerary = created(chat.last).itinerary
    chat.orders(make_order("IB-7K3Q9P", itinerary, status))
    outcome = chat.command("cancel")
    assert not outcome.actions
    assert "already paid" in said(outcome)
    assert chat.at is None


def test_cancel_mid_dialogue_drops_the_draft_and_idle_cancel_says_so() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:4])
    outcome = chat.command("cancel")
    assert not outcome.actions and chat.at is None
    assert "nothing to cancel" in said(chat.command("cancel"))


# ---------------------------------------------------------------- commands and state


def test_start_with_a_payload_is_a_deep_link_return_and_keeps_the_state() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:4])
    before = chat.state
    outcome = chat.command("start", "paid_IB-7K3Q9P")
    assert outcome == Outcome(before or "", (), (DeepLinkReturn("paid_IB-7K3Q9P"),))


def test_start_again_begins_a_fresh_draft() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:5])
    outcome = chat.command("start")
    assert chat.at == "name.0"
    assert "Hello" in said(outcome)


def test_help_status_and_unknown_commands() -> None:
    chat = Chat()
    assert "not an airline ticket" in said(chat.command("help"))
    assert "No itinerary in progress" in said(chat.command("status"))
    walk(chat, ONE_WAY[:4])
    assert "arrival airport" in said(chat.command("status")).lower()
    assert "/orders" in said(chat.command("frobnicate"))
    walk(chat, ONE_WAY[4:])
    chat.orders(make_order("IB-7K3Q9P", created(chat.last).itinerary, OrderStatus.AWAITING_PAYMENT))
    assert "IB-7K3Q9P" in said(chat.command("status"))
    assert "waiting for payment" in said(chat.command("status"))


def test_orders_lists_orders_with_pdf_buttons_for_paid_ones() -> None:
    chat = Chat()
    itinerary = created(walk(chat, ONE_WAY)).itinerary
    chat.orders(
        make_order("IB-AAAAAA", itinerary, OrderStatus.DELIVERED),
        make_order("IB-BBBBBB", itinerary, OrderStatus.CANCELLED),
        make_order("IB-CCCCCC", itinerary, OrderStatus.PAID),
    )
    outcome = chat.command("orders")
    text = said(outcome)
    assert "IB-AAAAAA · FRA → JFK" in text and "IB-BBBBBB" in text and "cancelled" in text
    data = [b.data for m in sent(outcome) for row in m.keyboard for b in row]
    assert data == ["pdf:IB-AAAAAA", "pdf:IB-CCCCCC"]
    outcome = chat.press("pdf:IB-AAAAAA")
    assert outcome.actions == (ResendDocument("IB-AAAAAA"),)
    outcome = chat.press("pdf:IB-BBBBBB")
    assert not outcome.actions and len(outcome.replies) == 1


def test_the_stored_state_resumes_at_the_same_question() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:6])
    stored = chat.state
    assert current_question(stored) == "0.date"
    restarted = Chat()
    restarted.state = json.loads(json.dumps(stored))
    restarted.text("24 Dec 2026")
    assert restarted.at == "0.departure"
    assert json.loads(stored or "")["v"] == 2


@pytest.mark.parametrize("state", [None, "", "not json", "[]", '{"v": 99}', '{"v":1,"seq":"x"}'])
def test_missing_or_corrupt_state_starts_afresh(state: str | None) -> None:
    outcome = step(state, TextMessage("hello"), make_context())
    assert current_question(outcome.state) is None
    assert "/start" in said(outcome)
    assert current_question(initial_state()) is None


def test_a_stored_date_that_has_passed_is_asked_again_before_the_summary() -> None:
    chat = Chat()
    walk(chat, ONE_WAY[:-2])
    chat.ctx = dataclasses.replace(chat.ctx, now=datetime(2026, 12, 25, tzinfo=UTC))
    outcome = chat.text("16:05")
    assert chat.at == "0.date"
    assert "in the past" in said(outcome)


def test_the_date_question_gives_examples_in_the_future() -> None:
    chat = Chat()
    outcome = walk(chat, ONE_WAY[:6])
    assert "E.g. 1 Jul 2026, 01.07.2026 or 2026-07-01." in said(outcome)


def test_start_again_keeps_an_unpaid_order_payable() -> None:
    chat = Chat()
    itinerary = created(walk(chat, ONE_WAY)).itinerary
    chat.orders(make_order("IB-7K3Q9P", itinerary, OrderStatus.AWAITING_PAYMENT))
    outcome = chat.command("start")
    assert not outcome.actions
    assert "IB-7K3Q9P still waits for payment" in said(outcome)
    assert chat.press("pay:card:IB-7K3Q9P").actions == (PayByCard("IB-7K3Q9P"),)
