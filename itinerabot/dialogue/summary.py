"""Moving on after an answer: the next question, or the summary with its order and pay buttons.

Leaving the summary lets go of its order again, cancelling it while it is unpaid.
"""

from __future__ import annotations

from collections.abc import Sequence

from itinerabot.dialogue import texts, validate
from itinerabot.dialogue.checks import arrival, departure, next_question
from itinerabot.dialogue.draft import SUMMARY, Draft
from itinerabot.dialogue.prompts import ask, flight_label
from itinerabot.dialogue.turn import Turn, find_order, step_button
from itinerabot.dialogue.types import CancelOrder, CreateOrder, InlineButton
from itinerabot.i18n import Texts
from itinerabot.models import Flight, Itinerary, OrderStatus


def advance(turn: Turn, preface: Sequence[str] = ()) -> None:
    """Ask the next question that needs an answer, or show the summary when none does."""
    found = next_question(turn.draft, turn.ctx)
    if found is None:
        _show_summary(turn, preface)
        return
    key, reason = found
    notes = [*preface, release_order(turn), reason or ""]
    ask(turn, key, notes)


def release_order(turn: Turn) -> str:
    """Let go of the summary's order: cancel it if unpaid. Returns a note for the traveller."""
    reference, turn.draft.order = turn.draft.order, None
    order = find_order(turn.ctx, reference)
    if reference is None or order is None:
        return ""
    if order.status is OrderStatus.AWAITING_PAYMENT:
        turn.actions.append(CancelOrder(reference))
        return texts.order_cancelled(turn.t, reference)
    if order.status.is_paid:
        return texts.order_kept_paid(turn.t, reference)
    return ""


def _show_summary(turn: Turn, preface: Sequence[str]) -> None:
    draft, ctx, t = turn.draft, turn.ctx, turn.t
    itinerary, shown = _itinerary(t, draft)
    if draft.order is None:
        draft.order = ctx.new_reference
        turn.actions.append(CreateOrder(draft.order, itinerary))
    draft.move_to(SUMMARY)
    notes = [p for p in preface if p]
    if notes:
        turn.say("\n\n".join(notes))
    text = texts.summary(t, draft.passenger or "", shown, texts.offered_price(t, ctx), draft.order)
    pay: list[InlineButton] = []
    if ctx.stars_price is not None:
        label = t.gettext(texts.PAY_STARS, price=ctx.stars_price)
        pay.append(InlineButton(label, data=f"pay:stars:{draft.order}"))
    if ctx.card_enabled:
        pay.append(InlineButton(t.gettext(texts.PAY_CARD), data=f"pay:card:{draft.order}"))
    if ctx.usdc_enabled:
        pay.append(InlineButton(t.gettext(texts.PAY_USDC), data=f"pay:usdc:{draft.order}"))
    if not pay:
        text = texts.clip(f"{text}\n\n{t.gettext(texts.NO_PAYMENT_METHOD)}")
    rows = [
        pay,
        [
            step_button(draft, t.gettext(texts.EDIT), "sum", "edit"),
            step_button(draft, t.gettext(texts.CANCEL), "sum", "cancel"),
        ],
    ]
    turn.say(text, rows)


def _itinerary(t: Texts, draft: Draft) -> tuple[Itinerary, list[tuple[str, Flight, int]]]:
    """The finished itinerary; call only when `next_question` is None."""
    shown: list[tuple[str, Flight, int]] = []
    for index in range(2 if draft.return_trip else 1):
        flight = draft.flights[index]
        departed, arrived = departure(flight), arrival(flight)
        assert flight.origin and flight.destination and flight.number and departed
        assert isinstance(arrived, validate.Arrival)
        made = Flight(flight.number, flight.origin, flight.destination, departed, arrived.local)
        shown.append((flight_label(t, draft, index), made, arrived.offset))
    assert draft.passenger
    return Itinerary((draft.passenger,), tuple((f,) for _, f, _ in shown)), shown
