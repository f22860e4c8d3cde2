"""What an observed payment intent writes: one transaction each, with what the chat is told.

Plain functions for `Store.run`: record what an intent shows (its deposit address once, an
underpayment once per amount, an expiry), money that arrived but paid nothing (owed back),
the payment of a paid intent together with the intent's end, the end of the poll window,
and the end of watching. Each queues its messages in the outbox in the same transaction.
"""

from __future__ import annotations

import html
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from itinerabot import messages
from itinerabot.adapters.circle.status import Outcome, PaymentIntentView
from itinerabot.dialogue.types import InlineButton, Keyboard
from itinerabot.i18n import N_, Texts
from itinerabot.messages import PhotoQr, Text
from itinerabot.models import Order, Payment, PaymentMethod
from itinerabot.payments.fulfilment import Recorded, how_to_get_it_back, record_payment
from itinerabot.payments.usdc.lifetime import Lifetime
from itinerabot.store import circle_intents as intents
from itinerabot.store import languages, money
from itinerabot.store import orders as order_rows
from itinerabot.store.circle_intents import IntentStatus
from itinerabot.store.money import ExtraKind

CHAINS = {
    "ETH": "Ethereum",
    "SOL": "Solana",
    "POLY": "Polygon PoS",
    "BASE": "Base",
    "ARB": "Arbitrum",
    "AVAX": "Avalanche C-Chain",
    "OP": "OP Mainnet",
    "ALGO": "Algorand",
    "XLM": "Stellar",
    "HBAR": "Hedera",
    "NOBLE": "Noble",
    "SUI": "Sui",
    "BTC": "Bitcoin",
}

#: told when the 30 s poller's window ends unpaid; the late watcher keeps checking
NOT_CONFIRMED = N_(
    "We have not seen a confirmed USDC payment for order {reference} in time. If you have "
    "sent it, we keep checking until {until} UTC and your PDF arrives here as "
    "soon as it is confirmed. If you have not sent it, you can pay again:"
)
#: how an intent that paid nothing ended, as the chat is told
_ENDED = {
    Outcome.EXPIRED: N_(
        "The USDC payment for order {reference} expired before a full payment arrived. "
        "You can start a new payment:"
    ),
    Outcome.FAILED: N_(
        "The USDC payment for order {reference} failed. You can start a new payment:"
    ),
    Outcome.REFUNDED: N_(
        "The USDC payment for order {reference} was refunded. You can start a new payment:"
    ),
}


@dataclass(frozen=True, slots=True)
class Wording:
    """What the chat's messages may offer: a "Pay by card" button, the shop's support contact
    (where a traveller owed USDC gives the address and network to send it back to)."""

    card: bool
    support: str | None = None


def chain_name(chain: str) -> str:
    return f"{CHAINS.get(chain, chain)} ({chain})"


def retry_keyboard(t: Texts, reference: str, *, card: bool) -> Keyboard:
    row = [InlineButton(t.gettext("Pay with USDC again"), data=f"pay:usdc:{reference}")]
    if card:
        row.append(InlineButton(t.gettext("Pay by card"), data=f"pay:card:{reference}"))
    return (tuple(row),)


def _fmt(amount: Decimal) -> str:
    return f"{amount:.2f}"


@dataclass(frozen=True, slots=True)
class Applied:
    """What recording one observation did."""

    order: Order | None
    told: bool = False
    #: USDC that arrived on an intent that ended without paying its order: (id, amount, kind)
    owed: tuple[int, Decimal, ExtraKind] | None = None


