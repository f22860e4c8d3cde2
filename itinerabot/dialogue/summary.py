"""Moving on after an answer: the next question, or the summary with its order and pay buttons.

Leaving the summary lets go of its order again, cancelling it while it is unpaid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from itinerabot.dialogue import texts, validate
from itinerabot.dialogue.checks import arrival, departure, next_question
from itinerabot.dialogue.draft import SUMMARY, Draft, first_missing, legs
from itinerabot.dialogue.menus import show_edit_menu
from itinerabot.dialogue.prompts import ask
from itinerabot.dialogue.turn import Turn, find_order, step_button
from itinerabot.dialogue.types import CancelOrder, CreateOrder, InlineButton
from itinerabot.models import Flight, Itinerary, OrderStatus


def advance(turn: Turn, preface: Sequence[str] = ()) -> None:
    """Ask the next question that needs an answer, or show the summary when none does."""
    found = next_question(turn.draft, turn.ctx)
    over = _over_the_limits(turn) if found is None and turn.draft.order is None else ""
    if over:  # the shop lowered its limits while this draft was made
        show_edit_menu(turn, "\n\n".join(p for p in (*preface, over) if p))
        return
    if found is None:
        _show_summary(turn, preface)
        return
    key, reason = found
    notes = [*preface, release_order(turn), reason or ""]
    # an edit broke a later answer: the traveller may rather change something else
    back = reason is not None and first_missing(turn.draft) is None
    more = [(turn.t.gettext(texts.TO_EDIT_MENU), "menu", "")] if back else []
    ask(turn, key, notes, more)


def _over_the_limits(turn: Turn) -> str:
    """Why the draft cannot become an order as it is (more flights or travellers than the shop
    allows), or ""."""
    draft, rules, t = turn.draft, turn.ctx.trips, turn.t
    if len(draft.flights) > rules.max_flights:
        return texts.too_many_flights(t, len(draft.flights), rules.max_flights)
    if len(draft.passengers) > rules.max_travellers:
        return texts.too_many_travellers(t, len(draft.passengers), rules.max_travellers)
    return ""


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
    itinerary = _itinerary(draft)
    units = len(itinerary.passengers) if ctx.per_traveller else 1
    stored = find_order(ctx, draft.order)
    if stored is not None:  # shown again: say what paying it will charge, not today's pricing
        ctx = dataclasses.replace(ctx, price=stored.unit_price, currency=stored.currency)
        units = stored.quantity
    if draft.order is None:
        draft.order = ctx.new_reference
        turn.actions.append(CreateOrder(draft.order, itinerary, units))
    draft.move_to(SUMMARY)
    notes = [p for p in preface if p]
    if notes:
        turn.say("\n\n".join(notes))
    price = texts.total_price(t, ctx, units)
    text = texts.summary(t, itinerary, price, draft.order)
    pay: list[InlineButton] = []
    if ctx.stars_price is not None:
        label = t.gettext(texts.PAY_STARS, price=ctx.stars_price * units)
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


def _itinerary(draft: Draft) -> Itinerary:
    """The finished itinerary; call only when `next_question` is None."""
    flights: list[Flight] = []
    for flight in draft.flights:
        departed, arrived = departure(flight), arrival(flight)
        assert flight.origin and flight.destination and flight.number and departed
        assert isinstance(arrived, validate.Arrival)
        airline = flight.airline or None  # "" when the traveller skipped the question
        made = Flight(
            flight.number, flight.origin, flight.destination, departed, arrived.local, airline
        )
        flights.append(made)
    grouped = tuple(tuple(flights[i] for i in leg) for leg in legs(draft))
    names = tuple(p for p in draft.passengers if p)
    assert len(names) == len(draft.passengers)
    return Itinerary(names, grouped)
