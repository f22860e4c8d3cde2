"""Reading names, flight numbers, dates and times, and checking flight timing across zones."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from itinerabot.dialogue.validate import (
    Arrival,
    ArrivalInput,
    Invalid,
    check_departure,
    local_time_exists,
    parse_airline_name,
    parse_arrival,
    parse_date,
    parse_flight_number,
    parse_passenger_name,
    parse_time,
    resolve_arrival,
)

TODAY = date(2026, 6, 1)


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("jane doe", "JANE DOE"),
        ("  Jane   Mary\tDoe ", "JANE MARY DOE"),
        ("Anne-Marie O'Neill", "ANNE-MARIE O'NEILL"),
        ("sean o’neill", "SEAN O'NEILL"),
        ("Li", "LI"),
    ],
)
def test_valid_names_are_normalised(typed: str, name: str) -> None:
    assert parse_passenger_name(typed) == name


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("", "2 to 60 characters"),
        ("J", "it must have 2 to 60"),
        ("A" * 61, "it must have 2 to 60"),
        ("Jane Doe3", "can't contain 3"),
        ("Jane_Doe", "can't contain _"),
        ("Иван Петров", "Latin letters A–Z"),
        ("-Jane", "start with a letter"),
        ("Jane -- Doe", "start with a letter"),
    ],
)
def test_invalid_names_say_what_is_allowed(typed: str, says: str) -> None:
    result = parse_passenger_name(typed)
    assert isinstance(result, Invalid)
    assert says in result.message


def test_accented_names_are_refused_with_the_plain_spelling_offered() -> None:
    result = parse_passenger_name("Zoë Łukasz-Müller")
    assert isinstance(result, Invalid)
    assert "ZOE LUKASZ-MULLER" in result.message


@pytest.mark.parametrize(
    ("typed", "number"),
    [
        ("LH 401", "LH 401"),
        ("lh401", "LH 401"),
        ("BA2490", "BA 2490"),
        ("u2 1234", "U2 1234"),
        ("9W-7", "9W 7"),
        ("DLH401", "DLH 401"),
        ("LH 0401", "LH 401"),
        ("AA 100A", "AA 100A"),
    ],
)
def test_flight_numbers_are_normalised(typed: str, number: str) -> None:
    assert parse_flight_number(typed) == number


@pytest.mark.parametrize(
    "typed", ["", "LH", "12 345", "LH 12345", "L 401", "LH 0", "LH4O1", "ÄB 1"]
)
def test_invalid_flight_numbers_are_refused(typed: str) -> None:
    result = parse_flight_number(typed)
    assert isinstance(result, Invalid)
    assert "1–4 digits" in result.message


@pytest.mark.parametrize(
    ("typed", "day"),
    [
        ("2026-12-24", date(2026, 12, 24)),
        ("24.12.2026", date(2026, 12, 24)),
        ("24/12/2026", date(2026, 12, 24)),
        ("12/24/2026", date(2026, 12, 24)),
        ("24.12.26", date(2026, 12, 24)),
        ("24 Dec 2026", date(2026, 12, 24)),
        ("24 december 2026", date(2026, 12, 24)),
        ("Thu 24 Dec 2026", date(2026, 12, 24)),
        ("December 24, 2026", date(2026, 12, 24)),
        ("Dec 24", date(2026, 12, 24)),
        ("24th Dec", date(2026, 12, 24)),
        ("24.12.", date(2026, 12, 24)),
        ("3 Mar", date(2027, 3, 3)),  # no year: the next 3 March
        ("today", TODAY),
        ("tomorrow", date(2026, 6, 2)),
        ("2027-06-01", date(2027, 6, 1)),
    ],
)
def test_dates_in_many_spellings(typed: str, day: date) -> None:
    assert parse_date(typed, today=TODAY) == day


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("2026-05-31", "in the past"),
        ("31 May 2026", "in the past"),
        ("2027-06-02", "more than a year ahead"),
        ("30.02.2027", "not a day"),
        ("soon", "couldn't read"),
        ("24 Foo 2026", "couldn't read"),
    ],
)
def test_invalid_dates_say_why(typed: str, says: str) -> None:
    result = parse_date(typed, today=TODAY)
    assert isinstance(result, Invalid)
    assert says in result.message


@pytest.mark.parametrize(
    ("typed", "clock"),
    [
        ("14:05", time(14, 5)),
        ("1405", time(14, 5)),
        ("705", time(7, 5)),
        ("14.05", time(14, 5)),
        ("14h05", time(14, 5)),
        ("2:05pm", time(14, 5)),
        ("2:05 PM", time(14, 5)),
        ("2 p.m.", time(14, 0)),
        ("12am", time(0, 0)),
        ("12:30pm", time(12, 30)),
        ("00:00", time(0, 0)),
    ],
)
def test_times_in_many_spellings(typed: str, clock: time) -> None:
    assert parse_time(typed) == clock


@pytest.mark.parametrize("typed", ["", "24:00", "14:60", "13pm", "0am", "noonish", "14"])
def test_invalid_times_say_what_is_allowed(typed: str) -> None:
    result = parse_time(typed)
    assert isinstance(result, Invalid)
    assert "HH:MM" in result.message


@pytest.mark.parametrize(
    ("typed", "answer"),
    [
        ("07:30", ArrivalInput(time(7, 30), None)),
        ("07:30 +1", ArrivalInput(time(7, 30), 1)),
        ("0730+2", ArrivalInput(time(7, 30), 2)),
        ("7:30am (+1)", ArrivalInput(time(7, 30), 1)),
        ("22:10 -1", ArrivalInput(time(22, 10), -1)),
        ("07:30 +1 day", ArrivalInput(time(7, 30), 1)),
    ],
)
def test_arrival_with_a_day_offset(typed: str, answer: ArrivalInput) -> None:
    assert parse_arrival(typed) == answer


def test_arrival_offsets_are_limited() -> None:
    result = parse_arrival("07:30 +3")
    assert isinstance(result, Invalid) and "+1 or +2" in result.message


DEPARTS = datetime(2026, 12, 24, 22, 0)


def test_earlier_clock_time_is_inferred_as_the_next_day() -> None:
    arrival = resolve_arrival(
        DEPARTS, "Europe/Berlin", ArrivalInput(time(6, 0), None), "Asia/Dubai"
    )
    assert arrival == Arrival(datetime(2026, 12, 25, 6, 0), 1, True)


def test_a_same_day_arrival_is_not_flagged() -> None:
    arrival = resolve_arrival(
        datetime(2026, 12, 24, 8, 0),
        "Europe/Berlin",
        ArrivalInput(time(9, 15), None),
        "Europe/London",
    )
    assert arrival == Arrival(datetime(2026, 12, 24, 9, 15), 0, False)


def test_explicit_offset_is_taken_as_given_and_checked() -> None:
    arrival = resolve_arrival(
        datetime(2026, 12, 24, 10, 0),
        "Asia/Tokyo",
        ArrivalInput(time(5, 0), -1),
        "Pacific/Honolulu",
    )
    assert isinstance(arrival, Invalid)
    assert "before the departure" in arrival.message and "10 h 00 min" in arrival.message


def test_flights_over_20_hours_are_refused() -> None:
    arrival = resolve_arrival(
        datetime(2026, 12, 24, 8, 0), "Europe/Berlin", ArrivalInput(time(9, 0), 1), "Europe/London"
    )
    assert isinstance(arrival, Invalid) and "up to 20 h" in arrival.message


def test_departures_must_be_in_the_future_and_exist() -> None:
    now = datetime(2026, 6, 1, 12, 0).astimezone()
    assert check_departure(datetime(2027, 3, 28, 2, 30), "Europe/Berlin", now=now) is not None
    assert not local_time_exists(datetime(2027, 3, 28, 2, 30), "Europe/Berlin")
    assert local_time_exists(datetime(2027, 3, 28, 3, 30), "Europe/Berlin")
    assert check_departure(datetime(2027, 3, 28, 3, 30), "Europe/Berlin", now=now) is None
    assert check_departure(datetime(2020, 1, 1, 3, 30), "Europe/Berlin", now=now) is not None


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("Lufthansa", "Lufthansa"),
        ("  Air   Example ", "Air Example"),
        ("Jet2.com", "Jet2.com"),
        ("Flybe (Connect) & Co", "Flybe (Connect) & Co"),
        ("Virgin Atlantic’s", "Virgin Atlantic's"),
    ],
)
def test_an_airline_name_is_kept_tidied(typed: str, kept: str) -> None:
    assert parse_airline_name(typed) == kept


@pytest.mark.parametrize("typed", ["24 Dec 2026", "2026-12-24", "24.12.2026", "13:15", "2:05pm"])
def test_a_date_or_time_is_no_airline_name(typed: str) -> None:
    """The answer to the next question, typed too soon, would print as the airline."""
    result = parse_airline_name(typed)
    assert isinstance(result, Invalid) and "looks like a date or a time" in result.message


@pytest.mark.parametrize("typed", ["", "X", "<b>Air</b>", "Аэрофлот", "12", "A" * 41, "-Air"])
def test_an_airline_name_the_pdf_could_not_print_is_refused(typed: str) -> None:
    result = parse_airline_name(typed)
    assert isinstance(result, Invalid) and "Latin letters, digits" in result.message
