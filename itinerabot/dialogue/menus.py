"""The edit menus: every traveller and flight of the draft with buttons to change or remove
it, and one flight's fields.

Shown from the summary's Edit button, or when a draft holds more than the shop allows.
"""

from __future__ import annotations

from itinerabot.dialogue import texts
from itinerabot.dialogue.draft import (
    EDIT,
    EDIT_FLIGHT,
    MORE,
    TRAVELLERS,
    Draft,
    answer_of,
    index_of,
    kind_of,
    questions,
)
from itinerabot.dialogue.turn import Turn, step_button
from itinerabot.dialogue.types import InlineButton


def editable(draft: Draft, key: str) -> bool:
    """True when the question `key` has an answer the traveller may change from a menu."""
    if key in (TRAVELLERS, MORE) or key not in questions(draft):
        return False
    if kind_of(key) == "origin" and draft.flights[index_of(key)].connection:
        return False  # a connection departs where the flight before it lands
    return answer_of(draft, key) is not None


def flight_text(draft: Draft, index: int) -> str:
    """`QR 830 DOH→BKK`: a flight as a button or a note names it."""
    flight = draft.flights[index]
    origin = flight.origin.iata if flight.origin else "?"
    destination = flight.destination.iata if flight.destination else "?"
    return f"{flight.number or '?'} {origin}→{destination}"


def show_edit_menu(turn: Turn, note: str = "") -> None:
    """The menu of every traveller and flight; `note` says why it is shown, if not asked for."""
    draft, t, rules = turn.draft, turn.t, turn.ctx.trips
    draft.move_to(EDIT)
    rows: list[list[InlineButton]] = []
    several = len(draft.passengers) > 1
    for index, name in enumerate(draft.passengers):
        label = f"✎ {index + 1}. {name}" if several else f"✎ {name}"
        row = [step_button(draft, label, "ef", f"name.{index}")]
        if several:
            row.append(step_button(draft, t.gettext(texts.REMOVE), "rm", f"p{index}"))
        rows.append(row)
    if len(draft.passengers) < rules.max_travellers:
        rows.append([step_button(draft, t.gettext(texts.ADD_TRAVELLER), "add", "p")])
    for index in range(len(draft.flights)):
        label = f"✎ {index + 1}. {flight_text(draft, index)}"
        rows.append([step_button(draft, label, "em", str(index))])
    if len(draft.flights) < rules.max_flights:
        rows.append([step_button(draft, t.gettext(texts.ADD_FLIGHT), "add", "f")])
    rows.append([step_button(draft, t.gettext(texts.BACK_TO_SUMMARY), "ef", "back")])
    turn.say("\n\n".join(p for p in (note, t.gettext(texts.EDIT_WHAT)) if p), rows)


def show_flight_menu(turn: Turn, index: int) -> None:
    draft, t = turn.draft, turn.t
    label = texts.flight_label(t, index, len(draft.flights))
    draft.move_to(f"{EDIT_FLIGHT}.{index}")
    keys = [k for k in questions(draft) if k.startswith(f"{index}.") and editable(draft, k)]
    buttons = [step_button(draft, texts.edit_label(t, kind_of(k)), "ef", k) for k in keys]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    if len(draft.flights) > 1:
        rows.append([step_button(draft, t.gettext(texts.REMOVE_FLIGHT), "rm", f"f{index}")])
    rows.append([step_button(draft, t.gettext(texts.BACK), "ef", "back")])
    turn.say(texts.edit_flight_what(t, label, flight_text(draft, index)), rows)
