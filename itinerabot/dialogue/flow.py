"""The dialogue as a pure function: (state, event, context) → (new state, replies, actions).

One question at a time from the passenger name to a summary with pay buttons. The state is JSON
text; every question is re-checked against the others, so an edit only asks what it invalidates.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from itinerabot.dialogue import texts, validate
from itinerabot.dialogue.airports import default_index
from itinerabot.dialogue.types import (
    Action,
    AnswerCallback,
    ButtonPress,
    CancelOrder,
    CommandMessage,
    Context,
    CreateOrder,
    DeepLinkReturn,
    Event,
    InlineButton,
    Keyboard,
    OtherMessage,
    Outcome,
    PayByCard,
    PayWithUsdc,
    RemoveButtons,
    Reply,
    ResendDocument,
    SendText,
    TextMessage,
)
from itinerabot.models import Airport, Flight, Itinerary, Order, OrderStatus

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAX_INPUT = 200  # characters of one typed answer
MAX_CALLBACK_DATA = 64  # bytes, Telegram's limit
MAX_BUTTONS = 100
MAX_ORDERS_LISTED = 20
SUMMARY, EDIT = "summary", "edit"
FLIGHT_FIELDS = ("origin", "destination", "number", "date", "departure", "arrival")
_DEEP_LINK = re.compile(r"[A-Za-z0-9_-]{1,64}")
_STEP_DATA = re.compile(r"(\d{1,12}):([a-z]{1,8})(?::([A-Za-z0-9._-]{1,40}))?")
_EXAMPLE = timedelta(days=30)  # how far ahead the example date in the date question is
_ONE_WAY_WORDS = frozenset({"one way", "oneway", "one-way", "single", "one", "1"})
_RETURN_WORDS = frozenset({"return", "round trip", "roundtrip", "round-trip", "two", "2", "back"})

# ---------------------------------------------------------------- the state


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

    def dumps(self) -> str:
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
    keys = _questions(draft)
    if draft.at is None:
        return True
    if draft.at in (SUMMARY, EDIT):
        return _first_missing(draft) is None
    if draft.at not in keys:
        return False
    return all(_value(draft, key) is not None for key in keys[: keys.index(draft.at)])


def initial_state() -> str:
    """The state of a chat that has never talked to the bot."""
    return Draft().dumps()


def current_question(state: str | None) -> str | None:
    """Where a stored dialogue stands: a question key, "summary", "edit", or None when idle."""
    try:
        return Draft.loads(state).at if state else None
    except Exception:
        return None


def order_reference(state: str | None) -> str | None:
    """The reference of the order the stored summary shows, if any."""
    try:
        return Draft.loads(state).order if state else None
    except Exception:
        return None


# ---------------------------------------------------------------- questions and their values


def _questions(draft: Draft) -> list[str]:
    keys = ["name", "trip", *(f"0.{f}" for f in FLIGHT_FIELDS)]
    if draft.return_trip:
        keys += [f"1.{f}" for f in FLIGHT_FIELDS]
    return keys


def _split(key: str) -> tuple[int, str]:
    index, _, name = key.partition(".")
    return int(index), name


def _value(draft: Draft, key: str) -> object | None:
    if key == "name":
        return draft.passenger
    if key == "trip":
        return draft.return_trip
    index, name = _split(key)
    value: object | None = getattr(draft.flights[index], name)
    return value


def _first_missing(draft: Draft) -> str | None:
    return next((k for k in _questions(draft) if _value(draft, k) is None), None)


def _departure(flight: FlightDraft) -> datetime | None:
    if flight.date is None or flight.departure is None:
        return None
    return datetime.combine(flight.date, flight.departure)


def _arrival(flight: FlightDraft) -> validate.Arrival | validate.Invalid | None:
    departure = _departure(flight)
    if departure is None or flight.arrival is None or not flight.origin or not flight.destination:
        return None
    answer = validate.ArrivalInput(flight.arrival, flight.arrival_offset)
    return validate.resolve_arrival(departure, flight.origin.tz, answer, flight.destination.tz)


def _problem(draft: Draft, key: str, ctx: Context) -> str | None:
    """Why the answer to `key` does not fit the answers before it, or None."""
    if key in ("name", "trip"):
        return None
    index, name = _split(key)
    flight = draft.flights[index]
    same = flight.origin and flight.destination and flight.origin.iata == flight.destination.iata
    if name == "destination" and same and flight.origin:
        return texts.same_airport(flight.origin)
    if name == "date" and flight.date and flight.origin:
        invalid = validate.check_date(flight.date, today=_local_today(ctx, flight.origin))
        if invalid:
            return invalid.message
        landed = _outbound_landing(draft) if index == 1 else None
        latest = datetime.combine(flight.date, time(23, 59))
        if landed and validate.aware(latest, flight.origin.tz) < landed:
            return texts.return_date_before_outbound(flight.date, landed)
    if name == "departure" and flight.origin:
        departure = _departure(flight)
        if departure is None:
            return None
        invalid = validate.check_departure(departure, flight.origin.tz, now=ctx.now)
        landed = _outbound_landing(draft) if index == 1 else None
        if invalid is None and landed:
            invalid = validate.check_return_after_outbound(
                validate.aware(departure, flight.origin.tz), landed
            )
        return invalid.message if invalid else None
    if name == "arrival":
        arrival = _arrival(flight)
        return arrival.message if isinstance(arrival, validate.Invalid) else None
    return None


def _local_today(ctx: Context, airport: Airport) -> date:
    return ctx.now.astimezone(ZoneInfo(airport.tz)).date()


def _outbound_landing(draft: Draft) -> datetime | None:
    arrival = _arrival(draft.flights[0])
    destination = draft.flights[0].destination
    if not isinstance(arrival, validate.Arrival) or destination is None:
        return None
    return validate.aware(arrival.local, destination.tz)


def _next_question(draft: Draft, ctx: Context) -> tuple[str, str | None] | None:
    """The first question without a fitting answer, with the reason if it has an unfitting one."""
    for key in _questions(draft):
        if _value(draft, key) is None:
            return key, None
        problem = _problem(draft, key, ctx)
        if problem:
            return key, problem
    return None


def _flight_label(draft: Draft, index: int) -> str:
    return texts.flight_label(index, bool(draft.return_trip))


def _itinerary(draft: Draft) -> tuple[Itinerary, list[tuple[str, Flight, int]]]:
    """The finished itinerary; call only when `_next_question` is None."""
    shown: list[tuple[str, Flight, int]] = []
    for index in range(2 if draft.return_trip else 1):
        flight = draft.flights[index]
        departure, arrival = _departure(flight), _arrival(flight)
        assert flight.origin and flight.destination and flight.number and departure
        assert isinstance(arrival, validate.Arrival)
        made = Flight(flight.number, flight.origin, flight.destination, departure, arrival.local)
        shown.append((_flight_label(draft, index), made, arrival.offset))
    assert draft.passenger
    return Itinerary(draft.passenger, tuple(f for _, f, _ in shown)), shown


def _find_order(ctx: Context, reference: str | None) -> Order | None:
    return next((o for o in ctx.orders if o.reference == reference), None)


# ---------------------------------------------------------------- one turn


@dataclass
class _Turn:
    draft: Draft
    ctx: Context
    replies: list[Reply] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    def say(self, text: str, keyboard: Sequence[Sequence[InlineButton]] = ()) -> None:
        self.replies.append(SendText(texts.clip(text), _keyboard(keyboard)))


def _keyboard(rows: Sequence[Sequence[InlineButton]]) -> Keyboard:
    """Rows without any button Telegram would refuse, and at most `MAX_BUTTONS` buttons."""
    kept: list[tuple[InlineButton, ...]] = []
    budget = MAX_BUTTONS
    for row in rows:
        fit = [b for b in row if b.data is None or len(b.data.encode()) <= MAX_CALLBACK_DATA]
        if fit[:budget]:
            kept.append(tuple(fit[:budget]))
            budget -= len(kept[-1])
    return tuple(kept)


def _button(draft: Draft, label: str, kind: str, value: str = "") -> InlineButton:
    data = f"{draft.seq}:{kind}" + (f":{value}" if value else "")
    return InlineButton(label, data=data)


def step(state: str | None, event: Event, ctx: Context) -> Outcome:
    """Advance the chat's dialogue by one event. Never raises.

    `state` is what the previous step returned (None or anything unreadable starts afresh).
    """
    try:
        return _step(state, event, ctx)
    except Exception:
        log.exception("dialogue step failed on %r", event)
        replies: list[Reply] = []
        if isinstance(event, ButtonPress):
            replies.append(AnswerCallback(event.callback_id))
        replies.append(SendText(texts.INTERNAL_ERROR))
        return Outcome(Draft(seq=_fresh_seq(ctx) + 1).dumps(), tuple(replies))


def _fresh_seq(ctx: Context) -> int:
    # A chat whose state was lost must not reuse the tokens on its old buttons.
    return max(0, int(ctx.now.timestamp()))


def _step(state: str | None, event: Event, ctx: Context) -> Outcome:
    try:
        draft = Draft.loads(state) if state else Draft(seq=_fresh_seq(ctx))
        unchanged = state if state else draft.dumps()
    except Exception:
        log.warning("dropping an unreadable dialogue state")
        draft = Draft(seq=_fresh_seq(ctx))
        unchanged = draft.dumps()
    turn = _Turn(copy.deepcopy(draft), ctx)
    if isinstance(event, ButtonPress):
        stale = _on_press(turn, event)
        if stale:
            return Outcome(unchanged, (AnswerCallback(event.callback_id, stale),))
    elif isinstance(event, CommandMessage):
        _on_command(turn, event)
    elif isinstance(event, TextMessage):
        _on_text(turn, event.text)
    elif isinstance(event, OtherMessage):
        turn.say(texts.not_text(event.kind, _hint(turn.draft)))
    new_state = unchanged if turn.draft == draft else turn.draft.dumps()
    return Outcome(new_state, tuple(turn.replies), tuple(turn.actions))


def _hint(draft: Draft) -> str:
    if draft.at is None:
        return texts.IDLE_HINT
    if draft.at == SUMMARY:
        return texts.SUMMARY_HINT
    if draft.at == EDIT:
        return texts.EDIT_HINT
    name = draft.at.partition(".")[2] or draft.at
    return texts.HINTS[name]


# ---------------------------------------------------------------- asking


def _ask(turn: _Turn, key: str, preface: Sequence[str] = ()) -> None:
    draft = turn.draft
    draft.at = key
    draft.seq += 1
    parts = [p for p in preface if p]
    parts.append(_prompt(draft, key, turn.ctx))
    value = _value(draft, key)
    if value is not None and key != "trip":
        parts.append(texts.currently(_shown(draft, key)))
    turn.say("\n\n".join(parts), _prompt_keyboard(draft, key))


def _prompt(draft: Draft, key: str, ctx: Context) -> str:
    if key == "name":
        return texts.ASK_NAME
    if key == "trip":
        return texts.ASK_TRIP
    index, name = _split(key)
    flight, label = draft.flights[index], _flight_label(draft, index)
    if name == "origin":
        return texts.ask_origin(label)
    assert flight.origin
    if name == "destination":
        return texts.ask_destination(label, flight.origin)
    if name == "number":
        assert flight.destination
        return texts.ask_number(label, flight.origin, flight.destination)
    if name == "date":
        return texts.ask_date(label, flight.origin, _local_today(ctx, flight.origin) + _EXAMPLE)
    if name == "departure":
        assert flight.date
        return texts.ask_departure(label, flight.origin, flight.date)
    assert flight.destination
    return texts.ask_arrival(label, flight.destination)


def _shown(draft: Draft, key: str) -> str:
    """The current answer to `key`, as the traveller would read it."""
    if key == "name":
        return draft.passenger or ""
    index, name = _split(key)
    flight = draft.flights[index]
    if name in ("origin", "destination"):
        airport = flight.origin if name == "origin" else flight.destination
        return texts.airport(airport) if airport else ""
    if name == "date" and flight.date:
        return texts.day(flight.date)
    if name == "departure" and flight.departure:
        return flight.departure.strftime("%H:%M")
    if name == "arrival" and flight.arrival:
        offset = flight.arrival_offset
        return flight.arrival.strftime("%H:%M") + ("" if offset is None else f" {offset:+d}")
    return flight.number or ""


def _prompt_keyboard(draft: Draft, key: str) -> list[list[InlineButton]]:
    if key == "trip":
        return [
            [
                _button(draft, texts.TRIP_ONE_WAY, "trip", "oneway"),
                _button(draft, texts.TRIP_RETURN, "trip", "return"),
            ]
        ]
    outbound = draft.flights[0]
    if key == "1.origin" and outbound.destination:
        return [[_airport_button(draft, outbound.destination)]]
    if key == "1.destination" and outbound.origin:
        return [[_airport_button(draft, outbound.origin)]]
    return []


def _airport_button(draft: Draft, airport: Airport) -> InlineButton:
    return _button(draft, texts.airport_button(airport), "ap", airport.iata)


def _advance(turn: _Turn, preface: Sequence[str] = ()) -> None:
    """Ask the next question that needs an answer, or show the summary when none does."""
    found = _next_question(turn.draft, turn.ctx)
    if found is None:
        _show_summary(turn, preface)
        return
    key, reason = found
    notes = [*preface, _release_order(turn), reason or ""]
    _ask(turn, key, notes)


def _show_summary(turn: _Turn, preface: Sequence[str]) -> None:
    draft, ctx = turn.draft, turn.ctx
    itinerary, shown = _itinerary(draft)
    if draft.order is None:
        draft.order = ctx.new_reference
        turn.actions.append(CreateOrder(draft.order, itinerary))
    draft.at = SUMMARY
    draft.seq += 1
    notes = [p for p in preface if p]
    if notes:
        turn.say("\n\n".join(notes))
    text = texts.summary(draft.passenger or "", shown, ctx.price, ctx.currency, draft.order)
    pay: list[InlineButton] = []
    if ctx.card_enabled:
        pay.append(InlineButton(texts.PAY_CARD, data=f"pay:card:{draft.order}"))
    if ctx.usdc_enabled:
        pay.append(InlineButton(texts.PAY_USDC, data=f"pay:usdc:{draft.order}"))
    if not pay:
        text = texts.clip(f"{text}\n\n{texts.NO_PAYMENT_METHOD}")
    rows = [
        pay,
        [_button(draft, texts.EDIT, "sum", "edit"), _button(draft, texts.CANCEL, "sum", "cancel")],
    ]
    turn.say(text, rows)


def _release_order(turn: _Turn) -> str:
    """Let go of the summary's order: cancel it if unpaid. Returns a note for the traveller."""
    reference, turn.draft.order = turn.draft.order, None
    order = _find_order(turn.ctx, reference)
    if reference is None or order is None:
        return ""
    if order.status is OrderStatus.AWAITING_PAYMENT:
        turn.actions.append(CancelOrder(reference))
        return texts.order_cancelled(reference)
    if order.status.is_paid:
        return texts.order_kept_paid(reference)
    return ""


