"""Asking a question: its prompt, the current answer if there is one, and its buttons.

Also the one-line hint of what the traveller can do where the dialogue stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from itinerabot.dialogue import texts
from itinerabot.dialogue.checks import local_today
from itinerabot.dialogue.draft import EDIT, SUMMARY, Draft, answer_of, split_key
from itinerabot.dialogue.turn import Turn, airport_button, step_button
from itinerabot.dialogue.types import Context, InlineButton
from itinerabot.i18n import Texts

_EXAMPLE = timedelta(days=30)  # how far ahead the example date in the date question is


def ask(turn: Turn, key: str, preface: Sequence[str] = ()) -> None:
    """Ask the question `key` after the non-empty notes of `preface`, as a new step."""
    draft = turn.draft
    draft.move_to(key)
    parts = [p for p in preface if p]
    parts.append(_prompt(draft, key, turn.ctx))
    value = answer_of(draft, key)
    if value is not None and key != "trip":
        parts.append(texts.currently(turn.t, _shown(turn.t, draft, key)))
    turn.say("\n\n".join(parts), _prompt_keyboard(turn.t, draft, key))


def hint(t: Texts, draft: Draft) -> str:
    """What the traveller can do where the dialogue stands."""
    if draft.at is None:
        return t.gettext(texts.IDLE_HINT)
    if draft.at == SUMMARY:
        return t.gettext(texts.SUMMARY_HINT)
    if draft.at == EDIT:
        return t.gettext(texts.EDIT_HINT)
    name = draft.at.partition(".")[2] or draft.at
    return t.gettext(texts.HINTS[name])


def flight_label(t: Texts, draft: Draft, index: int) -> str:
    """What the flight at `index` is called: "Flight", or "Outbound flight" / "Return flight"."""
    return texts.flight_label(t, index, bool(draft.return_trip))


def _prompt(draft: Draft, key: str, ctx: Context) -> str:
    t = ctx.texts
    if key == "name":
        return t.gettext(texts.ASK_NAME)
    if key == "trip":
        return t.gettext(texts.ASK_TRIP)
    index, name = split_key(key)
    flight, label = draft.flights[index], flight_label(t, draft, index)
    if name == "origin":
        return texts.ask_origin(t, label)
    assert flight.origin
    if name == "destination":
        return texts.ask_destination(t, label, flight.origin)
    if name == "number":
        assert flight.destination
        return texts.ask_number(t, label, flight.origin, flight.destination)
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
    if key == "name":
        return draft.passenger or ""
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
    return flight.number or ""


def _prompt_keyboard(t: Texts, draft: Draft, key: str) -> list[list[InlineButton]]:
    if key == "trip":
        return [
            [
                step_button(draft, t.gettext(texts.TRIP_ONE_WAY), "trip", "oneway"),
                step_button(draft, t.gettext(texts.TRIP_RETURN), "trip", "return"),
            ]
        ]
    outbound = draft.flights[0]
    if key == "1.origin" and outbound.destination:
        return [[airport_button(draft, outbound.destination)]]
    if key == "1.destination" and outbound.origin:
        return [[airport_button(draft, outbound.origin)]]
    return []
