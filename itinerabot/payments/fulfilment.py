"""`handle_successful_payment`: the one entry point for a confirmed payment.

Circle's webhook, the Circle poller and the deep-link return call it; Stripe's webhook uses
its two halves (`record_payment` in its own transaction, then `Fulfilment.settle`).
One conditional UPDATE moves the order to paid and, in the same transaction, queues the
"payment received" message and the PDF in the outbox; so any number of calls, concurrent or
repeated, make one transition and one document. Rendering and sending happen in the sender.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from itinerabot import messages
from itinerabot.clock import WallClock
from itinerabot.i18n import Texts
from itinerabot.messages import Document, Notify, Text
from itinerabot.models import STARS_CURRENCY, Payment, PaymentMethod
from itinerabot.store import Store, languages, money
from itinerabot.store import orders as order_rows
from itinerabot.store.money import ExtraKind
from itinerabot.store.orders import OrderHead

log = logging.getLogger(__name__)


def _amount(payment: Payment) -> str:
    """`10.00 USD`, `10.00 USDC`, or `500 ⭐` for Telegram Stars (whole Stars)."""
    if payment.currency.upper() == STARS_CURRENCY:
        return f"{payment.amount:.0f} ⭐"
    return f"{payment.amount:.2f} {payment.currency}"


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording a payment did: `fresh` if this call moved the order to paid."""

    order_id: int
    payment: Payment
    source: str
    order: OrderHead | None
    fresh: bool
    earlier_ref: str | None = None  # the provider reference of the payment already recorded
    #: set when this payment arrived for an order already paid another way: owed back
    extra_payment_id: int | None = None
    #: set when the payment does not cover the order's price: recorded as an anomaly
    refused: str | None = None


#: the currency a payment of an order priced in the key's currency may come in
_SETTLES_AS = {"USDC": "USD"}


def shortfall(order: OrderHead, payment: Payment) -> str | None:
    """Why `payment` cannot pay `order` (another currency, less than the price), or None."""
    currency = _SETTLES_AS.get(payment.currency.upper(), payment.currency.upper())
    if currency != order.currency.upper():
        return f"currency {payment.currency} is not the order's {order.currency}"
    if payment.amount < order.price:
        return f"{payment.amount} is less than the price {order.price}"
    return None


def how_to_get_it_back(t: Texts, method: PaymentMethod, support: str | None) -> str:
    """The sentence that tells a traveller how money owed back reaches them."""
    if method == PaymentMethod.CARD:
        return t.gettext("It will be refunded to your card.")
    if method == PaymentMethod.STARS:
        return t.gettext("The Stars will be refunded to your Telegram account.")
    if method == PaymentMethod.USDC and support:
        return t.gettext(
            "We will send it back in USDC: to receive it, write to {support} with your order "
            "reference and the address and network to send it to.",
            support=support,
        )
    if method == PaymentMethod.USDC:
        return t.gettext(
            "We will send it back in USDC: to receive it, reply here with /help with your order "
            "reference and the address and network to send it to."
        )
    return t.gettext("It will be refunded.")


def record_payment(
    conn: sqlite3.Connection,
    order_id: int,
    payment: Payment,
    source: str,
    now: datetime,
    *,
    support: str | None = None,
    price: Decimal | None = None,
) -> Recorded:
    """The transition itself, inside the caller's transaction: awaiting payment → paid, and
    "payment received" plus the PDF queued in the outbox. Only the first call for an order
    changes anything. A payment that does not cover the price pays nothing (an anomaly); a
    second, different payment of a paid order, and whatever was paid above the price, are
    recorded as owed back and the chat told (`support` says where to ask for it).

    `price` is the order's price in the payment's own currency when that is not the order's
    (Telegram Stars: what the invoice asked)."""
    order = order_rows.get_order_head(conn, order_id)
    if order is None:
        return Recorded(order_id, payment, source, None, fresh=False)
    if price is not None:  # the order as priced in the payment's currency
        order = replace(order, price=price, currency=payment.currency)
    refused = shortfall(order, payment)
    if refused is not None:
        return _refuse(conn, order, payment, source, now, refused)
    if not order_rows.mark_paid(conn, order_id, payment, source):
        return _already_paid(conn, order, payment, source, now, support)
    received = _received(languages.texts_of(conn, order.chat_id), order, payment)
    _tell(conn, order, received, now)
    messages.queue(conn, order.chat_id, Document(), now=now, order_id=order_id)
    extra_id = _overpaid(conn, order, payment, now, support)
    return Recorded(order_id, payment, source, order, fresh=True, extra_payment_id=extra_id)


