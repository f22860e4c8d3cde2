"""Inline button presses: step buttons (choices, airport, date, summary, edit menus), pay, PDF
and language buttons.

A step button carries the step's `seq`, so a press on a button of an earlier step changes nothing.
"""

from __future__ import annotations

import re
from datetime import date

from itinerabot.dialogue import texts
from itinerabot.dialogue.airports import default_index
from itinerabot.dialogue.answers import answer
from itinerabot.dialogue.choices import (
    add_flight,
    add_traveller,
    make_next_leg,
    no_more_flights,
    no_more_travellers,
    remove_flight,
    remove_passenger,
)
from itinerabot.dialogue.commands import cancel
from itinerabot.dialogue.draft import (
    EDIT,
    EDIT_FLIGHT,
    MORE,
    SUMMARY,
    TRAVELLERS,
    Draft,
    first_missing,
    kind_of,
)
from itinerabot.dialogue.menus import editable, flight_text, show_edit_menu, show_flight_menu
from itinerabot.dialogue.prompts import ask, hint
from itinerabot.dialogue.summary import advance, release_order
from itinerabot.dialogue.turn import Turn, find_order
from itinerabot.dialogue.types import (
    AnswerCallback,
    ButtonPress,
    ChooseLanguage,
    PayByCard,
    PayWithStars,
    PayWithUsdc,
    RemoveButtons,
    ResendDocument,
)
from itinerabot.i18n import LANGUAGES, texts_for
from itinerabot.models import OrderStatus

_STEP_DATA = re.compile(r"(\d{1,12}):([a-z]{1,8})(?::([A-Za-z0-9._-]{1,40}))?")


def on_press(turn: Turn, press: ButtonPress) -> str | None:
    """Handle a button press; returns the toast text if the press is stale and changes nothing."""
    data, t = press.data, turn.t
    if data.startswith("lang:"):
        return _on_language(turn, press)
    if data.startswith("pay:"):
        return _on_pay(turn, press)
    if data.startswith("pdf:"):
        return _on_pdf(turn, press)
    match = _STEP_DATA.fullmatch(data)
    if match is None or int(match[1]) != turn.draft.seq:
        return t.gettext(texts.STALE)
    kind, value = match[2], match[3] or ""
    if not _press_fits(turn.draft, kind, value):
        return t.gettext(texts.STALE)
    turn.replies.append(AnswerCallback(press.callback_id))
    if press.message_id is not None:
        turn.replies.append(RemoveButtons(press.message_id))
    _on_step_button(turn, kind, value)
    return None


def _press_fits(draft: Draft, kind: str, value: str) -> bool:
    at = draft.at
    if at is None:
        return False
    menu = at == EDIT or at.startswith(EDIT_FLIGHT + ".")
    if kind == "tr":
        return at == TRAVELLERS and value in ("add", "done")
    if kind == "mo":
        return at == MORE and value in ("connect", "leg", "done")
    if kind == "ap":
        return (
            kind_of(at) in ("origin", "destination") and default_index().by_code(value) is not None
        )
    if kind == "al":
        return kind_of(at) == "airline" and "." in at and value == "skip"
    if kind == "dt":
        return kind_of(at) == "date" and "." in at and _iso_date(value) is not None
    if kind == "nl":
        return _flight_at(draft, value) and at in (f"{value}.date", f"{value}.departure")
    if kind == "sum":
        return at == SUMMARY and value in ("edit", "cancel")
    if kind == "ef" and value == "back":
        return menu
    if kind == "ef":  # from a menu, or "Change the date" under a departure that does not fit
        date_of = at.endswith(".departure") and value == at.replace(".departure", ".date")
        return (menu or date_of) and editable(draft, value)
    if kind == "menu":  # under a question an edit made wrong: every answer is there
        return not menu and at != SUMMARY and first_missing(draft) is None
    if kind == "em":
        return at == EDIT and _flight_at(draft, value)
    if kind == "rm":
        return menu and _removable(draft, value)
    if kind == "add":
        return at == EDIT and value in ("p", "f")
    return False


def _flight_at(draft: Draft, value: str) -> bool:
    return value.isdigit() and int(value) < len(draft.flights)


def _iso_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _removable(draft: Draft, value: str) -> bool:
    what, number = value[:1], value[1:]
    if not number.isdigit():
        return False
    if what == "p":
        return len(draft.passengers) > 1 and int(number) < len(draft.passengers)
    return what == "f" and len(draft.flights) > 1 and int(number) < len(draft.flights)