def _address_message(
    conn: sqlite3.Connection, order: Order, view: PaymentIntentView, now: datetime
) -> bool:
    assert view.address is not None
    if not intents.set_address(conn, view.id, view.address, view.chain):
        return False
    t = languages.texts_of(conn, order.chat_id)
    ends = ""
    if view.expires_on is not None:
        ends = "\n" + t.gettext(
            "This offer ends at {until} UTC.", until=f"{view.expires_on:%Y-%m-%d %H:%M}"
        )
    text = t.gettext(
        "Order {reference}: send exactly <b>{amount} USDC</b> on <b>{chain}</b> to this "
        "address (tap to copy):\n\n<code>{address}</code>\n{ends}\n"
        "Send USDC on {network} only: other tokens or networks cannot be recovered. "
        "Your PDF arrives here as soon as the payment is confirmed.",
        reference=html.escape(order.reference),
        amount=_fmt(order.price),
        chain=html.escape(chain_name(view.chain)),
        address=html.escape(view.address),
        ends=ends,
        network=html.escape(CHAINS.get(view.chain, view.chain)),
    )
    messages.queue(conn, order.chat_id, Text(text, html=True), now=now, order_id=order.id)
    caption = t.gettext("Deposit address for {reference}", reference=order.reference)
    messages.queue(
        conn,
        order.chat_id,
        PhotoQr(view.address, caption),
        now=now,
        order_id=order.id,
    )
    return True


def _owed_back(
    conn: sqlite3.Connection,
    order: Order,
    payment: Payment,
    ended: Outcome,
    wording: Wording,
    now: datetime,
) -> Applied:
    """Record USDC that arrived on an intent that ended (`ended`: expired or failed) without paying
    the order, as owed back, and tell the chat what arrived and what happens next (once)."""
    kind = _owed_kind(order)
    extra_id = money.record_extra_payment(conn, order.id, payment, kind, now)
    t = languages.texts_of(conn, order.chat_id)
    back = how_to_get_it_back(t, PaymentMethod.USDC, wording.support)
    if extra_id is None:
        return _more_owed(conn, order, payment, kind, back, now)
    arrived = f"{_fmt(payment.amount)} USDC"
    message: Text
    if kind == ExtraKind.SECOND:
        text = t.gettext(
            "We received {arrived} for order {reference}, which was already paid.",
            arrived=arrived,
            reference=order.reference,
        )
        message = Text(f"{text} {back}")
    else:
        text = _partial_text(t, order, arrived, ended)
        again = t.gettext("You can start a new payment:")
        message = Text(
            f"{text} {back} {again}",
            retry_keyboard(t, order.reference, card=wording.card),
        )
    messages.queue(conn, order.chat_id, message, now=now, order_id=order.id)
    return Applied(order, told=True, owed=(extra_id, payment.amount, kind))


def _partial_text(t: Texts, order: Order, arrived: str, ended: Outcome) -> str:
    """What the chat hears of an intent that ended (`ended`) with too little on it."""
    values = {"reference": order.reference, "arrived": arrived, "price": _fmt(order.price)}
    if ended == Outcome.EXPIRED:
        return t.gettext(
            "The USDC payment for order {reference} expired with {arrived} of {price} "
            "received, which does not pay the order.",
            **values,
        )
    return t.gettext(
        "The USDC payment for order {reference} failed with {arrived} of {price} "
        "received, which does not pay the order.",
        **values,
    )


def _more_owed(
    conn: sqlite3.Connection,
    order: Order,
    payment: Payment,
    kind: ExtraKind,
    back: str,
    now: datetime,
) -> Applied:
    """Owed back from this intent before: raised if `payment` brings more (the chat told the
    difference), else nothing (recorded and told before)."""
    known = money.raise_owed(conn, payment, kind)
    if known is None:
        return Applied(order)
    text = languages.texts_of(conn, order.chat_id).gettext(
        "We received {more} USDC more for order {reference} ({amount} USDC in all), which "
        "does not pay it.",
        more=_fmt(payment.amount - known.amount),
        reference=order.reference,
        amount=_fmt(payment.amount),
    )
    messages.queue(conn, order.chat_id, Text(f"{text} {back}"), now=now, order_id=order.id)
    return Applied(order, told=True, owed=(known.id, payment.amount, kind))


def _ended_as(conn: sqlite3.Connection, intent_id: str, status: IntentStatus) -> bool:
    row = intents.by_intent_id(conn, intent_id)
    return row is not None and row.status == status