# ---------------------------------------------------------------- typed answers


def _on_text(turn: _Turn, text: str) -> None:
    draft = turn.draft
    if len(text) > MAX_INPUT:
        turn.say(texts.text_too_long(len(text), MAX_INPUT))
        return
    if draft.at is None or draft.at in (SUMMARY, EDIT):
        turn.say(_hint(draft))
        return
    key = draft.at
    if key == "name":
        _answer(turn, key, validate.parse_passenger_name(text))
    elif key == "trip":
        _answer(turn, key, _parse_trip(text))
    elif key.endswith(("origin", "destination")):
        _answer_airport(turn, key, text)
    elif key.endswith("number"):
        _answer(turn, key, validate.parse_flight_number(text))
    elif key.endswith("date"):
        origin = draft.flights[_split(key)[0]].origin
        assert origin
        _answer(turn, key, validate.parse_date(text, today=_local_today(turn.ctx, origin)))
    elif key.endswith("departure"):
        _answer(turn, key, validate.parse_time(text))
    else:
        _answer(turn, key, validate.parse_arrival(text))


def _parse_trip(text: str) -> bool | validate.Invalid:
    words = " ".join(text.casefold().replace("-", " ").split())
    if words in _ONE_WAY_WORDS or words.replace(" ", "") in _ONE_WAY_WORDS:
        return False
    if words in _RETURN_WORDS:
        return True
    return validate.Invalid(texts.TRIP_RULES)


