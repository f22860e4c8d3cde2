"""Inline button presses: step buttons (trip, airport, summary, edit menu), pay, PDF and
language buttons.

A step button carries the step's `seq`, so a press on a button of an earlier step changes nothing.
"""

from __future__ import annotations

import re

from itinerabot.dialogue import texts
from itinerabot.dialogue.airports import default_index
from itinerabot.dialogue.answers import answer
from itinerabot.dialogue.commands import cancel
from itinerabot.dialogue.draft import EDIT, FLIGHT_FIELDS, SUMMARY, Draft, answer_of, questions
from itinerabot.dialogue.prompts import ask, hint
from itinerabot.dialogue.summary import advance, release_order
from itinerabot.dialogue.turn import Turn, find_order, step_button
from itinerabot.dialogue.types import (
    AnswerCallback,
    ButtonPress,
    ChooseLanguage,
    InlineButton,
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
    return key in questions(draft) and answer_of(draft, key) is not None


def _on_step_button(turn: Turn, kind: str, value: str) -> None:
    draft = turn.draft
    if kind == "trip":
        answer(turn, "trip", value == "return")
    elif kind == "ap":
        airport = default_index().by_code(value)
        assert airport and draft.at
        answer(turn, draft.at, airport)
    elif kind == "sum" and value == "cancel":
        cancel(turn)
    elif kind == "sum":
        _show_edit_menu(turn)
    elif value == "back":
        advance(turn)
    else:
        ask(turn, value, [release_order(turn)])


def _show_edit_menu(turn: Turn) -> None:
    draft, t = turn.draft, turn.t
    draft.move_to(EDIT)
    rows: list[list[InlineButton]] = [
        [
            step_button(draft, texts.edit_label(t, "name", None), "ef", "name"),
            step_button(draft, texts.edit_label(t, "trip", None), "ef", "trip"),
        ]
    ]
    for index in range(2 if draft.return_trip else 1):
        label = texts.edit_flight_label(t, index) if draft.return_trip else None
        buttons = [
            step_button(draft, texts.edit_label(t, name, label), "ef", f"{index}.{name}")
            for name in FLIGHT_FIELDS
        ]
        rows += [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([step_button(draft, t.gettext(texts.BACK_TO_SUMMARY), "ef", "back")])
    turn.say(t.gettext(texts.EDIT_WHAT), rows)


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
