"""What is left to refund, counted per provider reference, and the amount an operator types:
pure functions, tested without a store or a network.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itinerabot.models import Payment, PaymentMethod
from itinerabot.operator.errors import Refused
from itinerabot.operator.refund import RefundTarget, decimal_places, parse_amount, with_amount
from itinerabot.operator.refundable import OrderMoney, refund_key
from itinerabot.store.money import ExtraKind, ExtraPayment, Refund, RefundStatus
from tests.harness import amount_text

AT = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
INTENT = "6e4f8f1a-5c39-4d5a-9d8e-2b7b4c1d0a11"
USDC, CARD = PaymentMethod.USDC, PaymentMethod.CARD


def payment(amount: str, *, method: PaymentMethod = USDC, intent: str | None = None) -> Payment:
    if method == CARD:
        return Payment(CARD, Decimal(amount), "USD", "cs_test_1", AT, provider_payment_id=intent)
    return Payment(USDC, Decimal(amount), "USDC", INTENT, AT, provider_payment_id="pay_1")


def extra(extra_id: int, kind: ExtraKind, amount: str, *, ref: str = INTENT) -> ExtraPayment:
    return ExtraPayment(extra_id, 1, USDC, kind, Decimal(amount), "USDC", ref, "pay_1", AT)


def refund(
    refund_id: int,
    amount: str,
    *,
    extra_id: int | None = None,
    status: RefundStatus = RefundStatus.PENDING,
    method: PaymentMethod = USDC,
    ref: str = INTENT,
) -> Refund:
    currency = "USD" if method == CARD else "USDC"
    return Refund(
        refund_id, 1, extra_id, method, ref, Decimal(amount), currency, f"k{refund_id}", status,
        None, None, AT, AT,
    )  # fmt: skip


def test_a_payment_and_its_overpaid_part_are_one_pot() -> None:
    """Finding 1: 15.00 USDC on a 10.00 order is 15.00 to refund in all, not 15.00 + 5.00."""
    overpaid = extra(1, ExtraKind.OVERPAID, "5.00")
    held = OrderMoney(Decimal("10.00"), payment("15.00"), [overpaid], [])
    assert held.pot(USDC, INTENT).received == Decimal("15.00")
    assert held.left_of_extra(overpaid) == Decimal("5.00")

    whole = OrderMoney(held.price, held.payment, held.extras, [refund(1, "15.00")])
    assert whole.pot(USDC, INTENT).left == 0
    assert whole.left_of_extra(overpaid) == 0  # the payment's refund returned it

    part = OrderMoney(held.price, held.payment, held.extras, [refund(1, "5.00", extra_id=1)])
    assert part.pot(USDC, INTENT).left == Decimal("10.00")


def test_every_refund_on_the_reference_counts_until_it_fails() -> None:
    """Finding 1: requested and succeeded refunds take from the pot too; failed ones do not."""
    overpaid = extra(1, ExtraKind.OVERPAID, "5.00")
    refunds = [
        refund(1, "4.00", status=RefundStatus.FAILED),
        refund(2, "6.00", status=RefundStatus.REQUESTED),
        refund(3, "3.00", extra_id=1, status=RefundStatus.SUCCEEDED),
        refund(4, "9.00", ref="another-intent"),
    ]
    pot = OrderMoney(Decimal("10.00"), payment("15.00"), [overpaid], refunds).pot(USDC, INTENT)
    assert (pot.received, pot.refunded, pot.under_way, pot.left) == (
        Decimal("15.00"),
        Decimal("9.00"),
        Decimal("6.00"),
        Decimal("6.00"),
    )


def test_more_arriving_later_grows_the_pot_beyond_the_payment_row() -> None:
    """The payment row keeps the first total seen (15.00); 2.00 more raised the extra to 7.00."""
    held = OrderMoney(
        Decimal("10.00"), payment("15.00"), [extra(1, ExtraKind.OVERPAID, "7.00")], []
    )
    assert held.pot(USDC, INTENT).received == Decimal("17.00")


def test_money_on_other_references_is_a_pot_of_its_own() -> None:
    second = extra(1, ExtraKind.SECOND, "10.00", ref="second-intent")
    held = OrderMoney(Decimal("10.00"), payment("10.00"), [second], [refund(1, "10.00")])
    assert held.pot(USDC, INTENT).left == 0
    assert held.left_of_extra(second) == Decimal("10.00")


def test_a_card_pot_is_its_payment_intent_not_its_session() -> None:
    """Finding 1, card: refunds name the PaymentIntent, the payment row the Checkout Session."""
    paid = payment("10.00", method=CARD, intent="pi_1")
    assert refund_key(CARD, "cs_test_1", "pi_1") == "pi_1"
    assert refund_key(CARD, "cs_test_1", None) is None  # Stripe has not named it yet
    refunds = [
        refund(1, "4.00", method=CARD, ref="pi_1", status=RefundStatus.SUCCEEDED),
        refund(2, "1.00", method=CARD, ref="cs_test_1"),  # names no PaymentIntent: not here
    ]
    pot = OrderMoney(Decimal("10.00"), paid, [], refunds).pot(CARD, "pi_1")
    assert (pot.received, pot.refunded, pot.left) == (
        Decimal("10.00"),
        Decimal("4.00"),
        Decimal("6.00"),
    )


# ------------------------------------------------------------------ the amount typed


def target(paid: str = "15.00", left: str = "10.00") -> RefundTarget:
    held = OrderMoney(Decimal("10.00"), payment(paid), [], [])
    return RefundTarget(
        order_id=1,
        reference="IB-7K3Q9P",
        extra_payment_id=None,
        label="payment",
        method=USDC,
        provider_ref=INTENT,
        paid=Decimal(paid),
        currency="USDC",
        refunded=Decimal(0),
        under_way=Decimal(0),
        pot=held.pot(USDC, INTENT),
        left=Decimal(left),
        amount=Decimal(0),
        retry=None,
    )


@pytest.mark.parametrize(
    ("typed", "refused"),
    [
        ("1e30", "1E+30 USDC is more than is left to refund of the payment of IB-7K3Q9P: 10.00"),
        ("9" * 29, f"{'9' * 29} USDC is more than is left to refund of the payment"),
        ("0.001", "--amount 0.001 has more decimal places than the payment"),
        ("0.1000000000000000000000000000000001", "--amount 0.1000000000000000000000000000000001"),
        ("nan", "--amount nan must be a number more than zero"),
        ("-Infinity", "--amount -Infinity must be a number more than zero"),
        ("-0", "--amount -0 must be a number more than zero"),
        ("1e-999999999", "--amount 1E-999999999 has more decimal places"),
        ("ten", "--amount 'ten' is not a number"),
    ],
)
def test_a_mistyped_amount_is_one_sentence(typed: str, refused: str) -> None:
    """Finding 3: `--amount 1e30` or 29 digits raised decimal.InvalidOperation in quantize."""
    with pytest.raises(Refused) as caught:
        with_amount(target(), parse_amount(typed))
    assert str(caught.value).startswith(refused)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("typed", "refunds"), [("4", "4.00"), ("4.5", "4.50"), ("4.500000", "4.50"), ("10", "10.00")]
)
def test_a_good_amount_is_refunded_in_cents(typed: str, refunds: str) -> None:
    amount = with_amount(target(), parse_amount(typed)).amount
    assert str(amount) == refunds


@settings(max_examples=500)
@given(text=amount_text, paid=st.sampled_from(["10.00", "15", "17.50"]))
def test_no_amount_typed_gives_anything_but_a_sentence_or_an_exact_refund(
    text: str, paid: str
) -> None:
    """Finding 3: whatever is typed, the answer is Refused or an amount in (0, left] with
    no more decimals than cents or the payment has, equal to what was typed."""
    planned = target(paid=paid, left=paid)
    try:
        amount = with_amount(planned, parse_amount(text)).amount
    except Refused as exc:
        assert "\n" not in str(exc)
        return
    assert 0 < amount <= planned.left
    assert decimal_places(amount) <= 2 and amount == Decimal(text.strip())
