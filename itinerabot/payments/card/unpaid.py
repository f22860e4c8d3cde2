"""A Checkout Session that ended unpaid (expired, or its delayed payment failed): recorded, and
the traveller offered a new payment once, however the bot learnt of it (an event, the
reconciler, the deep-link return).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from itinerabot import messages
from itinerabot.dialogue.types import InlineButton
from itinerabot.i18n import Texts
from itinerabot.messages import Text
from itinerabot.models import Order
from itinerabot.payments.texts import pay_by_card_label
from itinerabot.store import card_sessions as sessions
from itinerabot.store import languages
from itinerabot.store import orders as order_rows
from itinerabot.store.card_sessions import SessionStatus

#: stored statuses of a session still to end: the traveller has not been told of its end
_UNFINISHED = (SessionStatus.CREATING, SessionStatus.OPEN)


def new_payment_offer(t: Texts, order: Order, text: str) -> Text:
    """`text`, with a button that starts a new card payment of `order` (a new session)."""
    label = pay_by_card_label(t, order.price, order.currency)
    return Text(text, ((InlineButton(label, data=f"pay:card:{order.reference}"),),))


def ended_text(t: Texts, order: Order, status: SessionStatus) -> str:
    if status == SessionStatus.EXPIRED:
        return t.gettext(
            "The card payment for order {reference} expired. "
            "Nothing was charged. You can start a new payment:",
            reference=order.reference,
        )
    return t.gettext(
        "The card payment for order {reference} did not go through. "
        "Nothing was charged. You can start a new payment:",
        reference=order.reference,
    )


def take_unpaid_end(
    conn: sqlite3.Connection,
    session_id: str,
    status: SessionStatus,
    now: datetime,
    *,
    tell: bool = True,
) -> Order | None:
    """Inside the caller's transaction: mark the session `status` (failed/expired); the
    order to tell about it (a new-payment offer queued if `tell`), or None.

    Only the order the bot stored the session for is told, only if it is still unpaid, the
    session is its latest attempt, and the session had not ended before: a session it never
    created (a Payment Link, say) tells nobody, whatever its metadata says.
    """
    stored = sessions.by_session_id(conn, session_id)
    if stored is None:
        return None
    sessions.set_status(conn, session_id, status)
    order = order_rows.get_order(conn, stored.order_id)
    if order is None or order.status.is_paid or stored.status not in _UNFINISHED:
        return None
    latest = sessions.latest(conn, order.id)
    if latest is not None and latest.session_id != session_id:
        return None  # a newer attempt is under way; this old page does not matter
    if tell:
        t = languages.texts_of(conn, order.chat_id)
        offer = new_payment_offer(t, order, ended_text(t, order, status))
        messages.queue(conn, order.chat_id, offer, now=now, order_id=order.id)
    return order
