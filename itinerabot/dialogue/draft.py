"""The dialogue state of one chat: the draft, its question keys, and its JSON form.

A stored state that does not parse, or whose answers contradict where it stands, is refused.
"""

from __future__ import annotations

import json
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

from itinerabot.dialogue import validate
from itinerabot.models import Airport

SCHEMA_VERSION = 1
SUMMARY, EDIT = "summary", "edit"
FLIGHT_FIELDS = ("origin", "destination", "number", "date", "departure", "arrival")


@dataclass
class FlightDraft:
    """One flight as answered so far; None marks a question not yet answered."""

    origin: Airport | None = None
    destination: Airport | None = None
    number: str | None = None
    date: date | None = None
    departure: time | None = None
    arrival: time | None = None
    arrival_offset: int | None = None  # as typed (+1, -1…); None lets it be inferred

    def to_json(self) -> dict[str, Any]:
        """This flight as a JSON object."""
        return {
            "origin": self.origin.to_dict() if self.origin else None,
            "destination": self.destination.to_dict() if self.destination else None,
            "number": self.number,
            "date": self.date.isoformat() if self.date else None,
            "departure": self.departure.strftime("%H:%M") if self.departure else None,
            "arrival": self.arrival.strftime("%H:%M") if self.arrival else None,
            "arrival_offset": self.arrival_offset,
        }

    @classmethod
    def from_json(cls, raw: Any) -> FlightDraft:
        """The flight in the JSON object `raw`; raises ValueError if it is not one."""
        if not isinstance(raw, dict):
            raise ValueError("flight is not an object")
        offset = raw.get("arrival_offset")
        if offset is not None and offset not in validate.ARRIVAL_OFFSETS:
            raise ValueError("bad arrival offset")
        return cls(
            origin=_airport_or_none(raw.get("origin")),
            destination=_airport_or_none(raw.get("destination")),
            number=_str_or_none(raw.get("number")),
            date=date.fromisoformat(_text(raw, "date")) if raw.get("date") else None,
            departure=time.fromisoformat(_text(raw, "departure")) if raw.get("departure") else None,
            arrival=time.fromisoformat(_text(raw, "arrival")) if raw.get("arrival") else None,
            arrival_offset=offset,
        )


@dataclass
class Draft:
    """The whole dialogue state of one chat.

    `at` is the question being asked ("name", "trip", "0.origin" … "1.arrival"), SUMMARY, EDIT, or
    None when idle. `seq` grows with every question asked; step buttons carry it, so a button of an
    earlier step is recognised as stale. `order` is the reference of the order made for the summary.
    """

    seq: int = 0
    at: str | None = None
    passenger: str | None = None
    return_trip: bool | None = None
    flights: list[FlightDraft] = field(default_factory=lambda: [FlightDraft(), FlightDraft()])
    order: str | None = None

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
                "passenger": self.passenger,
                "trip": None
                if self.return_trip is None
                else "return"
                if self.return_trip
                else "oneway",
                "flights": [f.to_json() for f in self.flights],
                "order": self.order,
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def loads(cls, text: str) -> Draft:
        """The draft in `text`; raises ValueError (or another Exception) if it is not one."""
        raw = json.loads(text)
        if not isinstance(raw, dict) or raw.get("v") != SCHEMA_VERSION:
            raise ValueError("unknown state version")
        seq, trip, flights = raw.get("seq"), raw.get("trip"), raw.get("flights")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 10**12:
            raise ValueError("bad seq")
        if trip not in (None, "oneway", "return"):
            raise ValueError("bad trip")
        if not isinstance(flights, list) or len(flights) != 2:
            raise ValueError("bad flights")
        draft = cls(
            seq=seq,
            at=_str_or_none(raw.get("at")),
            passenger=_str_or_none(raw.get("passenger")),
            return_trip=None if trip is None else trip == "return",
            flights=[FlightDraft.from_json(f) for f in flights],
            order=_str_or_none(raw.get("order")),
        )
        if not _consistent(draft):
            raise ValueError("inconsistent state")
        return draft


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
    keys = questions(draft)
    if draft.at is None:
        return True
    if draft.at in (SUMMARY, EDIT):
        return first_missing(draft) is None
    if draft.at not in keys:
        return False
    return all(answer_of(draft, key) is not None for key in keys[: keys.index(draft.at)])


# ---------------------------------------------------------------- questions and their answers


def questions(draft: Draft) -> list[str]:
    """The keys of the questions this draft asks, in order ("name", "trip", "0.origin" …)."""
    keys = ["name", "trip", *(f"0.{f}" for f in FLIGHT_FIELDS)]
    if draft.return_trip:
        keys += [f"1.{f}" for f in FLIGHT_FIELDS]
    return keys


def split_key(key: str) -> tuple[int, str]:
    """A flight question key split into the flight's index and the field: "1.date" → (1, "date")."""
    index, _, name = key.partition(".")
    return int(index), name


def answer_of(draft: Draft, key: str) -> object | None:
    """The answer to the question `key`, or None while it has none."""
    if key == "name":
        return draft.passenger
    if key == "trip":
        return draft.return_trip
    index, name = split_key(key)
    value: object | None = getattr(draft.flights[index], name)
    return value


def first_missing(draft: Draft) -> str | None:
    """The first question without an answer, or None when all have one."""
    return next((k for k in questions(draft) if answer_of(draft, k) is None), None)


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
