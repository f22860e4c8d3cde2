"""What is left to refund of each payment of an order. Pure: records in, amounts out.

A refund names a provider reference (a card payment's Stripe PaymentIntent, a Circle payment
intent), not a row of ours, so money is counted per reference: everything received on one
reference is one *pot*, and every refund on that reference (requested, pending or succeeded,
whichever payment it was asked for) takes from it. A USDC payment of 15.00 for a 10.00 order is
one pot of 15.00, recorded twice: the order's payment (15.00) and its overpaid extra (5.00).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from itinerabot.models import Payment, PaymentMethod
from itinerabot.store.money import ExtraKind, ExtraPayment, Refund, RefundStatus

#: refund statuses whose money is gone or on its way (or may be: a requested refund may have
#: reached the provider): what is left excludes them
TAKEN = (RefundStatus.REQUESTED, RefundStatus.PENDING, RefundStatus.SUCCEEDED)
#: of which not yet done
UNDER_WAY = (RefundStatus.REQUESTED, RefundStatus.PENDING)

_ZERO = Decimal(0)


def refund_key(
    method: PaymentMethod, provider_ref: str, provider_payment_id: str | None
) -> str | None:
    """The reference a refund of this money names: the Stripe PaymentIntent of a card
    payment (None until Stripe told it), the Circle payment intent of a USDC one."""
    if method == PaymentMethod.CARD:
        return provider_payment_id or None
    return provider_ref


@dataclass(frozen=True, slots=True)
class Pot:
    """Everything received on one provider reference, and what refunds took from it."""

    method: PaymentMethod
    key: str
    received: Decimal
    refunded: Decimal  # by refunds requested, pending or succeeded
    under_way: Decimal  # of which requested or pending

    @property
    def left(self) -> Decimal:
        return max(self.received - self.refunded, _ZERO)


@dataclass(frozen=True, slots=True)
class OrderMoney:
    """An order's money as stored: its price, its payment, extra payments and refunds."""

    price: Decimal
    payment: Payment | None
    extras: list[ExtraPayment]
    refunds: list[Refund]

    def pot(self, method: PaymentMethod, key: str) -> Pot:
        """The pot of reference `key`: received counts the payment row once, with an
        overpaid extra on the same reference only for what it adds beyond it (the row keeps
        the first total seen; the extra grows if more arrives later)."""

        def on_key(m: PaymentMethod, provider_ref: str, provider_payment_id: str | None) -> bool:
            return m == method and refund_key(m, provider_ref, provider_payment_id) == key

        p = self.payment
        payment_part = None
        if p is not None and on_key(p.method, p.provider_ref, p.provider_payment_id):
            payment_part = p.amount
        others = _ZERO
        for e in self.extras:
            if not on_key(e.method, e.provider_ref, e.provider_payment_id):
                continue
            if e.kind == ExtraKind.OVERPAID and payment_part is not None:
                payment_part = max(payment_part, self.price + e.amount)
            else:
                others += e.amount
        taking = [r for r in self.refunds if r.method == method and r.provider_ref == key]
        return Pot(
            method=method,
            key=key,
            received=(payment_part or _ZERO) + others,
            refunded=_sum(r for r in taking if r.status in TAKEN),
            under_way=_sum(r for r in taking if r.status in UNDER_WAY),
        )

    def refunded_of(
        self, extra_payment_id: int | None, statuses: tuple[RefundStatus, ...] = TAKEN
    ) -> Decimal:
        """What refunds in `statuses` asked for this payment (None: the order's own) take."""
        return _sum(
            r
            for r in self.refunds
            if r.extra_payment_id == extra_payment_id and r.status in statuses
        )

    def left_of_extra(self, extra: ExtraPayment) -> Decimal:
        """What may still be refunded of `extra`: its own amount less its refunds, and no
        more than its pot has left."""
        own = max(extra.amount - self.refunded_of(extra.id), _ZERO)
        key = refund_key(extra.method, extra.provider_ref, extra.provider_payment_id)
        if key is None:  # a card payment Stripe has not named: no refund can take from it
            return own
        return min(own, self.pot(extra.method, key).left)

    def left_of_payment(self) -> Decimal:
        """What may still be refunded of the order's own payment (none if it is unpaid):
        likewise its amount less its refunds, and no more than its pot has left."""
        p = self.payment
        if p is None:
            return _ZERO
        own = max(p.amount - self.refunded_of(None), _ZERO)
        key = refund_key(p.method, p.provider_ref, p.provider_payment_id)
        if key is None:
            return own
        return min(own, self.pot(p.method, key).left)

    def stuck(self, extra_payment_id: int | None) -> Refund | None:
        """The refund of this payment still `requested` (asked, no answer recorded), if any."""
        for r in self.refunds:
            if r.extra_payment_id == extra_payment_id and r.status == RefundStatus.REQUESTED:
                return r
        return None


def _sum(refunds: Iterable[Refund]) -> Decimal:
    return sum((r.amount for r in refunds), _ZERO)
