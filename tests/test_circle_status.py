"""Parsing Circle payment intents and deciding the outcome: pure, no network, no clock."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from itinerabot.adapters.circle.errors import MalformedResponse
from itinerabot.adapters.circle.status import (
    Outcome,
    TimelineEntry,
    latest_entry,
    outcome_of,
    parse_payment_intent,
    parse_payment_intent_notification,
    parse_payment_intent_response,
    parse_payment_response,
)
from itinerabot.errors import TransientServiceError
from tests.circle_spec import (
    ADDRESS,
    INTENT_ID,
    operation_examples,
    payment_intent,
    timeline_entry,
    validate,
)

T0 = "2022-07-21T20:13:35.579331Z"
T1 = "2022-07-21T20:14:02.000Z"
T2 = "2022-07-21T20:19:24.859052Z"


def parse(intent: dict[str, Any], *, conforms: bool = True) -> Any:
    """Parse `{"data": intent}` as bytes; first check the fixture against Circle's spec."""
    if conforms:
        validate("PaymentIntent", intent)
    return parse_payment_intent_response(json.dumps({"data": intent}).encode())


def test_new_intent_from_the_spec_example_is_pending_without_address() -> None:
    example = operation_examples("/v1/paymentIntents", "post", 201)["Transient Payment Intent"]
    validate("PaymentIntent", example["data"])
    view = parse_payment_intent_response(example)
    assert view.id == INTENT_ID
    assert view.amount == Decimal("3.14")
    assert view.currency == "USD"
    assert view.amount_paid == Decimal("0.00")
    assert view.settlement_currency == "USD"
    assert view.chain == "ETH"
    assert view.address is None
    assert view.payment_ids == ()
    assert view.latest == TimelineEntry(
        "created", None, datetime(2022, 7, 21, 20, 13, 35, 579331, UTC)
    )
    assert view.outcome is Outcome.PENDING
    assert view.raw == example["data"]


def test_address_and_expiry_appear_with_pending() -> None:
    view = parse(
        payment_intent(
            address=ADDRESS,
            expires_on="2022-07-21T21:13:35.579Z",
            timeline=[timeline_entry("pending", T1), timeline_entry("created", T0)],
        )
    )
    assert view.address == ADDRESS
    assert view.expires_on == datetime(2022, 7, 21, 21, 13, 35, 579000, UTC)
    assert view.latest is not None and view.latest.status == "pending"
    assert view.outcome is Outcome.PENDING


@pytest.mark.parametrize(
    "entries",
    list(
        itertools.permutations(
            [
                timeline_entry("created", T0),
                timeline_entry("pending", T1),
                timeline_entry("complete", T2, "paid"),
            ]
        )
    ),
)
def test_timeline_in_any_order_gives_the_same_latest(entries: tuple[dict[str, str], ...]) -> None:
    view = parse(payment_intent(amount_paid="10.00", timeline=list(entries), payment_ids=[]))
    assert view.latest == TimelineEntry(
        "complete", "paid", datetime(2022, 7, 21, 20, 19, 24, 859052, UTC)
    )
    assert view.outcome is Outcome.PAID


def test_equal_times_do_not_depend_on_order() -> None:
    a = TimelineEntry("pending", None, datetime(2024, 1, 1, tzinfo=UTC))
    b = TimelineEntry("complete", "paid", datetime(2024, 1, 1, tzinfo=UTC))
    assert latest_entry([a, b]) == latest_entry([b, a]) == b


def test_times_compare_as_instants_not_strings() -> None:
    # "...Z" and "+02:00" spellings: string order would pick the wrong one.
    early = timeline_entry("pending", "2024-01-01T11:00:00+02:00")  # 09:00 UTC
    late = timeline_entry("complete", "2024-01-01T10:00:00Z", "paid")
    view = parse(payment_intent(amount_paid="10.00", timeline=[late, early]), conforms=False)
    assert view.outcome is Outcome.PAID


def test_empty_timeline_is_pending() -> None:
    view = parse(payment_intent(timeline=[]))
    assert view.latest is None
    assert view.outcome is Outcome.PENDING


@pytest.mark.parametrize(
    ("status", "context"),
    [("mystery", None), ("pending", "mystery"), ("active", None), ("complete", None)],
)
def test_unknown_statuses_and_contexts_parse_and_stay_pending(
    status: str, context: str | None
) -> None:
    # Beyond the spec's enums on purpose, so not validated against it.
    view = parse(
        payment_intent(
            timeline=[timeline_entry("created", T0), timeline_entry(status, T1, context)]
        ),
        conforms=False,
    )
    assert view.latest is not None
    assert (view.latest.status, view.latest.context) == (status, context)
    assert view.outcome is Outcome.PENDING


def test_underpaid_says_what_is_missing() -> None:
    view = parse(
        payment_intent(
            amount="10.00",
            amount_paid="4.25",
            address=ADDRESS,
            timeline=[timeline_entry("complete", T2, "underpaid"), timeline_entry("pending", T1)],
        )
    )
    assert view.outcome is Outcome.UNDERPAID
    assert view.missing_amount == Decimal("5.75")


