"""A tap on "Pay with Telegram Stars": store an invoice for the order and queue it to the chat.

No provider is called (Telegram itself is the provider), so this runs inside the tap's own
transaction: the invoice row and the message commit with the update.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from itinerabot.i18n import Texts
from itinerabot.messages import Invoice, Message, Text
from itinerabot.models import STARS_MAX, Itinerary, stops
from itinerabot.payments.texts import not_payable, order_not_found
from itinerabot.store import orders as order_rows
from itinerabot.store import stars

TITLE_MAX = 32
DESCRIPTION_MAX = 255
#: the fewest characters worth giving the route or the name in a shortened description
MIN_PART = 12


def _airports(itinerary: Itinerary) -> list[str]:
    """The IATA codes in the order flown (a return trip ends where it began)."""
    return [a.iata for a in stops(itinerary.flights)]


def route(itinerary: Itinerary, most: int | None = None) -> str:
    """`FRA → DOH → BKK`: the airports in the order flown. Within `most` characters when
    given: stops are left out from the end of the middle (`FRA → DOH → … → SYD`), the first
    and last airports kept as long as they fit."""
    codes = _airports(itinerary)
    whole = " → ".join(codes)
    if most is None or len(whole) <= most:
        return whole
    for kept in range(len(codes) - 2, 0, -1):
        shorter = " → ".join([*codes[:kept], "…", codes[-1]])
        if len(shorter) <= most:
            return shorter
    return _clip(whole, most)


def _clip(text: str, most: int) -> str:
    if most <= 0:
        return ""
    return text if len(text) <= most else text[: most - 1] + "…"


def _names(passengers: tuple[str, ...], most: int | None = None) -> str:
    """`ANNA LI, OLEG LI`: the travellers' names. Within `most` characters when given: names
    are left out from the end (`ANNA LI, …`; the sentence says how many there are), and a
    first name too long on its own is clipped."""
    whole = ", ".join(passengers)
    if most is None or len(whole) <= most:
        return whole
    for kept in range(len(passengers) - 1, 0, -1):
        shorter = ", ".join([*passengers[:kept], "…"])
        if len(shorter) <= most:
            return shorter
    return _clip(whole, most)


def _description(t: Texts, itinerary: Itinerary) -> str:
    """What the invoice says it sells, within Telegram's 255 characters: a long route or list
    of names is shortened, never the sentence saying it is no ticket."""
    day = itinerary.flights[0].departure_local.date().isoformat()
    travellers = len(itinerary.passengers)

    def say(route_text: str, names: str) -> str:
        if travellers == 1:
            return t.gettext(
                "PDF itinerary of the flights you entered: {route}, from {date}, for "
                "{passenger}. Not a ticket or a reservation.",
                route=route_text,
                date=day,
                passenger=names,
            )
        return t.ngettext(
            "PDF itinerary of the flights you entered: {route}, from {date}, for {count} "
            "traveller: {passengers}. Not a ticket or a reservation.",
            "PDF itinerary of the flights you entered: {route}, from {date}, for {count} "
            "travellers: {passengers}. Not a ticket or a reservation.",
            travellers,
            route=route_text,
            date=day,
            count=travellers,
            passengers=names,
        )

    names = _names(itinerary.passengers)
    whole = say(route(itinerary), names)
    if len(whole) <= DESCRIPTION_MAX:
        return whole
    room = DESCRIPTION_MAX - len(say("", ""))  # for the route and the names together
    if room < 2 * MIN_PART:  # a translation too long to hold either: say what fits
        return _clip(whole, DESCRIPTION_MAX)
    # the names get what the route leaves, and at least half when both are long
    route_text = route(itinerary, max(room - len(names), room // 2))
    return say(route_text, _names(itinerary.passengers, room - len(route_text)))


def issue_invoice(
    conn: sqlite3.Connection,
    t: Texts,
    chat_id: int,
    reference: str,
    stars_each: int,
    now: datetime,
) -> Message:
    """The invoice for the chat's order `reference`, stored; or a sentence saying why there
    is none (not this chat's order, paid, cancelled).

    `stars_each` is the Stars price of one unit (`stars.price`): the invoice asks it times the
    order's quantity (its travellers when priced per traveller). The invoice row keeps that
    total, which the pre-checkout answer and the payment are checked against.
    """
    order = order_rows.get_order_by_reference(conn, reference)
    if order is None or order.chat_id != chat_id:
        return Text(order_not_found(t, reference))
    refusal = not_payable(t, order.status, reference)
    if refusal:
        return Text(refusal)
    amount = stars_each * order.quantity
    if amount > STARS_MAX:  # settings changed since the order was made (config checks the rest)
        return Text(
            t.gettext(
                "Telegram takes at most 100000 Stars for one invoice, and order {reference} "
                "would need {amount}. Please choose another way to pay.",
                reference=reference,
                amount=amount,
            )
        )
    invoice = stars.add_invoice(conn, order.id, order.reference, amount, now)
    title = t.gettext("Flight itinerary {reference}", reference=order.reference)
    label = t.gettext("Itinerary PDF")
    if order.quantity > 1:
        label = t.ngettext(
            "Itinerary PDF, {count} traveller",
            "Itinerary PDF, {count} travellers",
            order.quantity,
            count=order.quantity,
        )
    return Invoice(
        title=_clip(title, TITLE_MAX),
        description=_description(t, order.itinerary),
        payload=invoice.payload,
        label=label,
        amount=invoice.amount,
    )
