"""Refund one payment of an order: choose it, check the amount, store the refund with its
idempotency key, then ask Stripe, Circle or Telegram.

A payment is the order's own (`--payment`) or one of its extra payments (`--extra N`); by
default the one extra payment still owed back. What is left to refund of it is counted on its
provider reference (`refundable`): a payment and its overpaid extra share one pot. A refund left
`requested` (the command or the bot stopped mid-call) is asked again with its stored key, so the
provider refunds once. The refund stored is the one the operator confirmed, or none. A
Stars payment is refunded whole (`refundStarPayment` takes no amount).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation

from itinerabot.models import PaymentMethod
from itinerabot.operator.errors import Refused, UnknownOrder
from itinerabot.operator.refundable import UNDER_WAY, OrderMoney, Pot, refund_key
from itinerabot.operator.words import money_text, provider_name
from itinerabot.store import history, money
from itinerabot.store import orders as order_rows
from itinerabot.store.money import ExtraPayment, Refund

#: decimal places a refund may always have: cents (every price is in USD)
CENT_PLACES = 2


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """What the operator asked for, and what the config allows."""

    reference: str
    extra_payment_id: int | None = None
    whole_payment: bool = False  # --payment: the order's own payment
    amount: Decimal | None = None  # None: all that is left
    address: str | None = None
    chain: str | None = None
    enabled: frozenset[PaymentMethod] = frozenset(PaymentMethod)


@dataclass(frozen=True, slots=True)
class RefundTarget:
    """One payment to refund and how much of it is left, or a refund of it to retry."""

    order_id: int
    reference: str
    extra_payment_id: int | None
    label: str  # "payment" or "second payment #3", for the operator
    method: PaymentMethod
    provider_ref: str  # what the refund names: Stripe PaymentIntent, Circle intent, Stars charge
    paid: Decimal  # this payment's own amount
    currency: str
    refunded: Decimal  # what refunds of this payment took (requested, pending, succeeded)
    under_way: Decimal  # of which requested or pending
    pot: Pot  # all the money received on provider_ref, and what refunds took from it
    left: Decimal  # what may still be refunded of this payment
    amount: Decimal  # what this refund is for
    retry: Refund | None  # a refund of this payment stuck in `requested`

    def decision(self) -> tuple[object, ...]:
        """What the operator confirms: the payment, the amount and the refund to retry."""
        retry = self.retry.id if self.retry is not None else None
        return (self.extra_payment_id, self.method, self.provider_ref, self.amount, retry)


def parse_amount(text: str) -> Decimal:
    """A finite amount above zero as typed; raises Refused for anything else. Whether it
    fits the payment is `plan_refund`'s to check."""
    try:
        amount = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        raise Refused(f"--amount {text!r} is not a number") from None
    if not amount.is_finite() or amount <= 0:
        raise Refused(f"--amount {text.strip()} must be a number more than zero")
    return amount


def plan_refund(conn: sqlite3.Connection, request: RefundRequest) -> RefundTarget:
    """The payment `request` names and how much to refund (read only).

    Raises UnknownOrder, or Refused: the order is not paid, nothing or more than one payment
    is owed back and none was chosen, nothing is left to refund of the payment, the amount
    is above what is left or finer than cents, or is a part of a Stars payment, the method
    is disabled in the config, a USDC refund lacks its address.
    """
    order = history.order_by_reference(conn, request.reference)
    if order is None:
        raise UnknownOrder(request.reference)
    ref = order.reference
    held = order_money(conn, order.id, order.price)
    extra = _chosen_extra(held, ref, request)
    if extra is not None:
        target = _extra_target(held, ref, extra)
    else:
        target = _payment_target(held, order.id, ref)
    _check_method(target, request)
    if target.method == PaymentMethod.STARS:
        return _whole_stars(target, request.amount)
    return with_amount(target, request.amount)


def order_money(conn: sqlite3.Connection, order_id: int, price: Decimal) -> OrderMoney:
    """The order's payment, extra payments and refunds, read inside the caller's transaction."""
    return OrderMoney(
        price=price,
        payment=order_rows.get_payment(conn, order_id),
        extras=money.extra_payments(conn, order_id),
        refunds=money.refunds(conn, order_id),
    )


def owed_back(held: OrderMoney) -> list[ExtraPayment]:
    """Extra payments with money left to refund (their pot not emptied by other refunds), or
    with a refund to ask again."""
    return [e for e in held.extras if held.left_of_extra(e) > 0 or held.stuck(e.id) is not None]