def _answer_airport(turn: _Turn, key: str, text: str) -> None:
    index = default_index()
    found = index.search(text)
    if found.chosen:
        others = [a for a in found.matches if a != found.chosen]
        _answer(turn, key, found.chosen, others)
    elif found.matches:
        rows = [[_airport_button(turn.draft, a)] for a in found.matches]
        turn.say(texts.several_airports(text.strip(), found.total, len(found.matches)), rows)
    else:
        suggestions = index.suggest(text)
        rows = [[_airport_button(turn.draft, a)] for a in suggestions]
        turn.say(texts.no_airport(text.strip(), bool(suggestions)), rows)


_Answer = str | bool | Airport | date | time | validate.ArrivalInput | validate.Invalid


def _answer(turn: _Turn, key: str, value: _Answer, others: Sequence[Airport] = ()) -> None:
    """Check `value` as the answer to `key` against the other answers; keep it or say why not."""
    if isinstance(value, validate.Invalid):
        turn.say(value.message)
        return
    trial = copy.deepcopy(turn.draft)
    _store(trial, key, value)
    problem = _problem(trial, key, turn.ctx)
    if problem:
        rows: list[list[InlineButton]] = []
        if key.endswith("departure"):
            rows = [[_button(turn.draft, texts.CHANGE_DATE, "ef", f"{_split(key)[0]}.date")]]
        turn.say(problem, rows)
        return
    turn.draft = trial
    _advance(turn, [_acknowledge(trial, key, others)])


