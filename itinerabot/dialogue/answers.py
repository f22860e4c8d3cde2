"""Typed answers: parse the text for the question being asked, check it, keep it or say why not.

A kept answer is acknowledged and the dialogue moves on to whatever needs asking next.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, time

from itinerabot.airlines import airline_name
from itinerabot.dialogue import texts, validate
from itinerabot.dialogue.airports import default_index
from itinerabot.dialogue.checks import arrival, departure, local_today, problem
from itinerabot.dialogue.choices import (
    add_flight,
    add_traveller,
    no_more_flights,
    no_more_travellers,
)
from itinerabot.dialogue.draft import (
    MORE,
    TRAVELLERS,
    Draft,
    code_of,
    index_of,
    kind_of,
    split_key,
)
from itinerabot.dialogue.prompts import hint
from itinerabot.dialogue.summary import advance
from itinerabot.dialogue.turn import Turn, airport_button, step_button
from itinerabot.dialogue.types import InlineButton
from itinerabot.i18n import Texts
from itinerabot.models import Airport, elapsed

MAX_INPUT = 200  # characters of one typed answer
_ADD_WORDS = frozenset({"yes", "y", "add", "another", "more", "add another", "add traveller"})
_DONE_WORDS = frozenset({"no", "n", "done", "none", "continue", "next", "that's all", "finish"})
_CONNECT_WORDS = frozenset({"connection", "connecting", "connect", "connecting flight"})
_LEG_WORDS = frozenset({"leg", "next leg", "return", "new leg", "onward"})

Answer = str | Airport | date | time | validate.ArrivalInput | validate.Invalid


def on_text(turn: Turn, text: str) -> None:
    """Take `text` as the answer to the question being asked, or say what would be."""
    draft = turn.draft
    if len(text) > MAX_INPUT:
        turn.say(texts.text_too_long(turn.t, len(text), MAX_INPUT))
        return
    key = draft.at
    if key is None or ("." not in key and key not in (TRAVELLERS, MORE)):
        turn.say(hint(turn.t, draft))
        return
    kind = kind_of(key)
    if key == TRAVELLERS:
        _choose_travellers(turn, _words(text))
    elif key == MORE:
        _choose_more(turn, _words(text))
    elif kind == "name":
        answer(turn, key, validate.parse_passenger_name(text))
    elif key.startswith("flight."):
        turn.say(hint(turn.t, draft))
    elif kind in ("origin", "destination"):
        _answer_airport(turn, key, text)
    elif kind == "number":
        answer(turn, key, validate.parse_flight_number(text))
    elif kind == "airline":
        answer(turn, key, validate.parse_airline_name(text))
    elif kind == "date":
        origin = draft.flights[split_key(key)[0]].origin
        assert origin
        answer(turn, key, validate.parse_date(text, today=local_today(turn.ctx, origin)))
    elif kind == "departure":
        answer(turn, key, validate.parse_time(text))
    else:
        answer(turn, key, validate.parse_arrival(text))


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w' ]+", " ", text.casefold()).split())


def _choose_travellers(turn: Turn, words: str) -> None:
    if words in _ADD_WORDS and len(turn.draft.passengers) < turn.ctx.trips.max_travellers:
        add_traveller(turn)
    elif words in _DONE_WORDS:
        no_more_travellers(turn)
    else:
        turn.say(turn.t.gettext(texts.TRAVELLERS_RULES))


def _choose_more(turn: Turn, words: str) -> None:
    room = len(turn.draft.flights) < turn.ctx.trips.max_flights
    if words in _CONNECT_WORDS and room:
        add_flight(turn, connection=True)
    elif words in _LEG_WORDS and room:
        add_flight(turn, connection=False)
    elif words in _DONE_WORDS:
        no_more_flights(turn)
    else:
        turn.say(turn.t.gettext(texts.MORE_RULES))


def answer(turn: Turn, key: str, value: Answer, others: Sequence[Airport] = ()) -> None:
    """Check `value` as the answer to `key` against the other answers; keep it or say why not."""
    if isinstance(value, validate.Invalid):
        turn.say(value.say(turn.t))
        return
    trial = turn.draft.copy()
    store(trial, key, value)
    found = problem(trial, key, turn.ctx)
    if found:
        turn.say(found, fix_buttons(turn, trial, key))
        return
    turn.draft = trial
    advance(turn, [_acknowledge(turn.t, trial, key, others)])


def fix_buttons(turn: Turn, trial: Draft, key: str) -> list[list[InlineButton]]:
    """Buttons that help with the problem of `key` in `trial`: change the date of a time that
    does not fit; make a connection too long after the flight before into the next leg."""
    rows: list[list[InlineButton]] = []
    if kind_of(key) not in ("date", "departure"):
        return rows
    index = split_key(key)[0]
    if kind_of(key) == "departure":
        label = turn.t.gettext(texts.CHANGE_DATE)
        rows.append([step_button(turn.draft, label, "ef", f"{index}.date")])
    if trial.flights[index].connection:
        # offered only where the next leg would fit: a stop over 24 h, not one too short
        as_leg = trial.copy()
        as_leg.flights[index].connection = False
        if problem(as_leg, key, turn.ctx) is None:
            label = turn.t.gettext(texts.MAKE_NEW_LEG)
            rows.append([step_button(turn.draft, label, "nl", str(index))])
    return rows


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


def store(draft: Draft, key: str, value: Answer) -> None:
    """Put `value` into `draft` as the answer to `key`, with what follows from it: a connection
    departs where the flight before it lands; a flight number brings its airline's name."""
    if key.startswith("name.") and isinstance(value, str):
        draft.passengers[index_of(key)] = value
        return
    index, name = split_key(key)
    flight = draft.flights[index]
    if isinstance(value, validate.ArrivalInput):
        flight.arrival, flight.arrival_offset = value.time, value.offset
    elif name == "number" and isinstance(value, str):
        if flight.number is None or code_of(flight.number) != code_of(value):
            flight.airline = _known_airline(draft, code_of(value))
        flight.number = value
    else:
        setattr(flight, name, value)
    following = draft.flights[index + 1] if index + 1 < len(draft.flights) else None
    if name == "destination" and following and following.connection:
        following.origin = flight.destination


def _known_airline(draft: Draft, code: str) -> str | None:
    """The airline of `code` from the data, or as the traveller named it for another flight."""
    known = airline_name(code)
    if known is not None:
        return known
    named = (f.airline for f in draft.flights if f.number and code_of(f.number) == code)
    return next((a for a in named if a is not None), None)


def _acknowledge(t: Texts, draft: Draft, key: str, others: Sequence[Airport]) -> str:
    if key.startswith("name."):
        return texts.ack_passenger(t, draft.passengers[index_of(key)] or "")
    index, name = split_key(key)
    flight = draft.flights[index]
    if name in ("origin", "destination"):
        airport = flight.origin if name == "origin" else flight.destination
        assert airport
        return texts.ack_airport(t, name == "origin", airport, others)
    if name == "number":
        return texts.ack_number(t, flight.number or "", flight.airline)
    if name == "airline":
        return texts.ack_airline(t, flight.airline or "")
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
    took = elapsed(validate.aware(departed, flight.origin.tz), landed)
    return texts.ack_arrival(t, landed, arrived.offset, arrived.inferred, took)
