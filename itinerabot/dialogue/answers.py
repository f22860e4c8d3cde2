"""Typed answers: parse the text for the question being asked, check it, keep it or say why not.

A kept answer is acknowledged and the dialogue moves on to whatever needs asking next.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import date, time

from itinerabot.dialogue import texts, validate
from itinerabot.dialogue.airports import default_index
from itinerabot.dialogue.checks import arrival, departure, local_today, problem
from itinerabot.dialogue.draft import EDIT, SUMMARY, Draft, FlightDraft, split_key
from itinerabot.dialogue.prompts import hint
from itinerabot.dialogue.summary import advance
from itinerabot.dialogue.turn import Turn, airport_button, step_button
from itinerabot.dialogue.types import InlineButton
from itinerabot.i18n import Texts
from itinerabot.models import Airport

MAX_INPUT = 200  # characters of one typed answer
_ONE_WAY_WORDS = frozenset({"one way", "oneway", "one-way", "single", "one", "1"})
_RETURN_WORDS = frozenset({"return", "round trip", "roundtrip", "round-trip", "two", "2", "back"})

Answer = str | bool | Airport | date | time | validate.ArrivalInput | validate.Invalid


def on_text(turn: Turn, text: str) -> None:
    """Take `text` as the answer to the question being asked, or say what would be."""
    draft = turn.draft
    if len(text) > MAX_INPUT:
        turn.say(texts.text_too_long(turn.t, len(text), MAX_INPUT))
        return
    if draft.at is None or draft.at in (SUMMARY, EDIT):
        turn.say(hint(turn.t, draft))
        return
    key = draft.at
    if key == "name":
        answer(turn, key, validate.parse_passenger_name(text))
    elif key == "trip":
        answer(turn, key, _parse_trip(text))
    elif key.endswith(("origin", "destination")):
        _answer_airport(turn, key, text)
    elif key.endswith("number"):
        answer(turn, key, validate.parse_flight_number(text))
    elif key.endswith("date"):
        origin = draft.flights[split_key(key)[0]].origin
        assert origin
        answer(turn, key, validate.parse_date(text, today=local_today(turn.ctx, origin)))
    elif key.endswith("departure"):
        answer(turn, key, validate.parse_time(text))
    else:
        answer(turn, key, validate.parse_arrival(text))


def answer(turn: Turn, key: str, value: Answer, others: Sequence[Airport] = ()) -> None:
    """Check `value` as the answer to `key` against the other answers; keep it or say why not."""
    if isinstance(value, validate.Invalid):
        turn.say(value.say(turn.t))
        return
    trial = copy.deepcopy(turn.draft)
    _store(trial, key, value)
    found = problem(trial, key, turn.ctx)
    if found:
        rows: list[list[InlineButton]] = []
        if key.endswith("departure"):
            label = turn.t.gettext(texts.CHANGE_DATE)
            rows = [[step_button(turn.draft, label, "ef", f"{split_key(key)[0]}.date")]]
        turn.say(found, rows)
        return
    turn.draft = trial
    advance(turn, [_acknowledge(turn.t, trial, key, others)])


def _parse_trip(text: str) -> bool | validate.Invalid:
    words = " ".join(text.casefold().replace("-", " ").split())
    if words in _ONE_WAY_WORDS or words.replace(" ", "") in _ONE_WAY_WORDS:
        return False
    if words in _RETURN_WORDS:
        return True
    return validate.Invalid(lambda t: t.gettext(texts.TRIP_RULES))


def _answer_airport(turn: Turn, key: str, text: str) -> None:
    index = default_index()
    found = index.search(text)
    if found.chosen:
        others = [a for a in found.matches if a != found.chosen]
        answer(turn, key, found.chosen, others)
    elif found.matches:
        rows = [[airport_button(turn.draft, a)] for a in found.matches]
        shown = len(found.matches)
        turn.say(texts.several_airports(turn.t, text.strip(), found.total, shown), rows)
    else:
        suggestions = index.suggest(text)
        rows = [[airport_button(turn.draft, a)] for a in suggestions]
        turn.say(texts.no_airport(turn.t, text.strip(), bool(suggestions)), rows)


def _store(draft: Draft, key: str, value: Answer) -> None:
    if key == "name" and isinstance(value, str):
        draft.passenger = value
    elif key == "trip" and isinstance(value, bool):
        draft.return_trip = value
        if not value:
            draft.flights[1] = FlightDraft()
    else:
        flight = draft.flights[split_key(key)[0]]
        if isinstance(value, validate.ArrivalInput):
            flight.arrival, flight.arrival_offset = value.time, value.offset
        else:
            setattr(flight, split_key(key)[1], value)


def _acknowledge(t: Texts, draft: Draft, key: str, others: Sequence[Airport]) -> str:
    if key == "name":
        return texts.ack_passenger(t, draft.passenger or "")
    if key == "trip":
        return texts.ack_trip(t, bool(draft.return_trip))
    index, name = split_key(key)
    flight = draft.flights[index]
    if name in ("origin", "destination"):
        airport = flight.origin if name == "origin" else flight.destination
        assert airport
        return texts.ack_airport(t, name == "origin", airport, others)
    if name == "number":
        return texts.ack_number(t, flight.number or "")
    if name == "date":
        assert flight.date
        return texts.ack_date(t, flight.date)
    departed = departure(flight)
    assert departed and flight.origin
    if name == "departure":
        return texts.ack_departure(t, validate.aware(departed, flight.origin.tz))
    arrived = arrival(flight)
    assert isinstance(arrived, validate.Arrival) and flight.destination
    landed = validate.aware(arrived.local, flight.destination.tz)
    took = landed - validate.aware(departed, flight.origin.tz)
    return texts.ack_arrival(t, landed, arrived.offset, arrived.inferred, took)
