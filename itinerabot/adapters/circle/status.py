"""Circle payment intents as plain values: parse Circle's JSON, decide what it means for an order.

Pure: no I/O, no clock. Anything that is not the expected JSON raises `MalformedResponse`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from itinerabot.adapters.circle.errors import MalformedResponse

# Tie-break for entries with the same `time`, so the array order never matters.
_STATUS_RANK = {"created": 0, "active": 1, "pending": 1, "complete": 2, "expired": 2, "failed": 2}
_UNKNOWN_RANK = 1
_REFUNDED_RANK = 3


class Outcome(enum.StrEnum):
    """What an intent's latest timeline entry means for the order."""

    PAID = "paid"  # complete, context paid/overpaid, amountPaid >= amount: fulfil
    UNDERPAID = "underpaid"  # money arrived but not enough: tell the user what is missing
    PENDING = "pending"  # created, pending, active, or a status we do not know: keep checking
    EXPIRED = "expired"  # the offer ended unpaid
    FAILED = "failed"
    REFUNDED = "refunded"

    @property
    def is_final(self) -> bool:
        """True when further checks cannot change the answer (paid, expired, failed, refunded)."""
        return self not in (Outcome.PENDING, Outcome.UNDERPAID)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One entry of an intent's `timeline`; `status` and `context` are kept as Circle sent them."""

    status: str
    context: str | None
    time: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentIntentView:
    """The parts of a transient payment intent the bot acts on; `raw` is Circle's object."""

    id: str
    amount: Decimal
    currency: str
    amount_paid: Decimal | None
    settlement_currency: str
    chain: str
    address: str | None
    expires_on: datetime | None
    payment_ids: tuple[str, ...]
    latest: TimelineEntry | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def missing_amount(self) -> Decimal:
        """How much is still to pay (never negative); the whole amount if nothing arrived."""
        paid = self.amount_paid if self.amount_paid is not None else Decimal(0)
        return max(self.amount - paid, Decimal(0))

    @property
    def outcome(self) -> Outcome:
        """Classify the latest timeline entry (see `outcome_of`)."""
        return outcome_of(self.latest, amount=self.amount, amount_paid=self.amount_paid)


@dataclass(frozen=True, slots=True)
class PaymentView:
    """A crypto payment (`GET /v1/payments/{id}`): its status and on-chain transaction hash."""

    id: str
    status: str
    transaction_hash: str | None
    amount: Decimal | None
    currency: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class RefundView:
    """A crypto refund (Circle's CryptoPayment of type `refund`): its id and status
    (`pending`, `confirmed`, `paid` (sent), `failed`, …, kept as Circle sent it), the
    on-chain transaction once sent, and Circle's `errorCode` when it failed."""

    id: str
    status: str
    payment_intent_id: str | None
    amount: Decimal | None
    transaction_hash: str | None = None
    error_code: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def outcome_of(
    latest: TimelineEntry | None, *, amount: Decimal, amount_paid: Decimal | None
) -> Outcome:
    """Decide what `latest` means. Only `complete` + paid/overpaid + enough money is PAID.

    A `complete` entry that claims paid while `amountPaid` is short counts as UNDERPAID (or
    PENDING when `amountPaid` is absent): money is never assumed.
    """
    if latest is None:
        return Outcome.PENDING
    status, context = latest.status, latest.context
    if status == "failed":
        return Outcome.FAILED
    if status == "refunded":
        return Outcome.REFUNDED
    if status == "expired" or (status == "complete" and context == "expired"):
        return Outcome.EXPIRED
    if context == "underpaid":
        return Outcome.UNDERPAID
    if status == "complete" and context in ("paid", "overpaid"):
        if amount_paid is None:
            return Outcome.PENDING
        return Outcome.PAID if amount_paid >= amount else Outcome.UNDERPAID
    return Outcome.PENDING


