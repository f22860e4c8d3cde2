"""Real trips in the dialogue: several travellers, connections, legs, airline names, the rules
between flights, and changing or removing any traveller or flight before paying."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from itinerabot.airlines import airline_name, known_codes
from itinerabot.dialogue import current_question, step
from itinerabot.dialogue.draft import Draft
from itinerabot.dialogue.types import (
    AnswerCallback,
    CancelOrder,
    CreateOrder,
    TextMessage,
    TripRules,
)
from itinerabot.models import OrderStatus, TripShape
from tests.chat import Chat, created, make_context, make_order, said, sent, walk

#: an airline code the airline data does not know
UNKNOWN = next(f"{a}{b}" for a in "ABCDEFGH" for b in "0123456789" if not airline_name(a + b))
TWO_TRAVELLERS = ["/start", "Jane Doe", "add", "John O'Neill", "no"]
#: Frankfurt → Doha → Bangkok and back, one connection each way (Qatar Airways)
OUT_VIA_DOHA = ["FRA", "DOH", "QR 68", "24 Dec 2026", "16:05", "23:30"]
OUT_CONNECTION = ["connection", "BKK", "QR 830", "25 Dec 2026", "02:00", "12:45"]
BACK_VIA_DOHA = ["next leg", "BKK", "DOH", "QR 831", "2 Jan 2027", "20:00", "23:15"]
BACK_CONNECTION = ["connection", "FRA", "QR 69", "3 Jan 2027", "01:40", "06:30"]
RETURN_WITH_CONNECTIONS = [
    *TWO_TRAVELLERS,
    *OUT_VIA_DOHA,
    *OUT_CONNECTION,
    *BACK_VIA_DOHA,
    *BACK_CONNECTION,
    "done",
]
#: Berlin → Paris → Rome → Athens → Berlin: four legs, no connections
MULTI_CITY = [
    "/start",
    "Anna Schmidt",
    "no",
    *["BER", "CDG", "AF 1735", "10 Aug 2026", "07:00", "09:00"],
    *["next leg", "CDG", "FCO", "AF 1404", "13 Aug 2026", "10:00", "12:05"],
    *["next leg", "FCO", "ATH", "AZ 720", "16 Aug 2026", "15:00", "18:15"],
    *["next leg", "ATH", "BER", "A3 822", "20 Aug 2026", "09:00", "11:05"],
    "done",
]


def test_a_return_trip_with_a_connection_each_way_and_two_travellers() -> None:
    chat = Chat(make_context(per_traveller=True, stars_price=250))
    outcome = walk(chat, RETURN_WITH_CONNECTIONS)
    order = created(outcome)
    itinerary = order.itinerary
    assert itinerary.passengers == ("JANE DOE", "JOHN O'NEILL")
    assert itinerary.shape is TripShape.RETURN
    assert [[f.flight_number for f in leg] for leg in itinerary.legs] == [
        ["QR 68", "QR 830"],
        ["QR 831", "QR 69"],
    ]
    assert {f.airline for f in itinerary.flights} == {"Qatar Airways"}
    assert order.quantity == 2
    summary = sent(outcome)[-1].text
    assert "Travellers (2):\n1. JANE DOE\n2. JOHN O'NEILL" in summary
    assert "Outbound: FRA → DOH → BKK" in summary and "Return: BKK → DOH → FRA" in summary
    assert "Connection at DOH: 2 h 30 min on the ground" in summary
    assert "Connection at DOH: 2 h 25 min on the ground" in summary
    assert "Flight 2 QR 830 · Qatar Airways" in summary
    assert "Price: 500 ⭐ (2 × 250 ⭐) or 20.00 USD (2 × 10.00 USD)" in summary
    assert chat.button("Pay 500 ⭐") == "pay:stars:IB-7K3Q9P"


def test_priced_per_document_several_travellers_cost_the_price_once() -> None:
    chat = Chat()
    outcome = walk(chat, RETURN_WITH_CONNECTIONS)
    assert created(outcome).quantity == 1
    assert "Price: 10.00 USD · Order" in sent(outcome)[-1].text


def test_a_multi_city_trip_of_four_legs() -> None:
    chat = Chat()
    outcome = walk(chat, MULTI_CITY)
    itinerary = created(outcome).itinerary
    assert itinerary.shape is TripShape.MULTI_CITY
    assert [len(leg) for leg in itinerary.legs] == [1, 1, 1, 1]
    route = [f.origin.iata for f in itinerary.flights] + [itinerary.flights[-1].destination.iata]
    assert route == ["BER", "CDG", "FCO", "ATH", "BER"]
    summary = sent(outcome)[-1].text
    for heading in ("Leg 1: BER → CDG", "Leg 2: CDG → FCO", "Leg 3: FCO → ATH", "Leg 4: ATH → BER"):
        assert heading in summary
    assert "Connection at" not in summary


def test_a_one_way_trip_with_two_connections_is_one_leg() -> None:
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", *OUT_VIA_DOHA, *OUT_CONNECTION])
    walk(chat, ["connection", "SYD", "QF 24", "25 Dec 2026", "15:00", "+1"])
    assert chat.at == "2.arrival"  # "+1" alone is no time
    outcome = walk(chat, ["02:00 +1", "done"])
    itinerary = created(outcome).itinerary
    assert itinerary.shape is TripShape.ONE_WAY
    assert [f.destination.iata for f in itinerary.legs[0]] == ["DOH", "BKK", "SYD"]
    assert "One-way: FRA → DOH → BKK → SYD" in sent(outcome)[-1].text


# ---------------------------------------------------------------- the rules between flights


def test_a_connection_departs_from_where_the_flight_before_landed_and_is_not_asked() -> None:
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", *OUT_VIA_DOHA])
    outcome = chat.press(chat.button("Connecting flight from DOH"))
    assert chat.at == "1.destination"
    assert said(outcome).startswith("Flight 2 from DOH – arrival airport?")
    chat.text("BKK")
    assert "Flight 2 (connecting at DOH) DOH → BKK – flight number?" in said(chat.last)


def test_a_connection_follows_a_changed_arrival_airport() -> None:
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", *OUT_VIA_DOHA, *OUT_CONNECTION, "done"])
    chat.press(chat.button("Edit"))
    chat.press(chat.button("✎ 1."))
    chat.press(chat.button("to"))
    outcome = chat.text("AUH")
    itinerary = created(outcome).itinerary
    first, second = itinerary.flights
    assert first.destination.iata == second.origin.iata == "AUH"
    assert len(itinerary.legs) == 1


def test_the_origin_of_a_connection_cannot_be_edited() -> None:
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", *OUT_VIA_DOHA, *OUT_CONNECTION, "done"])
    chat.press(chat.button("Edit"))
    chat.press(chat.button("✎ 2."))
    labels = [b.text for m in sent(chat.last) for row in m.keyboard for b in row]
    assert "from" not in labels and "to" in labels
    stamp = json.loads(chat.state or "")["seq"]
    assert chat.press(f"{stamp}:ef:1.origin").replies == (
        AnswerCallback("cb3", "That step is already done."),
    )


@pytest.mark.parametrize(("departs", "refused"), [("23:59", True), ("00:00", False)])
def test_a_connection_needs_the_minimum_connection_time(departs: str, refused: bool) -> None:
    chat = Chat()  # 30 minutes; the flight before lands 23:30 on 24 Dec
    walk(chat, ["/start", "Jane Doe", "no", *OUT_VIA_DOHA, "connection", "BKK", "QR 830"])
    walk(chat, ["25 Dec 2026" if departs == "00:00" else "24 Dec 2026"])
    outcome = chat.text(departs)
    if refused:
        assert "only 29 min after the flight before lands" in said(outcome)
        assert "at least 30 min" in said(outcome)
        assert chat.at == "1.departure"
        labels = [b.text for m in sent(outcome) for row in m.keyboard for b in row]
        assert labels == ["Change the date"]  # the next leg would not fit either
    else:
        assert chat.at == "1.arrival"


def test_the_minimum_connection_time_is_the_shops_setting() -> None:
    rules = TripRules(min_connection=timedelta(minutes=90))
    chat = Chat(make_context(trips=rules))
    walk(chat, ["/start", "Jane Doe", "no", *OUT_VIA_DOHA, "connection", "BKK", "QR 830"])
    outcome = walk(chat, ["25 Dec 2026", "00:30"])
    assert "at least 1 h 30 min" in said(outcome)
    chat.text("01:00")
    assert chat.at == "1.arrival"


def test_a_layover_over_24_hours_is_a_new_leg_not_a_connection() -> None:
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", *OUT_VIA_DOHA, "connection", "BKK", "QR 830"])
    outcome = walk(chat, ["25 Dec 2026", "23:31"])  # 24 h 1 min after landing
    assert "A stop of more than 24 hours is the next leg" in said(outcome)
    assert chat.button("Make it the next leg")
    assert chat.at == "1.departure"
    chat.text("23:30")  # exactly 24 h is still a connection
    assert chat.at == "1.arrival"


def test_a_connection_day_more_than_a_day_later_offers_to_make_it_the_next_leg() -> None:
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", *OUT_VIA_DOHA, "connection", "BKK", "QR 830"])
    outcome = chat.text("27 Dec 2026")
    assert "is the next leg, not a connection" in said(outcome)
    assert chat.at == "1.date"
    chat.press(chat.button("Make it the next leg"))
    assert chat.at == "1.date"
    walk(chat, ["27 Dec 2026", "02:00", "12:45", "done"])
    itinerary = created(chat.last).itinerary
    assert [len(leg) for leg in itinerary.legs] == [1, 1]
    assert itinerary.legs[1][0].origin.iata == "DOH"


def test_the_date_buttons_of_a_connection_offer_the_landing_day_and_the_next() -> None:
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", *OUT_VIA_DOHA, "connection", "BKK", "QR 830"])
    assert chat.at == "1.date"
    chat.press(chat.button("Next day, Fri 25 Dec 2026"))
    assert chat.at == "1.departure"


def test_the_next_leg_cannot_leave_before_the_leg_before_ends() -> None:
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", *OUT_VIA_DOHA, "next leg", "DOH", "BKK", "QR 830"])
    outcome = chat.text("23 Dec 2026")
    assert "the flight before it lands Thu 24 Dec 2026, 23:30" in said(outcome)
    outcome = walk(chat, ["24 Dec 2026", "23:00"])
    assert "before the flight before it lands" in said(outcome)
    outcome = chat.text("23:45")
    assert "only 15 min after the flight before lands" in said(outcome)
    chat.press(chat.button("Change the date"))
    walk(chat, ["25 Dec 2026", "01:00", "11:00"])
    assert chat.at == "more"


def test_the_next_leg_may_start_days_later_and_elsewhere() -> None:
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", *OUT_VIA_DOHA, "next leg", "AUH", "BKK", "EY 400"])
    outcome = walk(chat, ["30 Dec 2026", "09:00", "18:30", "done"])
    itinerary = created(outcome).itinerary
    assert itinerary.shape is TripShape.MULTI_CITY
    assert "Leg 2: AUH → BKK" in sent(outcome)[-1].text


def test_the_most_flights_per_document_is_the_shops_setting() -> None:
    chat = Chat(make_context(trips=TripRules(max_flights=2)))
    walk(chat, ["/start", "Jane Doe", "no", *OUT_VIA_DOHA, *OUT_CONNECTION])
    assert chat.at == "more"
    assert "That makes 2 flights, the most one itinerary holds." in said(chat.last)
    labels = [b.text for m in sent(chat.last) for row in m.keyboard for b in row]
    assert labels == ["Done: show the summary"]
    outcome = chat.text("connection")
    assert "Press a button" in said(outcome) and chat.at == "more"
    chat.text("done")
    assert chat.at == "summary"
    chat.press(chat.button("Edit"))
    assert "Add a flight" not in [
        b.text for m in sent(chat.last) for row in m.keyboard for b in row
    ]


def test_the_most_travellers_is_the_shops_setting() -> None:
    chat = Chat(make_context(trips=TripRules(max_travellers=2)))
    outcome = walk(chat, ["/start", "Jane Doe", "add", "John Doe"])
    assert "That makes 2 travellers, the most one itinerary holds." in said(outcome)
    assert chat.text("add").replies and chat.at == "travellers"
    chat.text("no")
    assert chat.at == "0.origin"


def test_nine_travellers_each_with_a_passport_name() -> None:
    chat = Chat(make_context(per_traveller=True))
    walk(chat, ["/start", "Jane Doe"])
    for n in range(2, 10):
        walk(chat, ["add", f"Traveller {'X' * n}"])
    assert chat.at == "travellers"
    outcome = walk(chat, ["Traveller Ten"])  # typing a name is not an answer here
    assert "Press Add another traveller" in said(outcome)
    walk(chat, ["no", "FRA", "JFK", "LH 400", "24 Dec 2026", "13:15", "16:05", "done"])
    order = created(chat.last)
    assert len(order.itinerary.passengers) == 9 and order.quantity == 9
    assert "90.00 USD (9 × 10.00 USD)" in sent(chat.last)[-1].text


def test_a_second_travellers_name_follows_the_passport_rules() -> None:
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "add"])
    assert chat.at == "name.1"
    assert "Traveller 2: name as in the passport" in said(chat.last)
    outcome = chat.text("Jürgen Groß")
    assert "JURGEN GROSS" in said(outcome) and chat.at == "name.1"


# ---------------------------------------------------------------- airline names


def test_a_known_airline_is_named_beside_its_flight_number() -> None:
    chat = Chat()
    outcome = walk(chat, ["/start", "Jane Doe", "no", "FRA", "JFK", "lh400"])
    assert "Flight number: LH 400 · Lufthansa" in said(outcome)
    assert chat.at == "0.date"


def test_an_unknown_airline_is_asked_once_per_code() -> None:
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", "FRA", "DOH", f"{UNKNOWN} 68"])
    assert chat.at == "0.airline"
    assert f"I don't know the airline with the code {UNKNOWN}" in said(chat.last)
    outcome = chat.text("<b>Bad</b>")
    assert "Latin letters, digits" in said(outcome) and chat.at == "0.airline"
    walk(
        chat,
        ["Example Air", "24 Dec 2026", "16:05", "23:30", "connection", "BKK", f"{UNKNOWN} 830"],
    )
    assert chat.at == "1.date"  # the same code is not asked again
    outcome = walk(chat, ["25 Dec 2026", "02:00", "12:45", "done"])
    assert [f.airline for f in created(outcome).itinerary.flights] == ["Example Air"] * 2
    assert f"Flight 2 {UNKNOWN} 830 · Example Air" in sent(outcome)[-1].text


def test_an_unknown_airline_can_be_skipped() -> None:
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", "FRA", "DOH", f"{UNKNOWN} 68"])
    chat.press(chat.button("Skip"))
    assert chat.at == "0.date"
    outcome = walk(chat, ["24 Dec 2026", "16:05", "23:30", "done"])
    (flight,) = created(outcome).itinerary.flights
    assert flight.airline is None
    assert f"Flight {UNKNOWN} 68\n" in sent(outcome)[-1].text


# ---------------------------------------------------------------- editing before paying


def summary_of_return_with_connections(chat: Chat) -> None:
    walk(chat, RETURN_WITH_CONNECTIONS)
    itinerary = created(chat.last).itinerary
    chat.orders(make_order("IB-7K3Q9P", itinerary, OrderStatus.AWAITING_PAYMENT))
    chat.ctx = dataclasses.replace(chat.ctx, new_reference="IB-22222")
    chat.press(chat.button("Edit"))


def test_changing_the_second_travellers_name_keeps_everything_else() -> None:
    chat = Chat()
    summary_of_return_with_connections(chat)
    outcome = chat.press(chat.button("✎ 2. JOHN O'NEILL"))
    assert outcome.actions == (CancelOrder("IB-7K3Q9P"),)
    assert chat.at == "name.1"
    outcome = chat.text("John Smith")
    assert chat.at == "summary"
    assert created(outcome).itinerary.passengers == ("JANE DOE", "JOHN SMITH")
    assert len(created(outcome).itinerary.flights) == 4


def test_removing_a_traveller() -> None:
    chat = Chat()
    summary_of_return_with_connections(chat)
    chat.press(chat.button("Remove"))  # the first Remove is the first traveller's
    assert chat.at == "summary"
    outcome = chat.last
    assert "Removed JANE DOE from the itinerary." in said(outcome)
    assert "Order IB-7K3Q9P is cancelled" in said(outcome)
    assert created(outcome).itinerary.passengers == ("JOHN O'NEILL",)
    chat.orders()
    chat.press(chat.button("Edit"))
    labels = [b.text for m in sent(chat.last) for row in m.keyboard for b in row]
    assert "Remove" not in labels  # never the only traveller


def test_changing_a_connections_number_and_times_from_its_flight_menu() -> None:
    chat = Chat()
    summary_of_return_with_connections(chat)
    chat.press(chat.button("✎ 2. QR 830 DOH→BKK"))
    assert chat.at == "flight.1"
    chat.press(chat.button("departure time"))
    outcome = chat.text("01:00")  # the arrival still fits: straight back to the summary
    assert chat.at == "summary"
    assert "Connection at DOH: 1 h 30 min on the ground" in sent(outcome)[-1].text
    assert created(outcome).itinerary.flights[1].departure_local == datetime(2026, 12, 25, 1, 0)


def test_a_change_that_breaks_the_connection_after_it_asks_that_again() -> None:
    chat = Chat()
    summary_of_return_with_connections(chat)
    chat.press(chat.button("✎ 1. QR 68 FRA→DOH"))
    chat.press(chat.button("arrival time"))
    outcome = chat.text("01:45 +1")  # now lands 15 min before the connection leaves
    assert chat.at == "1.departure"
    assert "only 15 min after the flight before lands" in said(outcome)


def test_removing_the_middle_connection_makes_the_next_flight_start_a_leg() -> None:
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", *OUT_VIA_DOHA, *OUT_CONNECTION])
    walk(chat, ["connection", "SYD", "TG 475", "25 Dec 2026", "15:00", "02:00 +1", "done"])
    chat.press(chat.button("Edit"))
    chat.press(chat.button("✎ 2. QR 830 DOH→BKK"))
    outcome = chat.press(chat.button("Remove this flight"))
    assert "Removed flight QR 830 DOH→BKK." in said(outcome)
    itinerary = created(outcome).itinerary
    assert [[f.flight_number for f in leg] for leg in itinerary.legs] == [["QR 68"], ["TG 475"]]
    assert itinerary.legs[1][0].origin.iata == "BKK"


def test_removing_the_first_flight_of_a_leg_keeps_its_connection_as_the_leg() -> None:
    chat = Chat()
    summary_of_return_with_connections(chat)
    chat.press(chat.button("✎ 3. QR 831 BKK→DOH"))
    chat.press(chat.button("Remove this flight"))
    itinerary = created(chat.last).itinerary
    assert [[f.flight_number for f in leg] for leg in itinerary.legs] == [
        ["QR 68", "QR 830"],
        ["QR 69"],
    ]


def one_flight_menu() -> Chat:
    """A chat at the menu of the one flight of a one-way trip (FRA → JFK, LH 400)."""
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", "FRA", "JFK", "LH 400", "24 Dec 2026", "13:15"])
    walk(chat, ["16:05", "done"])
    chat.press(chat.button("Edit"))
    chat.press(chat.button("✎ 1."))
    return chat


def test_the_only_flight_cannot_be_removed() -> None:
    chat = one_flight_menu()
    labels = [b.text for m in sent(chat.last) for row in m.keyboard for b in row]
    assert "Remove this flight" not in labels and "Back" in labels
    chat.press(chat.button("Back"))
    assert chat.at == "edit"


def test_adding_a_traveller_from_the_edit_menu_returns_to_the_summary() -> None:
    chat = Chat(make_context(per_traveller=True))
    summary_of_return_with_connections(chat)
    chat.press(chat.button("Add another traveller"))
    assert chat.at == "name.2"
    outcome = chat.text("Mia Doe")
    assert chat.at == "summary"
    order = created(outcome)
    assert order.itinerary.passengers[-1] == "MIA DOE" and order.quantity == 3


# ---------------------------------------------------------------- a state stored before trips


def first_schema_state(at: str, trip: str | None = "return") -> str:
    """A stored state of the first schema, as a chat at `at` left it before this version."""
    flight = {
        "origin": None,
        "destination": None,
        "number": None,
        "date": None,
        "departure": None,
        "arrival": None,
        "arrival_offset": None,
    }
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", "FRA", "JFK", "LH 400", "24 Dec 2026", "13:15"])
    walk(chat, ["16:05"])
    out = json.loads(chat.state or "")["flights"][0]
    del out["connection"], out["airline"]
    flights = [out, dict(flight, origin=out["destination"], destination=out["origin"])]
    if trip is None:
        flights = [flight, flight]
    return json.dumps(
        {
            "v": 1,
            "seq": 40,
            "at": at,
            "passenger": "JANE DOE",
            "trip": trip,
            "flights": flights,
            "order": None,
        }
    )


def test_a_chat_in_the_middle_of_the_first_schemas_return_flight_carries_on() -> None:
    state = first_schema_state("1.number")
    assert current_question(state) == "1.number"
    ctx = make_context()
    outcome = step(state, TextMessage("LH 401"), ctx)
    assert current_question(outcome.state) == "1.date"
    for answer in ("2 Jan 2027", "17:50", "07:35", "done"):
        outcome = step(outcome.state, TextMessage(answer), ctx)
    (order,) = [a for a in outcome.actions if isinstance(a, CreateOrder)]
    assert order.itinerary.shape is TripShape.RETURN
    assert order.itinerary.passengers == ("JANE DOE",)


def test_a_first_schema_chat_at_the_trip_question_goes_on_to_the_flights() -> None:
    state = first_schema_state("trip", trip=None)
    assert current_question(state) == "travellers"
    outcome = step(state, TextMessage("no"), make_context())
    assert current_question(outcome.state) == "0.origin"


def test_departure_and_arrival_times_are_kept_as_local_times() -> None:
    chat = Chat()
    walk(chat, MULTI_CITY)
    last = created(chat.last).itinerary.flights[-1]
    assert last.departure_local == datetime(2026, 8, 20, 9, 0)
    assert last.arrival_local == datetime(2026, 8, 20, 11, 5)


def test_a_looked_up_airline_name_can_be_corrected() -> None:
    chat = one_flight_menu()
    outcome = chat.press(chat.button("airline"))
    assert "LH 400: which airline's name goes beside it" in said(outcome)
    assert "Now: Lufthansa." in said(outcome)
    outcome = chat.text("Lufthansa CityLine")
    assert "Flight LH 400 · Lufthansa CityLine" in sent(outcome)[-1].text


def test_a_draft_over_lowered_limits_asks_to_remove_a_flight_before_any_order() -> None:
    """The shop lowered trips.max_flights while this traveller was typing: no order is made
    for more flights than the shop allows; the edit menu says what to do."""
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", *OUT_VIA_DOHA, *OUT_CONNECTION])
    chat.ctx = dataclasses.replace(chat.ctx, trips=TripRules(max_flights=1))
    outcome = chat.text("done")
    assert not outcome.actions and chat.at == "edit"
    assert "This itinerary has 2 flights, but one holds at most 1." in said(outcome)
    chat.press(chat.button("✎ 2."))
    outcome = chat.press(chat.button("Remove this flight"))
    assert chat.at == "summary"
    assert len(created(outcome).itinerary.flights) == 1


# ---------------------------------------------------------------- clock changes


def test_a_connection_across_the_spring_clock_change_counts_real_minutes() -> None:
    """28 Mar 2027 in Frankfurt: 02:00 becomes 03:00. Landing 01:45 and leaving 03:05 is 20
    real minutes on the ground, though the clocks show 1 h 20 min."""
    chat = Chat(make_context(now=datetime(2027, 3, 1, tzinfo=UTC)))
    walk(chat, ["/start", "Jane Doe", "no", "LHR", "FRA", "BA 902", "28 Mar 2027", "00:00"])
    walk(chat, ["01:45", "connection", "MUC", "LH 100", "28 Mar 2027"])
    outcome = chat.text("03:05")
    assert "only 20 min after the flight before lands" in said(outcome)
    chat.text("03:15")
    assert chat.at == "1.arrival"


def test_a_connection_across_the_autumn_clock_change_over_24_real_hours_is_the_next_leg() -> None:
    """25 Oct 2026 in Frankfurt: 03:00 becomes 02:00 again. Landing at 01:00 that night and
    leaving at 00:30 the next night is 23 h 30 min by the clocks but 24 h 30 min real."""
    chat = Chat(make_context(now=datetime(2026, 10, 1, tzinfo=UTC)))
    walk(chat, ["/start", "Jane Doe", "no", "LHR", "FRA", "BA 902", "24 Oct 2026", "22:00"])
    walk(chat, ["01:00 +1", "connection", "MUC", "LH 100", "26 Oct 2026"])
    outcome = chat.text("00:30")
    assert "That is 24 h 30 min after the flight before lands" in said(outcome)
    assert chat.at == "1.departure"
    chat.press(chat.button("Change the date"))
    walk(chat, ["25 Oct 2026", "23:55"])  # 23 h 55 min real
    assert chat.at == "1.arrival"


def test_a_flight_within_one_zone_across_the_clock_change_is_timed_in_real_minutes() -> None:
    """FRA → MUC leaving 01:55 and landing 03:05 on 28 Mar 2027 flies 10 minutes."""
    chat = Chat(make_context(now=datetime(2027, 3, 1, tzinfo=UTC)))
    walk(chat, ["/start", "Jane Doe", "no", "FRA", "MUC", "LH 100", "28 Mar 2027", "01:55"])
    outcome = chat.text("03:05")
    assert "at least 15 min" in said(outcome) and chat.at == "0.arrival"
    outcome = chat.text("03:15")
    assert "Flight time 20 min" in said(outcome)


def test_skipping_the_airline_of_a_known_code_leaves_the_number_alone() -> None:
    chat = one_flight_menu()
    chat.press(chat.button("airline"))
    outcome = chat.press(chat.button("Skip"))
    (flight,) = created(outcome).itinerary.flights
    assert flight.airline is None
    assert "Flight LH 400\n" in sent(outcome)[-1].text


def test_an_edit_button_pressed_outside_the_menus_changes_nothing() -> None:
    """A forged "change this answer" press while a new traveller's name is asked would leave
    that name unanswered behind the question it jumps to."""
    chat = Chat()
    summary_of_return_with_connections(chat)
    chat.press(chat.button("Add another traveller"))
    assert chat.at == "name.2"
    stamp = json.loads(chat.state or "")["seq"]
    before = chat.state
    outcome = chat.press(f"{stamp}:ef:0.number")
    assert outcome.state == before and not outcome.actions


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("passengers", 0), "A\\nB" * 30),
        (("passengers", 0), ""),
        (("flights", 0, "number"), "LH " + "4" * 190),
        (("flights", 0, "airline"), "Аэрофлот"),
        (("flights", 0, "airline"), "Air\nExample"),
    ],
)
def test_a_stored_state_with_an_answer_no_traveller_could_type_is_refused(
    path: tuple[str | int, ...], value: str
) -> None:
    """A stored state is trusted no more than typed text: a forged name, number or airline
    never reaches an order; the chat starts afresh."""
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", "FRA", "JFK", "LH 400", "24 Dec 2026", "13:15"])
    walk(chat, ["16:05"])
    raw = json.loads(chat.state or "")
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert current_question(json.dumps(raw)) is None  # unreadable: refused
    outcome = step(json.dumps(raw), TextMessage("done"), make_context())
    assert not outcome.actions


def test_a_summary_shown_again_says_what_its_stored_order_will_charge() -> None:
    """The shop switched from per-traveller to per-document pricing (and raised the price)
    after the order was made: Edit → Back shows the order's own total, which is what Stripe,
    Circle and the Stars invoice (stars.price × the order's quantity) will ask."""
    chat = Chat(make_context(per_traveller=True, stars_price=250))
    walk(chat, RETURN_WITH_CONNECTIONS)
    order = created(chat.last)
    stored = make_order("IB-7K3Q9P", order.itinerary, OrderStatus.AWAITING_PAYMENT)
    chat.orders(dataclasses.replace(stored, price=Decimal("20.00"), quantity=2))
    chat.ctx = dataclasses.replace(chat.ctx, per_traveller=False, price=Decimal("12.00"))
    chat.press(chat.button("Edit"))
    outcome = chat.press(chat.button("Back to the summary"))
    assert not outcome.actions
    assert "Price: 500 ⭐ (2 × 250 ⭐) or 20.00 USD (2 × 10.00 USD)" in sent(outcome)[-1].text
    assert chat.button("Pay 500 ⭐") == "pay:stars:IB-7K3Q9P"


def test_an_edit_that_breaks_the_next_flight_offers_a_way_back_to_the_menu() -> None:
    """A typo in flight 1's arrival leaves the connection 10 minutes: the traveller is asked
    flight 2's departure again, and may rather go back and fix flight 1."""
    chat = Chat()
    summary_of_return_with_connections(chat)
    chat.press(chat.button("✎ 1. QR 68 FRA→DOH"))
    chat.press(chat.button("arrival time"))
    outcome = chat.text("01:50 +1")
    assert chat.at == "1.departure" and "only 10 min" in said(outcome)
    chat.press(chat.button("Change something else instead"))
    assert chat.at == "edit"
    chat.press(chat.button("✎ 1. QR 68 FRA→DOH"))
    chat.press(chat.button("arrival time"))
    outcome = chat.text("23:30")
    assert chat.at == "summary"
    assert created(outcome).itinerary.flights[0].arrival_local == datetime(2026, 12, 24, 23, 30)


def test_every_airline_name_of_the_data_survives_the_stored_state() -> None:
    """A looked-up name may hold what a traveller could not type (Widerøe, AeroMéxico,
    Budapest Aircraft Services/Manx2): the draft holding it must still read back."""
    draft = Draft()
    flight = draft.flights[0]
    for code in sorted(known_codes()):
        flight.number, flight.airline = f"{code} 100", airline_name(code)
        assert Draft.loads(draft.dumps()).flights[0].airline == airline_name(code), code


def test_a_flight_of_an_airline_with_an_accented_name_reaches_the_summary() -> None:
    chat = Chat()
    outcome = walk(chat, ["/start", "Juan Perez", "no", "MEX", "CUN", "AM 400"])
    assert "Flight number: AM 400 · AeroMéxico" in said(outcome) and chat.at == "0.date"
    outcome = walk(chat, ["24 Dec 2026", "08:00", "10:30", "done"])
    assert created(outcome).itinerary.flights[0].airline == "AeroMéxico"


def test_a_refused_flight_time_is_told_in_real_hours_across_the_clock_change() -> None:
    """FRA → MUC on 24 Oct 2026 at 10:00, landing 05:30 the next day: 19 h 30 min by the
    clocks but 20 h 30 min real (the clocks went back an hour): refused, and said so."""
    chat = Chat(make_context(now=datetime(2026, 10, 1, tzinfo=UTC)))
    walk(chat, ["/start", "Jane Doe", "no", "FRA", "MUC", "LH 100", "24 Oct 2026", "10:00"])
    outcome = chat.text("05:30 +1")
    assert "That makes the flight 20 h 30 min long" in said(outcome)


def test_status_while_changing_the_second_traveller_counts_every_answer_given() -> None:
    chat = Chat()
    summary_of_return_with_connections(chat)
    chat.press(chat.button("✎ 2. JOHN O'NEILL"))
    text = said(chat.command("status"))
    assert "32 of 32 answers given" in text  # 2 names, the travellers choice, 4 × 7, done
    assert "Waiting for: traveller 2: the passenger name." in text


def test_the_orders_list_shows_where_each_leg_starts() -> None:
    """Out to JFK, back from Newark: the route says both airports, as the summary does."""
    chat = Chat()
    walk(chat, ["/start", "Jane Doe", "no", "FRA", "JFK", "LH 400", "24 Dec 2026", "13:15"])
    walk(chat, ["16:05", "next leg", "EWR", "FRA", "UA 960", "2 Jan 2027", "18:00", "07:45"])
    itinerary = created(chat.text("done")).itinerary
    chat.orders(make_order("IB-7K3Q9P", itinerary, OrderStatus.DELIVERED))
    assert "IB-7K3Q9P · FRA → JFK → EWR → FRA, Thu 24 Dec 2026" in said(chat.command("orders"))


def test_help_names_the_shops_own_limit_of_travellers() -> None:
    chat = Chat(make_context(trips=TripRules(max_travellers=2)))
    assert "a neat PDF itinerary: up to 2 travellers, one-way" in said(chat.command("help"))
