"""The dialogue state of one chat: the draft, its question keys, and its JSON form.

A stored state that does not parse, or whose answers contradict where it stands, is refused; a
state of the first schema (one passenger, one-way or return) is read into this one.
"""

from __future__ import annotations

import dataclasses
import json
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

from itinerabot.airlines import airline_name, drawable
from itinerabot.dialogue import validate
from itinerabot.models import Airport

SCHEMA_VERSION = 2
SUMMARY, EDIT = "summary", "edit"
#: the menu of one flight's fields while editing: "flight.3"
EDIT_FLIGHT = "flight"
#: after each name: add another traveller, or go on to the flights
TRAVELLERS = "travellers"
#: after the last flight: a connecting flight, the next leg, or done
MORE = "more"
FLIGHT_FIELDS = ("origin", "destination", "number", "airline", "date", "departure", "arrival")
#: what no stored draft may exceed, whatever the shop's settings (they can only be lower)
MOST_PASSENGERS, MOST_FLIGHTS = 9, 16
#: the longest airline name kept (the data's longest has 41 characters)
MOST_AIRLINE = 80


@dataclass
class FlightDraft:
    """One flight as answered so far; None marks a question not yet answered.

    A `connection` departs from the airport the flight before it landed at, within the same leg;
    any other flight starts a new leg. `airline` is the airline's name, from the airline data or
    typed by the traveller when the data does not know the code.
    """

    origin: Airport | None = None
    destination: Airport | None = None
    number: str | None = None
    airline: str | None = None
    date: date | None = None
    departure: time | None = None
    arrival: time | None = None
    arrival_offset: int | None = None  # as typed (+1, -1…); None lets it be inferred
    connection: bool = False

    def to_json(self) -> dict[str, Any]:
        """This flight as a JSON object."""
        return {
            "origin": self.origin.to_dict() if self.origin else None,
            "destination": self.destination.to_dict() if self.destination else None,
            "number": self.number,
            "airline": self.airline,
            "date": self.date.isoformat() if self.date else None,
            "departure": self.departure.strftime("%H:%M") if self.departure else None,
            "arrival": self.arrival.strftime("%H:%M") if self.arrival else None,
            "arrival_offset": self.arrival_offset,
            "connection": self.connection,
        }

    @classmethod
    def from_json(cls, raw: Any) -> FlightDraft:
        """The flight in the JSON object `raw`; raises ValueError if it is not one."""
        if not isinstance(raw, dict):
            raise ValueError("flight is not an object")
        offset = raw.get("arrival_offset")
        if offset is not None and offset not in validate.ARRIVAL_OFFSETS:
            raise ValueError("bad arrival offset")
        connection = raw.get("connection", False)
        if not isinstance(connection, bool):
            raise ValueError("bad connection")
        return cls(
            origin=_airport_or_none(raw.get("origin")),
            destination=_airport_or_none(raw.get("destination")),
            number=_checked(raw.get("number"), validate.parse_flight_number),
            airline=_checked(raw.get("airline"), _airline_or_none_given),
            date=date.fromisoformat(_text(raw, "date")) if raw.get("date") else None,
            departure=time.fromisoformat(_text(raw, "departure")) if raw.get("departure") else None,
            arrival=time.fromisoformat(_text(raw, "arrival")) if raw.get("arrival") else None,
            arrival_offset=offset,
            connection=connection,
        )