def latest_entry(timeline: Iterable[TimelineEntry]) -> TimelineEntry | None:
    """The entry with the greatest `time`, whatever the array order; None for an empty timeline.

    Entries with equal times are ordered by how far along the status is (refunded, then
    complete/expired/failed, then pending, then created), so the answer never depends on order.
    """
    return max(timeline, key=_entry_order, default=None)


def _entry_order(entry: TimelineEntry) -> tuple[datetime, int, str, str]:
    if entry.status == "refunded":
        rank = _REFUNDED_RANK
    else:
        rank = _STATUS_RANK.get(entry.status, _UNKNOWN_RANK)
    return (entry.time, rank, entry.status, entry.context or "")


def parse_payment_intent_response(body: object) -> PaymentIntentView:
    """Parse Circle's `{"data": {...}}` answer for one payment intent (raw bytes or decoded JSON).

    Raises MalformedResponse if it is not JSON, not wrapped in `data`, or lacks required fields.
    """
    return parse_payment_intent(unwrap_data(body))


def parse_payment_intent(obj: Any) -> PaymentIntentView:
    """Parse one payment intent object (the inside of `data`, or a notification's `paymentIntent`).

    Raises MalformedResponse for a missing id, amount or blockchain payment method, an amount
    that is not a decimal string, or a timeline entry without a status or a parseable time.
    """
    data = _mapping(obj, "payment intent")
    amount = _money(data.get("amount"), "amount")
    if amount is None:
        raise MalformedResponse("payment intent has no amount (a continuous intent?)")
    amount_value, currency = amount
    paid = _money(data.get("amountPaid"), "amountPaid")
    chain, address = _payment_method(data.get("paymentMethods"))
    expires = data.get("expiresOn")
    # An absent or null list is an empty one; anything else that is not a list is malformed.
    timeline_raw = data.get("timeline") if data.get("timeline") is not None else []
    if not isinstance(timeline_raw, list):
        raise MalformedResponse("payment intent timeline is not a list")
    payment_ids_raw = data.get("paymentIds") if data.get("paymentIds") is not None else []
    if not (isinstance(payment_ids_raw, list) and all(isinstance(p, str) for p in payment_ids_raw)):
        raise MalformedResponse("payment intent paymentIds is not a list of strings")
    return PaymentIntentView(
        id=_string(data, "id"),
        amount=amount_value,
        currency=currency,
        amount_paid=paid[0] if paid is not None else None,
        settlement_currency=_string(data, "settlementCurrency"),
        chain=chain,
        address=address,
        expires_on=None if expires is None else _timestamp(expires, "expiresOn"),
        payment_ids=tuple(payment_ids_raw),
        latest=latest_entry(parse_timeline_entry(e) for e in timeline_raw),
        raw=data,
    )


def parse_timeline_entry(obj: Any) -> TimelineEntry:
    """Parse one `{status, context?, reason?, time}`; unknown statuses and contexts are kept."""
    entry = _mapping(obj, "timeline entry")
    context = entry.get("context")
    reason = entry.get("reason")
    if context is not None and not isinstance(context, str):
        raise MalformedResponse("timeline entry context is not a string")
    if reason is not None and not isinstance(reason, str):
        raise MalformedResponse("timeline entry reason is not a string")
    return TimelineEntry(
        status=_string(entry, "status"),
        context=context,
        time=_timestamp(entry.get("time"), "timeline time"),
        reason=reason,
    )


def parse_payment_intent_notification(message: str | bytes) -> PaymentIntentView | None:
    """Parse the `Message` of a Circle SNS notification; None if it is not about a payment intent.

    Circle sends `{clientId, notificationType, version, paymentIntent}` as a JSON string.
    Raises MalformedResponse if it is not JSON or the payment intent inside is malformed.
    """
    data = _mapping(_loads(message), "notification")
    if data.get("notificationType") != "paymentIntents":
        return None
    return parse_payment_intent(data.get("paymentIntent"))


