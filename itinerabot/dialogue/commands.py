"""The slash commands: /start (with or without a deep link), /help, /cancel, /status, /orders,
/language.

Each answers from the draft and the chat's orders in the context; none needs a question asked.
"""

from __future__ import annotations

import re

from itinerabot.dialogue import texts
from itinerabot.dialogue.draft import (
    EDIT,
    EDIT_FLIGHT,
    SUMMARY,
    Draft,
    answer_of,
    index_of,
    kind_of,
    questions,
)
from itinerabot.dialogue.prompts import ask, flight_label, hint
from itinerabot.dialogue.summary import release_order
from itinerabot.dialogue.turn import Turn, find_order
from itinerabot.dialogue.types import CommandMessage, Context, DeepLinkReturn, InlineButton
from itinerabot.models import OrderStatus

#: how many orders /orders lists; the caller hands in one more, to know whether there are more
MAX_ORDERS_LISTED = 20
_DEEP_LINK = re.compile(r"[A-Za-z0-9_-]{1,64}")


def on_command(turn: Turn, command: CommandMessage) -> None:
    """Carry out `command`, or say which commands there are."""
    name, arg = command.name, command.arg.strip()
    if name == "start" and arg and _DEEP_LINK.fullmatch(arg):
        turn.actions.append(DeepLinkReturn(arg))
    elif name == "start":
        _start(turn)
    elif name == "help":
        help_text = texts.help_text(turn.t, turn.ctx)
        turn.say(f"{help_text}\n\n{hint(turn.t, turn.draft)}")
    elif name == "cancel":
        cancel(turn)
    elif name == "status":
        turn.say(_status(turn.draft, turn.ctx))
    elif name == "orders":
        _list_orders(turn)
    elif name == "language":
        rows = [
            [InlineButton(label, data=f"lang:{code}")] for code, label in texts.language_buttons()
        ]
        turn.say(turn.t.gettext(texts.ASK_LANGUAGE), rows)
    else:
        turn.say(texts.unknown_command(turn.t, name))


def cancel(turn: Turn) -> None:
    """Drop the draft and let go of its order, or say there is nothing to cancel."""
    draft = turn.draft
    if draft.at is None and draft.order is None:
        turn.say(turn.t.gettext(texts.NOTHING_TO_CANCEL))
        return
    note = release_order(turn)
    turn.draft = Draft(seq=draft.seq + 1)
    turn.say("\n".join(p for p in (turn.t.gettext(texts.DRAFT_DROPPED), note) if p))


def _start(turn: Turn) -> None:
    old = turn.draft
    order = find_order(turn.ctx, old.order)
    kept = ""
    if old.order and (order is None or order.status is OrderStatus.AWAITING_PAYMENT):
        kept = texts.order_still_payable(turn.t, old.order)
    turn.draft = Draft(seq=old.seq)
    ask(turn, "name.0", [texts.greeting(turn.t, turn.ctx), kept])


def _status(draft: Draft, ctx: Context) -> str:
    t = ctx.texts
    if draft.at == SUMMARY and draft.order:
        return texts.status_summary(t, draft.order, find_order(ctx, draft.order))
    if draft.at == EDIT or (draft.at or "").startswith(EDIT_FLIGHT + "."):
        return t.gettext(texts.STATUS_EDITING)
    if draft.at is not None:
        keys = questions(draft)
        answered = sum(answer_of(draft, k) is not None for k in keys)
        question = t.gettext(texts.QUESTIONS[kind_of(draft.at)])
        if draft.at[:1].isdigit():
            question = f"{flight_label(t, draft, index_of(draft.at))}: {question}"
        elif draft.at.startswith("name.") and len(draft.passengers) > 1:
            number = index_of(draft.at) + 1
            question = f"{t.gettext(texts.TRAVELLER_NUMBER, number=number)}: {question}"
        return texts.status_in_progress(t, answered, len(keys), question)
    if ctx.orders:
        return f"{t.gettext(texts.STATUS_IDLE)}\n{texts.status_latest(t, ctx.orders[0])}"
    return t.gettext(texts.STATUS_IDLE)


def _list_orders(turn: Turn) -> None:
    orders, t = turn.ctx.orders, turn.t
    if not orders:
        turn.say(t.gettext(texts.NO_ORDERS))
        return
    listed = orders[:MAX_ORDERS_LISTED]
    rows = [
        [InlineButton(texts.pdf_button(t, o.reference), data=f"pdf:{o.reference}")]
        for o in listed
        if o.status.is_paid
    ]
    more = len(orders) > len(listed)
    turn.say(texts.orders_list(t, [texts.order_line(t, o) for o in listed], more), rows)