@dataclass
class Draft:
    """The whole dialogue state of one chat.

    `at` is the question being asked ("name.0", "travellers", "0.origin" … "3.arrival", "more"),
    SUMMARY, EDIT, "flight.N" (the edit menu of flight N), or None when idle. `seq` grows with
    every question asked; step buttons carry it, so a button of an earlier step is recognised as
    stale. `order` is the reference of the order made for the summary. A name or flight not yet
    answered is None / an empty FlightDraft; `passengers_done` and `flights_done` say the traveller
    has said there are no more.
    """

    seq: int = 0
    at: str | None = None
    passengers: list[str | None] = field(default_factory=lambda: [None])
    passengers_done: bool = False
    flights: list[FlightDraft] = field(default_factory=lambda: [FlightDraft()])
    flights_done: bool = False
    order: str | None = None

    def copy(self) -> Draft:
        """A copy to change without changing this one (its values are immutable: only the
        lists and the flights need copying)."""
        return dataclasses.replace(
            self,
            passengers=list(self.passengers),
            flights=[dataclasses.replace(f) for f in self.flights],
        )

    def move_to(self, at: str) -> None:
        """Stand at `at` as a new step, so the buttons of the step before turn stale."""
        self.at = at
        self.seq += 1

    def dumps(self) -> str:
        """This draft as compact JSON text, the form kept in the store."""
        return json.dumps(
            {
                "v": SCHEMA_VERSION,
                "seq": self.seq,
                "at": self.at,
                "passengers": self.passengers,
                "passengers_done": self.passengers_done,
                "flights": [f.to_json() for f in self.flights],
                "flights_done": self.flights_done,
                "order": self.order,
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def loads(cls, text: str) -> Draft:
        """The draft in `text`; raises ValueError (or another Exception) if it is not one."""
        raw = json.loads(text)
        if isinstance(raw, dict) and raw.get("v") == 1:
            raw = _from_first_schema(raw)
        if not isinstance(raw, dict) or raw.get("v") != SCHEMA_VERSION:
            raise ValueError("unknown state version")
        seq, passengers, flights = raw.get("seq"), raw.get("passengers"), raw.get("flights")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 10**12:
            raise ValueError("bad seq")
        if not isinstance(passengers, list) or not 1 <= len(passengers) <= MOST_PASSENGERS:
            raise ValueError("bad passengers")
        if not isinstance(flights, list) or not 1 <= len(flights) <= MOST_FLIGHTS:
            raise ValueError("bad flights")
        done = raw.get("passengers_done"), raw.get("flights_done")
        if not all(isinstance(d, bool) for d in done):
            raise ValueError("bad done")
        draft = cls(
            seq=seq,
            at=_str_or_none(raw.get("at")),
            passengers=[_checked(p, validate.parse_passenger_name) for p in passengers],
            passengers_done=bool(done[0]),
            flights=[FlightDraft.from_json(f) for f in flights],
            flights_done=bool(done[1]),
            order=_str_or_none(raw.get("order")),
        )
        if not _consistent(draft):
            raise ValueError("inconsistent state")
        return draft


def _from_first_schema(raw: dict[str, Any]) -> dict[str, Any]:
    """A state stored before legs and several travellers (one passenger, flights[0] out and
    flights[1] back on a return trip) in this schema's form, standing at the same question."""
    trip, flights, at = raw.get("trip"), raw.get("flights"), raw.get("at")
    if not isinstance(flights, list) or len(flights) != 2:
        raise ValueError("bad flights")
    kept = [dict(f) for f in (flights[:2] if trip == "return" else flights[:1])]
    for flight in kept:
        # the first schema asked no airline: the data's name, or "" (none given)
        number = flight.get("number")
        known = airline_name(code_of(number)) if isinstance(number, str) else None
        flight.setdefault("airline", (known or "") if number else None)
    if isinstance(at, str) and at.startswith("1.") and trip != "return":
        raise ValueError("inconsistent state")
    at = {"name": "name.0", "trip": TRAVELLERS}.get(at, at) if isinstance(at, str) else at
    return {
        "v": SCHEMA_VERSION,
        "seq": raw.get("seq"),
        "at": at,
        "passengers": [raw.get("passenger")],
        "passengers_done": trip is not None,
        "flights": kept,
        "flights_done": at in (SUMMARY, EDIT),
        "order": raw.get("order"),
    }


def _checked(value: Any, parse: Callable[[str], str | validate.Invalid]) -> str | None:
    """`value` if it is what `parse` makes of it (a stored answer is trusted no more than a
    typed one), or None; raises ValueError otherwise."""
    text = _str_or_none(value)
    if text is not None and parse(text) != text:
        raise ValueError("a stored answer that would not be taken as typed")
    return text


def _airline_or_none_given(text: str) -> str | validate.Invalid:
    """A stored airline name: "" (none given), one typed (the parser's rules), or one from the
    airline data, whose names may hold accents and slashes ("Widerøe"): printable text on one
    line that the PDF's fonts can draw (Windows-1252), no longer than the data's names."""
    if text == "" or validate.parse_airline_name(text) == text:
        return text
    one_line = text.isprintable() and text == " ".join(text.split())
    if len(text) <= MOST_AIRLINE and one_line and drawable(text):
        return text
    return validate.Invalid(lambda t: "")


def _str_or_none(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and len(value) <= 200):
        return value
    raise ValueError("expected a short string")


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or len(value) > 10:
        raise ValueError(f"{key} is not a short string")
    return value


def _airport_or_none(value: Any) -> Airport | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("airport is not an object")
    airport = Airport.from_dict(value)
    if airport.tz not in _zones():
        raise ValueError("unknown time zone")
    return airport


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(zoneinfo.available_timezones())
    return _ZONES


def _consistent(draft: Draft) -> bool:
    """Every question before `at` is answered, so prompts and checks can rely on them."""
    if draft.flights[0].connection:
        return False
    keys = questions(draft)
    if draft.at is None:
        return True
    if draft.at in (SUMMARY, EDIT):
        return first_missing(draft) is None
    if draft.at.startswith(EDIT_FLIGHT + "."):
        index = draft.at.removeprefix(EDIT_FLIGHT + ".")
        return first_missing(draft) is None and index.isdigit() and int(index) < len(draft.flights)
    if draft.at not in keys:
        return False
    return all(answer_of(draft, key) is not None for key in keys[: keys.index(draft.at)])


# ---------------------------------------------------------------- questions and their answers


def questions(draft: Draft) -> list[str]:
    """The keys of the questions this draft asks, in order: each passenger's name, whether
    there are more travellers, each flight's fields, whether there are more flights."""
    keys = [f"name.{i}" for i in range(len(draft.passengers))]
    keys.append(TRAVELLERS)
    for index in range(len(draft.flights)):
        keys += [f"{index}.{name}" for name in FLIGHT_FIELDS]
    keys.append(MORE)
    return keys


def code_of(number: str) -> str:
    """The airline designator of a flight number: "LH" of "LH 400"."""
    return number.partition(" ")[0]


def kind_of(key: str) -> str:
    """What a question key asks: "name", "travellers", "more", or a flight field ("date")."""
    return key.partition(".")[0] if key.startswith("name.") else key.rpartition(".")[2]


def index_of(key: str) -> int:
    """The passenger's or the flight's index in a question key: "name.2" → 2, "3.date" → 3."""
    first, _, second = key.partition(".")
    return int(second if first == "name" else first)


def split_key(key: str) -> tuple[int, str]:
    """A flight question key split into the flight's index and the field: "1.date" → (1, "date")."""
    index, _, name = key.partition(".")
    return int(index), name


def answer_of(draft: Draft, key: str) -> object | None:
    """The answer to the question `key`, or None while it has none."""
    if key == TRAVELLERS:
        return True if draft.passengers_done else None
    if key == MORE:
        return True if draft.flights_done else None
    if key.startswith("name."):
        return draft.passengers[index_of(key)]
    index, name = split_key(key)
    value: object | None = getattr(draft.flights[index], name)
    return value


def first_missing(draft: Draft) -> str | None:
    """The first question without an answer, or None when all have one."""
    return next((k for k in questions(draft) if answer_of(draft, k) is None), None)


def legs(draft: Draft) -> list[list[int]]:
    """The indexes of the draft's flights, grouped in legs."""
    grouped: list[list[int]] = []
    for index, flight in enumerate(draft.flights):
        if flight.connection and grouped:
            grouped[-1].append(index)
        else:
            grouped.append([index])
    return grouped


# ---------------------------------------------------------------- reading a stored state


def initial_state() -> str:
    """The state of a chat that has never talked to the bot."""
    return Draft().dumps()


def current_question(state: str | None) -> str | None:
    """Where a stored dialogue stands: a question key, "summary", "edit", or None when idle."""
    draft = _stored(state)
    return draft.at if draft else None


def order_reference(state: str | None) -> str | None:
    """The reference of the order the stored summary shows, if any."""
    draft = _stored(state)
    return draft.order if draft else None


def _stored(state: str | None) -> Draft | None:
    try:
        return Draft.loads(state) if state else None
    except Exception:
        return None