def _store(draft: Draft, key: str, value: _Answer) -> None:
    if key == "name" and isinstance(value, str):
        draft.passenger = value
    elif key == "trip" and isinstance(value, bool):
        draft.return_trip = value
        if not value:
            draft.flights[1] = FlightDraft()
    else:
        flight = draft.flights[_split(key)[0]]
        if isinstance(value, validate.ArrivalInput):
            flight.arrival, flight.arrival_offset = value.time, value.offset
        else:
            setattr(flight, _split(key)[1], value)


def _acknowledge(draft: Draft, key: str, others: Sequence[Airport]) -> str:
    if key == "name":
        return texts.ack_passenger(draft.passenger or "")
    if key == "trip":
        return texts.ack_trip(bool(draft.return_trip))
    index, name = _split(key)
    flight = draft.flights[index]
    if name in ("origin", "destination"):
        airport = flight.origin if name == "origin" else flight.destination
        assert airport
        return texts.ack_airport("From" if name == "origin" else "To", airport, others)
    if name == "number":
        return texts.ack_number(flight.number or "")
    if name == "date":
        assert flight.date
        return texts.ack_date(flight.date)
    departure = _departure(flight)
    assert departure and flight.origin
    if name == "departure":
        return texts.ack_departure(validate.aware(departure, flight.origin.tz))
    arrival = _arrival(flight)
    assert isinstance(arrival, validate.Arrival) and flight.destination
    landed = validate.aware(arrival.local, flight.destination.tz)
    took = landed - validate.aware(departure, flight.origin.tz)
    return texts.ack_arrival(landed, arrival.offset, arrival.inferred, took)


