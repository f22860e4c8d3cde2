"""Asking a question: its prompt, the current answer if there is one, and its buttons.

Also the one-line hint of what the traveller can do where the dialogue stands, and what each
flight is called ("Flight 2 (connecting at DOH)").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from itinerabot.dialogue import texts
from itinerabot.dialogue.checks import landing, local_today
from itinerabot.dialogue.draft import (
    EDIT,
    EDIT_FLIGHT,
    MORE,
    SUMMARY,
    TRAVELLERS,
    Draft,
    answer_of,
    index_of,
    kind_of,
    split_key,
)
from itinerabot.dialogue.turn import Turn, airport_button, step_button
from itinerabot.dialogue.types import Context, InlineButton
from itinerabot.i18n import Texts

_EXAMPLE = timedelta(days=30)  # how far ahead the example date in the date question is
_CHOICES = (TRAVELLERS, MORE)


def ask(
    turn: Turn,
    key: str,
    preface: Sequence[str] = (),
    more: Sequence[tuple[str, str, str]] = (),
) -> None:
    """Ask the question `key` after the non-empty notes of `preface`, as a new step; `more`
    adds a row of a step button for each (label, kind, value)."""
    draft = turn.draft
    draft.move_to(key)
    parts = [p for p in preface if p]
    parts.append(_prompt(draft, key, turn.ctx))
    value = answer_of(draft, key)
    if value is not None and key not in _CHOICES and value != "":
        parts.append(texts.currently(turn.t, _shown(turn.t, draft, key)))
    rows = _prompt_keyboard(turn.t, draft, key, turn.ctx)
    rows += [[step_button(draft, label, kind, value)] for label, kind, value in more]
    turn.say("\n\n".join(parts), rows)


def hint(t: Texts, draft: Draft) -> str:
    """What the traveller can do where the dialogue stands."""
    if draft.at is None:
        return t.gettext(texts.IDLE_HINT)
    if draft.at == SUMMARY:
        return t.gettext(texts.SUMMARY_HINT)
    if draft.at == EDIT or draft.at.startswith(EDIT_FLIGHT + "."):
        return t.gettext(texts.EDIT_HINT)
    return t.gettext(texts.HINTS[kind_of(draft.at)])


def flight_label(t: Texts, draft: Draft, index: int) -> str:
    """What the flight at `index` is called: "Flight", "Flight 2", "Flight 2 (connecting at
    DOH)"."""
    label = texts.flight_label(t, index, len(draft.flights))
    via = draft.flights[index].origin
    if draft.flights[index].connection and via is not None:
        return texts.connection_label(t, label, via)
    return label


def _prompt(draft: Draft, key: str, ctx: Context) -> str:
    t = ctx.texts
    kind = kind_of(key)
    if kind == "name":
        number = index_of(key) + 1
        return t.gettext(texts.ASK_NAME) if number == 1 else texts.ask_next_name(t, number)
    if key == TRAVELLERS:
        text = t.gettext(texts.ASK_TRAVELLERS)
        if len(draft.passengers) >= ctx.trips.max_travellers:
            text = texts.travellers_full(t, ctx.trips.max_travellers)
        return text
    if key == MORE:
        last = len(draft.flights) - 1
        flight, landed = draft.flights[last], landing(draft.flights[last])
        assert flight.destination and landed
        text = texts.ask_more(t, flight_label(t, draft, last), flight.destination, landed)
        if len(draft.flights) >= ctx.trips.max_flights:
            text += "\n" + texts.flights_full(t, ctx.trips.max_flights)
        return text
    index, name = split_key(key)
    flight, label = draft.flights[index], flight_label(t, draft, index)
    if name == "origin":
        text = texts.ask_origin(t, label)
        if _previous_destination(draft, index):
            text += "\n" + t.gettext(texts.RETURN_ORIGIN_HINT)
        return text
    assert flight.origin
    if name == "destination":  # names the origin itself: the plain label will do
        plain = texts.flight_label(t, index, len(draft.flights))
        text = texts.ask_destination(t, plain, flight.origin)
        start = draft.flights[0].origin
        if index and start and start != flight.origin:
            text += "\n" + t.gettext(texts.RETURN_DESTINATION_HINT)
        return text
    if name == "number":
        assert flight.destination
        return texts.ask_number(t, label, flight.origin, flight.destination)
    if name == "airline":
        assert flight.number
        if flight.airline is not None:  # changing a name already given or looked up
            return texts.ask_airline_again(t, label, flight.number)
        return texts.ask_airline(t, label, flight.number)
    if name == "date":
        example = local_today(ctx, flight.origin) + _EXAMPLE
        return texts.ask_date(t, label, flight.origin, example)
    if name == "departure":
        assert flight.date
        return texts.ask_departure(t, label, flight.origin, flight.date)
    assert flight.destination
    return texts.ask_arrival(t, label, flight.destination)