def _owed_kind(order: Order) -> ExtraKind:
    """What USDC that did not pay `order` is: a second payment of a paid order, else partial."""
    return ExtraKind.SECOND if order.status.is_paid else ExtraKind.PARTIAL


def _arrived(view: PaymentIntentView, now: datetime) -> Payment:
    """The USDC that arrived on `view`, as a payment record."""
    return Payment(
        method=PaymentMethod.USDC,
        amount=view.amount_paid if view.amount_paid is not None else Decimal(0),
        currency="USDC",
        provider_ref=view.id,
        provider_payment_id=view.payment_ids[0] if view.payment_ids else None,
        paid_at=view.latest.time if view.latest is not None else now,
    )


def apply(
    conn: sqlite3.Connection,
    order_id: int,
    view: PaymentIntentView,
    wording: Wording,
    now: datetime,
) -> Applied:
    """Record what a view that does not pay shows, and queue what the chat is told."""
    order = order_rows.get_order(conn, order_id)
    if order is None:
        return Applied(None)
    if view.expires_on is not None:
        intents.set_expires_on(conn, view.id, view.expires_on)
    told = False
    if view.address and not order.status.is_paid:
        told = _address_message(conn, order, view, now)
    outcome = view.outcome
    if outcome == Outcome.UNDERPAID:
        told = _underpaid(conn, order, view, now) or told
    elif outcome in (Outcome.EXPIRED, Outcome.FAILED, Outcome.REFUNDED):
        ended = _ended(conn, order, view, outcome, wording, now)
        return Applied(order, told=told or ended.told, owed=ended.owed)
    return Applied(order, told=told)


def _underpaid(
    conn: sqlite3.Connection, order: Order, view: PaymentIntentView, now: datetime
) -> bool:
    """Remember the amount seen on an underpaid intent, and tell an unpaid order's chat
    what is missing (once per amount); whether the chat was told."""
    paid = view.amount_paid or Decimal(0)
    # remembered even for a paid order: it is what a lapsed intent owes back
    if not intents.set_notified_paid(conn, view.id, _fmt(paid)) or order.status.is_paid:
        return False
    text = languages.texts_of(conn, order.chat_id).gettext(
        "Order {reference}: {paid} USDC of {amount} arrived. {missing} USDC is still "
        "missing: send it to the same address to complete the payment.",
        reference=order.reference,
        paid=_fmt(paid),
        amount=_fmt(view.amount),
        missing=_fmt(view.missing_amount),
    )
    messages.queue(conn, order.chat_id, Text(text), now=now, order_id=order.id)
    return True


def _ended(
    conn: sqlite3.Connection,
    order: Order,
    view: PaymentIntentView,
    outcome: Outcome,
    wording: Wording,
    now: datetime,
) -> Applied:
    """An intent Circle shows as expired, failed or refunded: record its end (once), what
    arrived on it as owed back, and tell the chat."""
    status = IntentStatus(outcome.value)
    paid = view.amount_paid or Decimal(0)
    if outcome == Outcome.EXPIRED and paid > 0 and _ended_as(conn, view.id, status):
        # seen expired before (a webhook now): more may have arrived on it since
        t = languages.texts_of(conn, order.chat_id)
        back = how_to_get_it_back(t, PaymentMethod.USDC, wording.support)
        return _more_owed(conn, order, _arrived(view, now), _owed_kind(order), back, now)
    if not intents.set_status(conn, view.id, status):
        return Applied(order)
    if outcome != Outcome.REFUNDED and paid > 0:
        return _owed_back(conn, order, _arrived(view, now), outcome, wording, now)
    if order.status.is_paid:  # nothing arrived on an intent a paid order no longer needs
        return Applied(order)
    _tell_ended(conn, order, outcome, wording, now)
    return Applied(order, told=True)