# ---------------------------------------------------------------- buttons


def _on_press(turn: _Turn, press: ButtonPress) -> str | None:
    """Handle a button press; returns the toast text if the press is stale and changes nothing."""
    data = press.data
    if data.startswith("pay:"):
        return _on_pay(turn, press)
    if data.startswith("pdf:"):
        return _on_pdf(turn, press)
    match = _STEP_DATA.fullmatch(data)
    if match is None or int(match[1]) != turn.draft.seq:
        return texts.STALE
    kind, value = match[2], match[3] or ""
    if not _press_fits(turn.draft, kind, value):
        return texts.STALE
    turn.replies.append(AnswerCallback(press.callback_id))
    if press.message_id is not None:
        turn.replies.append(RemoveButtons(press.message_id))
    _on_step_button(turn, kind, value)
    return None


def _press_fits(draft: Draft, kind: str, value: str) -> bool:
    at = draft.at
    if at is None:
        return False
    if kind == "trip":
        return at == "trip" and value in ("oneway", "return")
    if kind == "ap":
        return at.endswith(("origin", "destination")) and default_index().by_code(value) is not None
    if kind == "sum":
        return at == SUMMARY and value in ("edit", "cancel")
    if kind == "ef":
        return at != SUMMARY and ((value == "back" and at == EDIT) or _editable(draft, value))
    return False


def _editable(draft: Draft, key: str) -> bool:
    return key in _questions(draft) and _value(draft, key) is not None


def _on_step_button(turn: _Turn, kind: str, value: str) -> None:
    draft = turn.draft
    if kind == "trip":
        _answer(turn, "trip", value == "return")
    elif kind == "ap":
        airport = default_index().by_code(value)
        assert airport and draft.at
        _answer(turn, draft.at, airport)
    elif kind == "sum" and value == "cancel":
        _cancel(turn)
    elif kind == "sum":
        _show_edit_menu(turn)
    elif value == "back":
        _advance(turn)
    else:
        _ask(turn, value, [_release_order(turn)])