def _chosen_extra(held: OrderMoney, reference: str, request: RefundRequest) -> ExtraPayment | None:
    """The extra payment to refund; None for the order's own payment."""
    if request.whole_payment:
        return None
    if request.extra_payment_id is not None:
        for e in held.extras:
            if e.id == request.extra_payment_id:
                return e
        raise Refused(f"order {reference} has no extra payment #{request.extra_payment_id}")
    owed = owed_back(held)
    if len(owed) == 1:
        return owed[0]
    if owed:
        choices = ", ".join(f"--extra {e.id} ({e.amount} {e.currency} by {e.method})" for e in owed)
        raise Refused(
            f"order {reference} has {len(owed)} extra payments owed back: choose {choices}"
        )
    if held.payment is None:
        raise Refused(f"order {reference} is not paid and nothing is owed back: nothing to refund")
    if held.extras:
        raise Refused(
            f"order {reference} owes nothing back: its extra payments are refunded or being"
            f" refunded (itinerabot orders show {reference}); to refund the payment of the"
            " order itself, add --payment"
        )
    raise Refused(
        f"order {reference} has no extra payment owed back; to refund the payment of the order"
        " itself, add --payment"
    )


def _extra_target(held: OrderMoney, reference: str, extra: ExtraPayment) -> RefundTarget:
    key = _key(extra.method, extra.provider_ref, extra.provider_payment_id, reference)
    return RefundTarget(
        order_id=extra.order_id,
        reference=reference,
        extra_payment_id=extra.id,
        label=f"{extra.kind} payment #{extra.id}",
        method=extra.method,
        provider_ref=key,
        paid=extra.amount,
        currency=extra.currency,
        refunded=held.refunded_of(extra.id),
        under_way=held.refunded_of(extra.id, UNDER_WAY),
        pot=held.pot(extra.method, key),
        left=held.left_of_extra(extra),
        amount=Decimal(0),
        retry=held.stuck(extra.id),
    )


def _payment_target(held: OrderMoney, order_id: int, reference: str) -> RefundTarget:
    payment = held.payment
    if payment is None:
        raise Refused(f"order {reference} is not paid: there is no payment to refund")
    key = _key(payment.method, payment.provider_ref, payment.provider_payment_id, reference)
    return RefundTarget(
        order_id=order_id,
        reference=reference,
        extra_payment_id=None,
        label="payment",
        method=payment.method,
        provider_ref=key,
        paid=payment.amount,
        currency=payment.currency,
        refunded=held.refunded_of(None),
        under_way=held.refunded_of(None, UNDER_WAY),
        pot=held.pot(payment.method, key),
        left=held.left_of_payment(),
        amount=Decimal(0),
        retry=held.stuck(None),
    )


def _key(
    method: PaymentMethod, provider_ref: str, payment_intent: str | None, reference: str
) -> str:
    """What a refund of this money names; Stripe refunds a PaymentIntent, which a card
    payment records once Stripe told it."""
    key = refund_key(method, provider_ref, payment_intent)
    if key is None:
        raise Refused(
            f"the card payment of {reference} has no Stripe PaymentIntent recorded; refund"
            f" Checkout Session {provider_ref} in the Stripe dashboard"
        )
    return key


#: the config section that turns each method on
_SETTING = {
    PaymentMethod.CARD: "stripe.enabled",
    PaymentMethod.USDC: "circle.enabled",
    PaymentMethod.STARS: "stars.enabled",
}


def _check_method(target: RefundTarget, request: RefundRequest) -> None:
    if target.method not in request.enabled:
        setting = _SETTING[target.method]
        raise Refused(
            f"{target.method} payments are disabled in the config ({setting}), so the bot"
            " cannot refund this one: refund it in the provider's dashboard"
        )
    if target.method == PaymentMethod.USDC and not (request.address and request.chain):
        raise Refused(
            "a USDC refund goes to the traveller's own address: add --address ADDRESS and"
            " --chain CHAIN (ask the traveller for both)"
        )
    if target.method == PaymentMethod.CARD and (request.address or request.chain):
        raise Refused("--address and --chain are for USDC refunds; a card refund goes to the card")
    if target.method == PaymentMethod.STARS and (request.address or request.chain):
        raise Refused(
            "--address and --chain are for USDC refunds; Stars go back to the Telegram account"
            " that paid them"
        )