def test_pending_with_underpaid_context_is_underpaid() -> None:
    view = parse(
        payment_intent(amount_paid="1.00", timeline=[timeline_entry("pending", T1, "underpaid")])
    )
    assert view.outcome is Outcome.UNDERPAID
    assert view.missing_amount == Decimal("9.00")


def test_overpaid_is_paid_and_misses_nothing() -> None:
    view = parse(
        payment_intent(amount_paid="12.00", timeline=[timeline_entry("complete", T2, "overpaid")])
    )
    assert view.outcome is Outcome.PAID
    assert view.missing_amount == Decimal(0)


def test_complete_paid_with_too_little_money_is_not_paid() -> None:
    short = parse(
        payment_intent(amount_paid="9.99", timeline=[timeline_entry("complete", T2, "paid")])
    )
    assert short.outcome is Outcome.UNDERPAID
    assert short.missing_amount == Decimal("0.01")
    unknown = parse(
        payment_intent(amount_paid=None, timeline=[timeline_entry("complete", T2, "paid")])
    )
    assert unknown.outcome is Outcome.PENDING


def test_complete_with_expired_context_is_expired() -> None:
    # Some docs show this for an unpaid intent; `expired` is not in the spec's context enum.
    view = parse(
        payment_intent(timeline=[timeline_entry("complete", T2, "expired")]), conforms=False
    )
    assert view.outcome is Outcome.EXPIRED


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("expired", Outcome.EXPIRED),
        ("failed", Outcome.FAILED),
        ("refunded", Outcome.REFUNDED),
        ("created", Outcome.PENDING),
        ("pending", Outcome.PENDING),
    ],
)
def test_final_and_open_statuses(status: str, outcome: Outcome) -> None:
    view = parse(
        payment_intent(timeline=[timeline_entry("created", T0), timeline_entry(status, T2)])
    )
    assert view.outcome is outcome
    assert outcome.is_final == (outcome not in (Outcome.PENDING, Outcome.UNDERPAID))


def test_outcome_of_nothing_is_pending() -> None:
    assert outcome_of(None, amount=Decimal(10), amount_paid=None) is Outcome.PENDING


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502 Bad Gateway</html>",
        b"",
        b"\xff\xfe",
        b"[]",
        b'{"data": null}',
        b'{"id": "8755d0ea-14f9-4259-b092-de23c14b6568"}',
    ],
)
def test_bodies_that_are_not_the_expected_json_are_malformed(body: bytes) -> None:
    with pytest.raises(MalformedResponse) as info:
        parse_payment_intent_response(body)
    # A garbage body mid-poll is one failed check: the poller retries transient errors.
    assert isinstance(info.value, TransientServiceError)
    assert info.value.service == "circle"


def _broken(**changes: Any) -> dict[str, Any]:
    intent = payment_intent()
    for key, value in changes.items():
        if value is None:
            del intent[key]
        else:
            intent[key] = value
    return intent


@pytest.mark.parametrize(
    "intent",
    [
        _broken(id=None),
        _broken(amount=None),
        _broken(amount={"amount": "ten", "currency": "USD"}),
        _broken(amount={"amount": "NaN", "currency": "USD"}),
        _broken(amount={"amount": 10, "currency": "USD"}),
        _broken(paymentMethods=None),
        _broken(paymentMethods=[]),
        _broken(timeline={"status": "created"}),
        _broken(timeline=[{"status": "created"}]),
        _broken(timeline=[{"status": "created", "time": "yesterday"}]),
        _broken(timeline=[{"time": T0}]),
        _broken(paymentIds=[1, 2]),
        _broken(expiresOn=12),
    ],
)
def test_objects_missing_what_we_need_are_malformed(intent: dict[str, Any]) -> None:
    with pytest.raises(MalformedResponse):
        parse_payment_intent(intent)


def test_notification_message_with_a_payment_intent() -> None:
    intent = payment_intent(amount_paid="10.00", timeline=[timeline_entry("complete", T2, "paid")])
    validate("PaymentIntent", intent)
    message = json.dumps(
        {
            "clientId": "c60d2d5b-203c-45bb-9f6e-93641d40a599",
            "notificationType": "paymentIntents",
            "version": 1,
            "paymentIntent": intent,
        }
    )
    view = parse_payment_intent_notification(message)
    assert view is not None and view.id == INTENT_ID and view.outcome is Outcome.PAID


def test_other_notifications_are_not_payment_intents() -> None:
    assert parse_payment_intent_notification('{"notificationType": "payments"}') is None
    with pytest.raises(MalformedResponse):
        parse_payment_intent_notification("not json")


def test_payment_with_transaction_hash() -> None:
    payment = {
        "id": "69808f36-3e5e-4f37-bf82-ca79e4d70fc1",
        "type": "payment",
        "merchantId": "fc988ed5-c129-4f70-a064-e5beb7eb8e32",
        "amount": {"amount": "10.00", "currency": "USD"},
        "status": "paid",
        "paymentIntentId": INTENT_ID,
        "transactionHash": "0x7351585460bd657f320b9afa02a52c26d89272d0d10cc29913eb8b28e64fd906",
    }
    validate("CryptoPayment", payment)
    view = parse_payment_response({"data": payment})
    assert view.status == "paid"
    assert view.transaction_hash == payment["transactionHash"]
    assert view.amount == Decimal("10.00")