def _show_edit_menu(turn: _Turn) -> None:
    draft = turn.draft
    draft.at = EDIT
    draft.seq += 1
    rows: list[list[InlineButton]] = [
        [
            _button(draft, texts.edit_label("name", None), "ef", "name"),
            _button(draft, texts.edit_label("trip", None), "ef", "trip"),
        ]
    ]
    for index in range(2 if draft.return_trip else 1):
        label = "Return" if index else "Outbound" if draft.return_trip else None
        buttons = [
            _button(draft, texts.edit_label(name, label), "ef", f"{index}.{name}")
            for name in FLIGHT_FIELDS
        ]
        rows += [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([_button(draft, texts.BACK_TO_SUMMARY, "ef", "back")])
    turn.say(texts.EDIT_WHAT, rows)


def _on_pay(turn: _Turn, press: ButtonPress) -> str | None:
    _, method, reference = [*press.data.split(":", 2), "", ""][:3]
    if method not in ("card", "usdc") or not reference:
        return texts.STALE
    order = _find_order(turn.ctx, reference)
    if order is None and reference != turn.draft.order:
        return texts.ORDER_UNKNOWN
    if order is not None and order.status.is_paid:
        return texts.ALREADY_PAID
    if order is not None and order.status is OrderStatus.CANCELLED:
        return texts.ORDER_WAS_CANCELLED
    if method == "card" and not turn.ctx.card_enabled:
        return texts.CARD_OFF
    if method == "usdc" and not turn.ctx.usdc_enabled:
        return texts.USDC_OFF
    turn.replies.append(AnswerCallback(press.callback_id))
    turn.actions.append(PayByCard(reference) if method == "card" else PayWithUsdc(reference))
    return None


def _on_pdf(turn: _Turn, press: ButtonPress) -> str | None:
    order = _find_order(turn.ctx, press.data.removeprefix("pdf:"))
    if order is None:
        return texts.ORDER_UNKNOWN
    if not order.status.is_paid:
        return texts.NOT_PAID_NO_PDF
    turn.replies.append(AnswerCallback(press.callback_id, texts.SENDING_PDF))
    turn.actions.append(ResendDocument(order.reference))
    return None


# ---------------------------------------------------------------- commands


def _on_command(turn: _Turn, command: CommandMessage) -> None:
    name, arg = command.name, command.arg.strip()
    if name == "start" and arg and _DEEP_LINK.fullmatch(arg):
        turn.actions.append(DeepLinkReturn(arg))
    elif name == "start":
        _start(turn)
    elif name == "help":
        turn.say(f"{texts.help_text(turn.ctx.price, turn.ctx.currency)}\n\n{_hint(turn.draft)}")
    elif name == "cancel":
        _cancel(turn)
    elif name == "status":
        turn.say(_status(turn.draft, turn.ctx))
    elif name == "orders":
        _list_orders(turn)
    else:
        turn.say(texts.unknown_command(name))


def _start(turn: _Turn) -> None:
    old = turn.draft
    order = _find_order(turn.ctx, old.order)
    kept = ""
    if old.order and (order is None or order.status is OrderStatus.AWAITING_PAYMENT):
        kept = texts.order_still_payable(old.order)
    turn.draft = Draft(seq=old.seq)
    _ask(turn, "name", [texts.greeting(turn.ctx.price, turn.ctx.currency), kept])


def _cancel(turn: _Turn) -> None:
    draft = turn.draft
    if draft.at is None and draft.order is None:
        turn.say(texts.NOTHING_TO_CANCEL)
        return
    note = _release_order(turn)
    turn.draft = Draft(seq=draft.seq + 1)
    turn.say("\n".join(p for p in (texts.DRAFT_DROPPED, note) if p))


def _status(draft: Draft, ctx: Context) -> str:
    if draft.at == SUMMARY and draft.order:
        return texts.status_summary(draft.order, _find_order(ctx, draft.order))
    if draft.at == EDIT:
        return texts.STATUS_EDITING
    if draft.at is not None:
        keys = _questions(draft)
        total = len(keys) if draft.return_trip is not None else len(keys) + len(FLIGHT_FIELDS)
        index, _, name = draft.at.rpartition(".")
        question = texts.QUESTIONS[name]
        if index:
            question = f"{_flight_label(draft, int(index)).lower()}: {question}"
        return texts.status_in_progress(keys.index(draft.at), total, question)
    if ctx.orders:
        return f"{texts.STATUS_IDLE}\n{texts.status_latest(ctx.orders[0])}"
    return texts.STATUS_IDLE


def _list_orders(turn: _Turn) -> None:
    orders = turn.ctx.orders
    if not orders:
        turn.say(texts.NO_ORDERS)
        return
    listed = orders[:MAX_ORDERS_LISTED]
    rows = [
        [InlineButton(texts.pdf_button(o.reference), data=f"pdf:{o.reference}")]
        for o in listed
        if o.status.is_paid
    ]
    turn.say(texts.orders_list([texts.order_line(o) for o in listed], len(orders)), rows)