def _refuse(
    conn: sqlite3.Connection,
    order: OrderHead,
    payment: Payment,
    source: str,
    now: datetime,
    refused: str,
) -> Recorded:
    """A payment that does not cover the price pays nothing: an anomaly for the operator."""
    money.record_anomaly(
        conn,
        source=source.split(":", 1)[0],
        provider_ref=payment.provider_ref,
        reason="amount_or_currency",
        detail={"why": refused, "amount": str(payment.amount), "currency": payment.currency},
        now=now,
        order_id=order.id,
    )
    return Recorded(order.id, payment, source, order, fresh=False, refused=refused)


def _already_paid(
    conn: sqlite3.Connection,
    order: OrderHead,
    payment: Payment,
    source: str,
    now: datetime,
    support: str | None,
) -> Recorded:
    """The order was paid before: by another payment (this one is owed back), or by this one
    seen again, maybe with more money on it (the excess is owed back)."""
    earlier = order_rows.get_payment(conn, order.id)
    ref = earlier.provider_ref if earlier is not None else None
    extra_id = None
    if ref is not None and ref != payment.provider_ref:
        extra_id = _second_payment(conn, order, payment, now, support)
    elif ref is not None:
        extra_id = _overpaid(conn, order, payment, now, support)
    return Recorded(
        order.id,
        payment,
        source,
        order,
        fresh=False,
        earlier_ref=ref,
        extra_payment_id=extra_id,
    )


def _received(t: Texts, order: OrderHead, payment: Payment) -> str:
    """The "payment received" message."""
    if payment.method == PaymentMethod.CARD:
        return t.gettext(
            "Payment received: {amount} by card for order {reference}. "
            "Your itinerary PDF is on its way.",
            amount=_amount(payment),
            reference=order.reference,
        )
    return t.gettext(  # "10.00 USDC" says how
        "Payment received: {amount} for order {reference}. Your itinerary PDF is on its way.",
        amount=_amount(payment),
        reference=order.reference,
    )


def _record_owed(
    conn: sqlite3.Connection, order: OrderHead, owed: Payment, kind: ExtraKind, now: datetime
) -> tuple[int, Decimal | None] | None:
    """Record `owed` as owed back, or raise the one recorded for the same payment when more
    arrived on it: (the extra payment's id, the amount recorded before: None if it is new);
    None if nothing changed (this very payment, recorded and told before)."""
    extra_id = money.record_extra_payment(conn, order.id, owed, kind, now)
    if extra_id is not None:
        return extra_id, None
    known = money.raise_owed(conn, owed, kind)
    return None if known is None else (known.id, known.amount)


def _overpaid(
    conn: sqlite3.Connection,
    order: OrderHead,
    payment: Payment,
    now: datetime,
    support: str | None,
) -> int | None:
    """Record what `payment` brought above the price as owed back (raised if more arrived on
    the same intent since), and tell the chat; the extra payment's id when it is new or grew."""
    excess = payment.amount - order.price
    if excess <= 0:
        return None
    above = replace(payment, amount=excess)
    owed = _record_owed(conn, order, above, ExtraKind.OVERPAID, now)
    if owed is None:
        return None
    t = languages.texts_of(conn, order.chat_id)
    text = t.gettext(
        "Order {reference}: {amount} arrived, {above} more than the price.",
        reference=order.reference,
        amount=_amount(payment),
        above=_amount(above),
    )
    _tell(conn, order, f"{text} {how_to_get_it_back(t, payment.method, support)}", now)
    return owed[0]