def _tell_ended(
    conn: sqlite3.Connection, order: Order, outcome: Outcome, wording: Wording, now: datetime
) -> None:
    """Tell the chat that its intent ended (`outcome`) with nothing paid, and offer to pay again."""
    t = languages.texts_of(conn, order.chat_id)
    message = Text(
        t.gettext(_ENDED[outcome], reference=order.reference),
        retry_keyboard(t, order.reference, card=wording.card),
    )
    messages.queue(conn, order.chat_id, message, now=now, order_id=order.id)


def record_paid(
    conn: sqlite3.Connection,
    order_id: int,
    intent_id: str,
    payment: Payment,
    source: str,
    now: datetime,
    support: str | None,
) -> Recorded:
    """The order's payment and the intent's end, in one transaction: until it commits the
    intent stays open in the store, so whoever retries (or a restart) finds it again.

    A payment the order refuses (less than its price, another currency: Circle's record of
    the intent is not what was asked) does not end the intent: it stays open and watched,
    and what arrived is recorded as owed back and the chat told (once)."""
    recorded = record_payment(conn, order_id, payment, source, now, support=support)
    if recorded.refused is None:
        intents.set_status(conn, intent_id, IntentStatus.PAID)
        intents.drop_partial_owed(conn, order_id, intent_id)
        return recorded
    order = order_rows.get_order(conn, order_id)
    if order is None or payment.amount <= 0:
        return recorded
    if money.record_extra_payment(conn, order_id, payment, _owed_kind(order), now) is not None:
        t = languages.texts_of(conn, order.chat_id)
        text = t.gettext(
            "Circle confirmed {amount} USDC for order {reference}, which does not pay its price "
            "of {price} USDC.",
            amount=_fmt(payment.amount),
            reference=order.reference,
            price=_fmt(order.price),
        )
        text += " " + how_to_get_it_back(t, PaymentMethod.USDC, support)
        messages.queue(conn, order.chat_id, Text(text), now=now, order_id=order_id)
    return recorded


def window_over(
    conn: sqlite3.Connection,
    order_id: int,
    intent_id: str,
    lifetime: Lifetime,
    wording: Wording,
    now: datetime,
) -> Order | None:
    """polling → timed_out, and the chat told until when the intent is still checked, with
    a way to pay again; the order if this call did it (once), else None."""
    row = intents.by_intent_id(conn, intent_id)
    if row is None or not intents.end_window(conn, intent_id):
        return None
    order = order_rows.get_order(conn, order_id)
    if order is None or order.status.is_paid:
        return None
    until = lifetime.watch_until(row.expires_on, row.created_at)
    t = languages.texts_of(conn, order.chat_id)
    message = Text(
        t.gettext(NOT_CONFIRMED, reference=order.reference, until=f"{until:%Y-%m-%d %H:%M}"),
        retry_keyboard(t, order.reference, card=wording.card),
    )
    messages.queue(conn, order.chat_id, message, now=now, order_id=order_id)
    return order


def lapse(
    conn: sqlite3.Connection, order_id: int, intent_id: str, wording: Wording, now: datetime
) -> Applied:
    """An intent watched past its expiry that Circle never showed as ended: stop watching.
    A partial amount last seen on it is owed back; a traveller never told that the window
    ended (the bot was down) hears that the payment expired."""
    order = order_rows.get_order(conn, order_id)
    row = intents.by_intent_id(conn, intent_id)
    if order is None or row is None or not intents.set_status(conn, intent_id, IntentStatus.LAPSED):
        return Applied(order)
    paid = Decimal(row.notified_paid) if row.notified_paid else Decimal(0)
    if paid > 0:
        payment = Payment(
            method=PaymentMethod.USDC,
            amount=paid,
            currency="USDC",
            provider_ref=intent_id,
            paid_at=now,
        )
        return _owed_back(conn, order, payment, Outcome.EXPIRED, wording, now)
    if row.status != IntentStatus.POLLING or order.status.is_paid:
        return Applied(order)
    _tell_ended(conn, order, Outcome.EXPIRED, wording, now)
    return Applied(order, told=True)
