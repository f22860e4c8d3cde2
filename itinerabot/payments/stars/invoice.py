"""A tap on "Pay with Telegram Stars": store an invoice for the order and queue it to the chat.

No provider is called (Telegram itself is the provider), so this runs inside the tap's own
transaction: the invoice row and the message commit with the update.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from itinerabot.i18n import Texts
from itinerabot.messages import Invoice, Message, Text
from itinerabot.models import Itinerary, OrderStatus
from itinerabot.payments.texts import order_already_paid, order_cancelled, order_not_found
from itinerabot.store import orders as order_rows
from itinerabot.store import stars

TITLE_MAX = 32
DESCRIPTION_MAX = 255


def route(itinerary: Itinerary) -> str:
    """`FRA → DOH → BKK`: the airports in the order flown (a return trip ends where it began)."""
    codes: list[str] = []
    for flight in itinerary.flights:
        if not codes or codes[-1] != flight.origin.iata:
            codes.append(flight.origin.iata)
        codes.append(flight.destination.iata)
    return " → ".join(codes)


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def issue_invoice(
    conn: sqlite3.Connection,
    t: Texts,
    chat_id: int,
    reference: str,
    amount: int,
    now: datetime,
) -> Message:
    """The invoice for the chat's order `reference` at `amount` Stars, stored; or a sentence
    saying why there is none (not this chat's order, paid, cancelled)."""
    order = order_rows.get_order_by_reference(conn, reference)
    if order is None or order.chat_id != chat_id:
        return Text(order_not_found(t, reference))
    if order.status.is_paid:
        return Text(order_already_paid(t, reference))
    if order.status is not OrderStatus.AWAITING_PAYMENT:
        return Text(order_cancelled(t, reference))
    invoice = stars.add_invoice(conn, order.id, order.reference, amount, now)
    first = order.itinerary.flights[0]
    title = t.gettext("Flight itinerary {reference}", reference=order.reference)
    description = t.gettext(
        "PDF itinerary of the flights you entered: {route}, from {date}, for {passenger}. "
        "Not a ticket or a reservation.",
        route=route(order.itinerary),
        date=first.departure_local.date().isoformat(),
        passenger=order.itinerary.passenger,
    )
    return Invoice(
        title=_clip(title, TITLE_MAX),
        description=_clip(description, DESCRIPTION_MAX),
        payload=invoice.payload,
        label=t.gettext("Itinerary PDF"),
        amount=invoice.amount,
    )