def parse_payment_response(body: object) -> PaymentView:
    """Parse Circle's `{"data": {...}}` answer for one payment. Raises MalformedResponse."""
    data = _mapping(unwrap_data(body), "payment")
    tx_hash = data.get("transactionHash")
    if tx_hash is not None and not isinstance(tx_hash, str):
        raise MalformedResponse("payment transactionHash is not a string")
    amount_obj = data.get("amount")
    amount: Decimal | None = None
    currency: str | None = None
    if isinstance(amount_obj, Mapping):
        raw_currency = amount_obj.get("currency")
        currency = raw_currency if isinstance(raw_currency, str) else None
        if amount_obj.get("amount") is not None:
            amount = _decimal(amount_obj.get("amount"), "payment amount")
    return PaymentView(
        id=_string(data, "id"),
        status=_string(data, "status"),
        transaction_hash=tx_hash,
        amount=amount,
        currency=currency,
        raw=data,
    )


def parse_refund_response(body: object) -> RefundView:
    """Parse Circle's `{"data": {...}}` answer to a refund request or to `GET /v1/payments/{id}`
    of a refund. Raises MalformedResponse if it is not one (no id or status, or not of type
    `refund`).

    The spec's CryptoPayment names no failure reason; Circle's other money objects (payments,
    payouts, transfers) carry it as `errorCode`, so that is read when it is a string.
    """
    data = _mapping(unwrap_data(body), "refund")
    if data.get("type", "refund") != "refund":
        raise MalformedResponse("the answer about a refund is not a refund")
    intent_id = data.get("paymentIntentId")
    amount_obj = data.get("amount")
    amount = None
    if isinstance(amount_obj, Mapping) and amount_obj.get("amount") is not None:
        amount = _decimal(amount_obj.get("amount"), "refund amount")
    tx_hash, error_code = data.get("transactionHash"), data.get("errorCode")
    return RefundView(
        id=_string(data, "id"),
        status=_string(data, "status"),
        payment_intent_id=intent_id if isinstance(intent_id, str) else None,
        amount=amount,
        transaction_hash=tx_hash if isinstance(tx_hash, str) and tx_hash else None,
        error_code=error_code if isinstance(error_code, str) and error_code else None,
        raw=data,
    )


def unwrap_data(body: object) -> dict[str, Any]:
    """Return the object inside Circle's `{"data": {...}}` wrapper. Raises MalformedResponse."""
    decoded = _loads(body) if isinstance(body, bytes | str) else body
    wrapper = _mapping(decoded, "response")
    return _mapping(wrapper.get("data"), "response data")


def _loads(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"body is not JSON ({exc.__class__.__name__})") from exc


def _mapping(obj: Any, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise MalformedResponse(f"{what} is not a JSON object")
    return obj


def _string(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedResponse(f"{key} is missing or not a string")
    return value


def _decimal(value: Any, what: str) -> Decimal:
    if not isinstance(value, str):
        raise MalformedResponse(f"{what} is not a decimal string")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise MalformedResponse(f"{what} is not a decimal string") from exc
    if not number.is_finite():
        raise MalformedResponse(f"{what} is not a finite number")
    return number


def _money(obj: Any, what: str) -> tuple[Decimal, str] | None:
    if obj is None:
        return None
    money = _mapping(obj, what)
    return _decimal(money.get("amount"), f"{what}.amount"), _string(money, "currency")


def _payment_method(obj: Any) -> tuple[str, str | None]:
    if not isinstance(obj, Sequence) or isinstance(obj, str):
        raise MalformedResponse("paymentMethods is not a list")
    for method in obj:
        if isinstance(method, dict) and method.get("type") == "blockchain":
            chain = _string(method, "chain")
            address = method.get("address")
            if address is not None and not isinstance(address, str):
                raise MalformedResponse("payment method address is not a string")
            return chain, address or None
    raise MalformedResponse("payment intent has no blockchain payment method")


def _timestamp(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise MalformedResponse(f"{what} is not a timestamp string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise MalformedResponse(f"{what} is not an ISO-8601 timestamp") from exc
    # Circle's times are UTC; a time without an offset is read as UTC so all compare.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