def _second_payment(
    conn: sqlite3.Connection,
    order: OrderHead,
    payment: Payment,
    now: datetime,
    support: str | None,
) -> int | None:
    """Record a second payment of a paid order as owed back, and tell the chat (once); when
    more arrived on the same payment since (a USDC intent paid twice), raise what is owed
    and tell the difference. The extra payment's id when it is new or grew."""
    owed = _record_owed(conn, order, payment, ExtraKind.SECOND, now)
    if owed is None:
        return None
    extra_id, before = owed
    t = languages.texts_of(conn, order.chat_id)
    if before is None:
        text = t.gettext(
            "We received a second payment of {amount} for order {reference}, which was already "
            "paid.",
            amount=_amount(payment),
            reference=order.reference,
        )
    else:
        text = t.gettext(
            "We received {more} more for order {reference}, which was already paid ({amount} "
            "in all).",
            more=_amount(replace(payment, amount=payment.amount - before)),
            reference=order.reference,
            amount=_amount(payment),
        )
    _tell(conn, order, f"{text} {how_to_get_it_back(t, payment.method, support)}", now)
    return extra_id


def _tell(conn: sqlite3.Connection, order: OrderHead, text: str, now: datetime) -> None:
    """Queue `text` to the order's chat, in the caller's transaction."""
    messages.queue(conn, order.chat_id, Text(text), now=now, order_id=order.id)


class Fulfilment:
    """Records confirmed payments and hands paid orders to the sender."""

    def __init__(
        self,
        store: Store,
        notify: Notify,
        clock: WallClock,
        *,
        support_contact: str | None = None,
    ) -> None:
        self._store = store
        self._notify = notify
        self._clock = clock
        #: where a traveller owed money back is told to write (settings.shop.support_contact)
        self.support_contact = support_contact
        #: called with the order id when an order becomes paid (e.g. to stop its poller)
        self.paid_listeners: list[Callable[[int], None]] = []
        #: called with the extra payment's id when money arrived for an order already paid
        self.extra_listeners: list[Callable[[int, PaymentMethod], None]] = []

    async def handle_successful_payment(
        self, order_id: int, payment: Payment, *, source: str
    ) -> bool:
        """Record `payment` for the order and queue its PDF, once.

        Returns True for the call that made the transition, False for every repeat (or an
        unknown order). Safe to call concurrently from any task; never blocks on Telegram.
        Raises StoreError if the store cannot be written (the caller's retry is then safe).
        """
        recorded = await self._store.run(
            record_payment,
            order_id,
            payment,
            source,
            self._clock(),
            support=self.support_contact,
        )
        return self.settle(recorded)

    def settle(self, recorded: Recorded) -> bool:
        """After `record_payment` committed: wake the sender, tell the listeners, log.

        The Stripe webhook runs `record_payment` in its own transaction (with the event id it
        stores) and then calls this; everything else goes through handle_successful_payment.
        """
        order, payment = recorded.order, recorded.payment
        if order is None:
            log.warning(
                "payment for an unknown order",
                extra={"order_id": recorded.order_id, "source": recorded.source},
            )
            return False
        if recorded.fresh:
            self._paid(order, recorded)
        elif recorded.refused is not None:
            log.warning(
                "payment refused: it does not cover the order",
                extra={
                    "order": order.reference,
                    "ref": payment.provider_ref,
                    "why": recorded.refused,
                    "source": recorded.source,
                },
            )
        if recorded.extra_payment_id is not None:
            self._owed_back(order, recorded, recorded.extra_payment_id)
        return recorded.fresh

    def _paid(self, order: OrderHead, recorded: Recorded) -> None:
        """The order was paid just now: log it, wake the sender, tell the listeners."""
        log.info(
            "payment confirmed",
            extra={
                "order": order.reference,
                "source": recorded.source,
                "method": recorded.payment.method.value,
                "amount": _amount(recorded.payment),
            },
        )
        self._notify(order.chat_id)
        for listener in self.paid_listeners:
            listener(order.id)

    def _owed_back(self, order: OrderHead, recorded: Recorded, extra_id: int) -> None:
        """Money arrived that is owed back (extra payment `extra_id`): log it, wake the
        sender for the message queued, tell the listeners."""
        payment = recorded.payment
        second = recorded.earlier_ref not in (None, payment.provider_ref)
        log.warning(
            "second payment for an order already paid: owed back"
            if second
            else "paid above the price: the difference is owed back",
            extra={
                "order": order.reference,
                "first": recorded.earlier_ref,
                "ref": payment.provider_ref,
                "amount": _amount(payment),
                "source": recorded.source,
            },
        )
        self._notify(order.chat_id)
        for extra_listener in self.extra_listeners:
            extra_listener(extra_id, payment.method)
