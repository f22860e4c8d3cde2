"""The pre-checkout answer: may this Stars invoice be paid now?

Telegram asks before it charges (`pre_checkout_query`) and waits 10 s for the answer. It is
only a question: nothing is recorded, and only `successful_payment` pays an order. The
check is a read (`Store.read`), so a busy writer cannot hold it up.
"""

from __future__ import annotations

import sqlite3

from itinerabot.i18n import N_, choose, texts_for
from itinerabot.models import STARS_CURRENCY
from itinerabot.payments.texts import not_payable
from itinerabot.store import languages, stars
from itinerabot.store import orders as order_rows

UNKNOWN_INVOICE = N_(
    "This invoice is not one of ours any more. Send /orders or /start for a new one."
)
WRONG_PRICE = N_("This invoice does not match the order's price. Ask for a new invoice.")
OTHER_CHAT = N_("This invoice belongs to another traveller's order.")
#: said when the order could not be checked in time: the traveller may simply try again
CANNOT_CHECK = N_("We could not check your order just now. Please try again in a moment.")


def refusal(
    conn: sqlite3.Connection,
    payload: str,
    currency: str,
    amount: int,
    payer_id: int,
    language_code: str | None = None,
) -> str | None:
    """Why the invoice `payload` may not be paid `amount` `currency` by user `payer_id`, in
    the payer's language (their pick in the bot, else what their app says now or last);
    None when the order awaits exactly this payment."""
    chosen, seen = languages.get(conn, payer_id)
    t = texts_for(choose(chosen, language_code or seen))
    invoice = stars.invoice_by_payload(conn, payload)
    order = order_rows.get_order_head(conn, invoice.order_id) if invoice is not None else None
    if invoice is None or order is None:
        return t.gettext(UNKNOWN_INVOICE)
    if order.chat_id != payer_id:
        return t.gettext(OTHER_CHAT)
    if currency != STARS_CURRENCY or amount != invoice.amount:
        return t.gettext(WRONG_PRICE)
    return not_payable(t, order.status, order.reference)
