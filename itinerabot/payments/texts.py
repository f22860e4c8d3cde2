"""The sentences both payment methods say to a traveller, in the chat's language `t`.

Each method's own sentences live beside its code; these are the ones they share.
"""

from __future__ import annotations

from decimal import Decimal

from itinerabot.i18n import Texts
from itinerabot.models import OrderStatus


def pay_by_card_label(t: Texts, price: Decimal, currency: str) -> str:
    """The label of a button that pays by card: `Pay 10.00 USD by card`."""
    return t.gettext("Pay {price} {currency} by card", price=f"{price:.2f}", currency=currency)


def order_not_found(t: Texts, reference: str) -> str:
    return t.gettext("I cannot find order {reference}. Send /start.", reference=reference)


def order_already_paid(t: Texts, reference: str) -> str:
    return t.gettext("Order {reference} is already paid.", reference=reference)


def order_cancelled(t: Texts, reference: str) -> str:
    return t.gettext(
        "Order {reference} was cancelled. Send /start for a new one.", reference=reference
    )


def not_payable(t: Texts, status: OrderStatus, reference: str) -> str | None:
    """Why an order in `status` takes no payment now (already paid, or cancelled), or None
    while it awaits payment."""
    if status.is_paid:
        return order_already_paid(t, reference)
    if status is not OrderStatus.AWAITING_PAYMENT:
        return order_cancelled(t, reference)
    return None


def card_unavailable(t: Texts) -> str:
    return t.gettext("Card payment is not available right now. Please try again in a minute.")


def usdc_unavailable(t: Texts) -> str:
    return t.gettext("USDC payment is not available right now. Please try again in a minute.")