def _on_step_button(turn: Turn, kind: str, value: str) -> None:
    draft, rules = turn.draft, turn.ctx.trips
    if kind == "tr" and value == "add" and len(draft.passengers) < rules.max_travellers:
        add_traveller(turn)
    elif kind == "tr":
        no_more_travellers(turn)
    elif kind == "mo" and value != "done" and len(draft.flights) < rules.max_flights:
        add_flight(turn, connection=value == "connect")
    elif kind == "mo":
        no_more_flights(turn)
    elif kind == "ap":
        airport = default_index().by_code(value)
        assert airport and draft.at
        answer(turn, draft.at, airport)
    elif kind == "al":
        assert draft.at
        answer(turn, draft.at, "")
    elif kind == "dt":
        chosen = _iso_date(value)
        assert chosen and draft.at
        answer(turn, draft.at, chosen)
    elif kind == "nl":
        make_next_leg(turn, int(value))
    elif kind == "sum" and value == "cancel":
        cancel(turn)
    elif kind == "sum":
        show_edit_menu(turn)
    elif kind == "ef" and value == "back" and draft.at == EDIT:
        advance(turn)
    elif kind == "ef" and value == "back":
        show_edit_menu(turn)
    elif kind == "ef":
        ask(turn, value, [release_order(turn)])
    elif kind == "em":
        show_flight_menu(turn, int(value))
    elif kind == "menu":
        show_edit_menu(turn)
    elif kind == "rm":
        _remove(turn, value)
    else:
        _add(turn, value)


def _remove(turn: Turn, value: str) -> None:
    note = release_order(turn)
    index = int(value[1:])
    if value.startswith("p"):
        remove_passenger(turn, index)
    else:
        remove_flight(turn, index, flight_text(turn.draft, index))
    if note:
        turn.say(note)


def _add(turn: Turn, value: str) -> None:
    draft, rules, t = turn.draft, turn.ctx.trips, turn.t
    if value == "p" and len(draft.passengers) >= rules.max_travellers:
        turn.say(texts.travellers_full(t, rules.max_travellers))
    elif value == "f" and len(draft.flights) >= rules.max_flights:
        turn.say(texts.flights_full(t, rules.max_flights))
    else:
        note = release_order(turn)
        if note:
            turn.say(note)
        (add_traveller if value == "p" else _reopen_flights)(turn)


def _reopen_flights(turn: Turn) -> None:
    turn.draft.flights_done = False
    advance(turn)


_PAY: dict[str, type[PayByCard | PayWithUsdc | PayWithStars]] = {
    "card": PayByCard,
    "usdc": PayWithUsdc,
    "stars": PayWithStars,
}


def _on_pay(turn: Turn, press: ButtonPress) -> str | None:
    _, method, reference = [*press.data.split(":", 2), "", ""][:3]
    t = turn.t
    if method not in ("card", "usdc", "stars") or not reference:
        return t.gettext(texts.STALE)
    order = find_order(turn.ctx, reference)
    if order is None and reference != turn.draft.order:
        return t.gettext(texts.ORDER_UNKNOWN)
    if order is not None and order.status.is_paid:
        return t.gettext(texts.ALREADY_PAID)
    if order is not None and order.status is OrderStatus.CANCELLED:
        return t.gettext(texts.ORDER_WAS_CANCELLED)
    if method == "card" and not turn.ctx.card_enabled:
        return t.gettext(texts.CARD_OFF)
    if method == "usdc" and not turn.ctx.usdc_enabled:
        return t.gettext(texts.USDC_OFF)
    if method == "stars" and turn.ctx.stars_price is None:
        return t.gettext(texts.STARS_OFF)
    turn.replies.append(AnswerCallback(press.callback_id))
    pay: type[PayByCard | PayWithUsdc | PayWithStars] = _PAY[method]
    turn.actions.append(pay(reference))
    return None


def _on_pdf(turn: Turn, press: ButtonPress) -> str | None:
    order, t = find_order(turn.ctx, press.data.removeprefix("pdf:")), turn.t
    if order is None:
        return t.gettext(texts.ORDER_UNKNOWN)
    if not order.status.is_paid:
        return t.gettext(texts.NOT_PAID_NO_PDF)
    turn.replies.append(AnswerCallback(press.callback_id, t.gettext(texts.SENDING_PDF)))
    turn.actions.append(ResendDocument(order.reference))
    return None


def _on_language(turn: Turn, press: ButtonPress) -> str | None:
    """Remember the picked language and answer in it, with what to do next."""
    code = press.data.removeprefix("lang:")
    if code not in LANGUAGES:
        return turn.t.gettext(texts.STALE)
    turn.replies.append(AnswerCallback(press.callback_id))
    if press.message_id is not None:
        turn.replies.append(RemoveButtons(press.message_id))
    turn.actions.append(ChooseLanguage(code))
    chosen = texts_for(code)
    turn.say(f"{chosen.gettext(texts.LANGUAGE_SET)}\n{hint(chosen, turn.draft)}")
    return None