def _shown(t: Texts, draft: Draft, key: str) -> str:
    """The current answer to `key`, as the traveller would read it."""
    if key.startswith("name."):
        return draft.passengers[index_of(key)] or ""
    index, name = split_key(key)
    flight = draft.flights[index]
    if name in ("origin", "destination"):
        airport = flight.origin if name == "origin" else flight.destination
        return texts.airport(airport) if airport else ""
    if name == "date" and flight.date:
        return texts.day(t, flight.date)
    if name == "departure" and flight.departure:
        return flight.departure.strftime("%H:%M")
    if name == "arrival" and flight.arrival:
        offset = flight.arrival_offset
        return flight.arrival.strftime("%H:%M") + ("" if offset is None else f" {offset:+d}")
    if name == "airline":
        return flight.airline or ""
    return flight.number or ""


def _previous_destination(draft: Draft, index: int) -> bool:
    return index > 0 and draft.flights[index - 1].destination is not None


def _prompt_keyboard(t: Texts, draft: Draft, key: str, ctx: Context) -> list[list[InlineButton]]:
    if key == TRAVELLERS:
        done = [step_button(draft, t.gettext(texts.TRAVELLERS_DONE), "tr", "done")]
        if len(draft.passengers) >= ctx.trips.max_travellers:
            return [done]
        return [[step_button(draft, t.gettext(texts.ADD_TRAVELLER), "tr", "add")], done]
    if key == MORE:
        return _more_keyboard(t, draft, ctx)
    if key.startswith("name."):
        return []
    index, name = split_key(key)
    flight = draft.flights[index]
    if name == "airline":
        return [[step_button(draft, t.gettext(texts.SKIP_AIRLINE), "al", "skip")]]
    before = draft.flights[index - 1] if index else None
    if name == "origin" and before and before.destination:
        return [[airport_button(draft, before.destination)]]
    start = draft.flights[0].origin
    if name == "destination" and index and start and flight.origin and start != flight.origin:
        return [[airport_button(draft, start)]]
    landed = landing(before) if before else None
    if name == "date" and flight.connection and landed:
        first = landed.date()
        return [
            [
                step_button(
                    draft, t.gettext(texts.SAME_DAY, day=texts.day(t, first)), "dt", f"{first}"
                ),
                step_button(
                    draft,
                    t.gettext(texts.NEXT_DAY, day=texts.day(t, first + timedelta(days=1))),
                    "dt",
                    f"{first + timedelta(days=1)}",
                ),
            ]
        ]
    return []


def _more_keyboard(t: Texts, draft: Draft, ctx: Context) -> list[list[InlineButton]]:
    done = [step_button(draft, t.gettext(texts.FLIGHTS_DONE), "mo", "done")]
    last = draft.flights[-1]
    if len(draft.flights) >= ctx.trips.max_flights or last.destination is None:
        return [done]
    connect = texts.add_connection(t, last.destination)
    return [
        [step_button(draft, connect, "mo", "connect")],
        [step_button(draft, t.gettext(texts.ADD_LEG), "mo", "leg")],
        done,
    ]