def _whole_stars(target: RefundTarget, amount: Decimal | None) -> RefundTarget:
    """A Stars target with all of it to refund: Telegram refunds a charge whole or not at
    all. Raises Refused for an amount that is not the whole payment, or if it is refunded
    (or being refunded) already."""
    whole = with_amount(target, None)
    if amount is not None and amount != whole.amount:
        raise Refused(
            f"Telegram refunds a Stars payment whole: the {target.label} of {target.reference}"
            f" is {money_text(whole.amount, target.currency)}; leave out --amount to refund"
            " all of it"
        )
    return whole


def with_amount(target: RefundTarget, amount: Decimal | None) -> RefundTarget:
    """The target with the amount to refund: the stuck refund's, all that is left, or
    `amount` once it is checked: finite and above zero (`parse_amount`), at most what is
    left, and no finer than the payment's decimals or cents. Nothing is quantized before
    that, so no amount as typed can raise anything but Refused.

    Raises Refused: nothing is left, the amount is above it or too fine, or differs from a
    stuck refund's (which is asked again as it is).
    """
    if target.retry is not None:
        stuck = target.retry
        if amount is not None and amount != stuck.amount:
            raise Refused(
                f"refund #{stuck.id} of {stuck.amount} {stuck.currency} for this payment got no"
                " answer yet; run the command without --amount to ask again with its key"
            )
        return replace(target, amount=stuck.amount)
    if target.left <= 0:
        raise Refused(_nothing_left(target))
    if amount is None:
        return replace(target, amount=target.left)
    if amount > target.left:
        raise Refused(
            f"{amount} {target.currency} is more than is left to refund of the {target.label}"
            f" of {target.reference}: {target.left} ({_paid_and_refunded(target)})"
        )
    places = max(CENT_PLACES, decimal_places(target.paid))
    if decimal_places(amount) > places:
        raise Refused(
            f"--amount {amount} has more decimal places than the {target.label}"
            f" ({target.paid} {target.currency}) can be refunded in ({places})"
        )
    # exact: `amount` is at most `left` and has no digit beyond `places`
    return replace(target, amount=amount.quantize(Decimal(1).scaleb(-places)))


def decimal_places(amount: Decimal) -> int:
    """Decimal places of `amount` once trailing zeros are dropped (4.500 → 1), counted on its
    digits: no arithmetic, so no rounding whatever its size. Raises ValueError if not finite."""
    _, digits, exponent = amount.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"{amount} is not a finite amount")
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + zeros))


def _paid_and_refunded(t: RefundTarget) -> str:
    if t.pot.received == t.paid:
        return f"paid {t.paid}, refunded {t.pot.refunded}"
    return (
        f"paid {t.paid} of the {t.pot.received} received on {t.provider_ref},"
        f" refunded {t.pot.refunded}"
    )


def _nothing_left(t: RefundTarget) -> str:
    what = f"the {t.label} of {t.reference} ({t.paid} {t.currency})"
    provider = provider_name(t.method)
    if t.refunded >= t.paid:  # its own refunds took it
        if t.under_way > 0:
            return f"{what} is being refunded already: {t.under_way} is pending at {provider}"
        return f"{what} is refunded already"
    still = f", {t.pot.under_way} of it still pending at {provider}" if t.pot.under_way else ""
    return (
        f"nothing is left to refund of {what}: refunds on {t.provider_ref} take all"
        f" {t.pot.received} {t.currency} received on it{still}"
        f" (itinerabot orders show {t.reference})"
    )


def prepare_refund(
    conn: sqlite3.Connection, request: RefundRequest, confirmed: RefundTarget, now: datetime
) -> Refund:
    """Inside the caller's transaction: plan again and, if the plan is still the `confirmed`
    one, store the refund (status requested, its idempotency key fresh) before any call, or
    return the stuck one to retry.

    Raises what `plan_refund` raises, and Refused if the plan changed since it was shown
    (money landed or a refund moved meanwhile): nothing is stored then.
    """
    target = plan_refund(conn, request)
    if target.decision() != confirmed.decision():
        raise Refused(
            f"nothing refunded: the refund of {target.reference} changed since you confirmed"
            " it; run the command again"
        )
    if target.retry is not None:
        return target.retry
    return money.begin_refund(
        conn,
        order_id=target.order_id,
        method=target.method,
        provider_ref=target.provider_ref,
        amount=target.amount,
        currency=target.currency,
        now=now,
        extra_payment_id=target.extra_payment_id,
    )
