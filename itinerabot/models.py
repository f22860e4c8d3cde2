"""Domain records shared by the dialogue, the store, payments and the PDF.

Plain frozen dataclasses with no I/O; times of flights are local wall times at each airport.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Airport:
    """An airport as the traveller sees it: IATA code, name, city, ISO country and IANA zone."""

    iata: str
    name: str
    city: str
    country: str
    tz: str

    def to_dict(self) -> dict[str, str]:
        return {
            "iata": self.iata,
            "name": self.name,
            "city": self.city,
            "country": self.country,
            "tz": self.tz,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Airport:
        return cls(
            iata=str(d["iata"]),
            name=str(d["name"]),
            city=str(d["city"]),
            country=str(d["country"]),
            tz=str(d["tz"]),
        )


@dataclass(frozen=True, slots=True)
class Flight:
    """One flight: number like `LH 401`, and naive local departure/arrival times."""

    flight_number: str
    origin: Airport
    destination: Airport
    departure_local: datetime
    arrival_local: datetime

    @property
    def departure_utc(self) -> datetime:
        return self.departure_local.replace(tzinfo=ZoneInfo(self.origin.tz)).astimezone(
            ZoneInfo("UTC")
        )

    @property
    def arrival_utc(self) -> datetime:
        return self.arrival_local.replace(tzinfo=ZoneInfo(self.destination.tz)).astimezone(
            ZoneInfo("UTC")
        )

    @property
    def departure_aware(self) -> datetime:
        return self.departure_local.replace(tzinfo=ZoneInfo(self.origin.tz))

    @property
    def arrival_aware(self) -> datetime:
        return self.arrival_local.replace(tzinfo=ZoneInfo(self.destination.tz))

    @property
    def duration(self) -> timedelta:
        return self.arrival_utc - self.departure_utc

    def to_dict(self) -> dict[str, Any]:
        return {
            "flight_number": self.flight_number,
            "origin": self.origin.to_dict(),
            "destination": self.destination.to_dict(),
            "departure_local": self.departure_local.isoformat(timespec="minutes"),
            "arrival_local": self.arrival_local.isoformat(timespec="minutes"),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Flight:
        return cls(
            flight_number=str(d["flight_number"]),
            origin=Airport.from_dict(d["origin"]),
            destination=Airport.from_dict(d["destination"]),
            departure_local=datetime.fromisoformat(d["departure_local"]),
            arrival_local=datetime.fromisoformat(d["arrival_local"]),
        )


@dataclass(frozen=True, slots=True)
class Itinerary:
    """What the traveller entered: the passenger name and one or two flights."""

    passenger: str
    flights: tuple[Flight, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"passenger": self.passenger, "flights": [f.to_dict() for f in self.flights]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Itinerary:
        return cls(
            passenger=str(d["passenger"]),
            flights=tuple(Flight.from_dict(f) for f in d["flights"]),
        )


class OrderStatus(enum.StrEnum):
    """Durable order states. Only these transitions exist:

    awaiting_payment → paid → delivered | delivery_failed;  awaiting_payment → cancelled;
    cancelled → paid (a payment that lands after a /cancel is never lost);
    delivery_failed → paid (the operator's `itinerabot orders resend` tries again).
    """

    AWAITING_PAYMENT = "awaiting_payment"
    CANCELLED = "cancelled"
    PAID = "paid"
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"

    @property
    def is_paid(self) -> bool:
        return self in (OrderStatus.PAID, OrderStatus.DELIVERED, OrderStatus.DELIVERY_FAILED)


class PaymentMethod(enum.StrEnum):
    CARD = "card"
    USDC = "usdc"
    STARS = "stars"  # Telegram Stars (currency XTR), Telegram's own invoices


#: the currency code of Telegram Stars, in invoices and in the payments they bring
STARS_CURRENCY = "XTR"


@dataclass(frozen=True, slots=True)
class Order:
    """An itinerary the traveller may pay for, with its short reference (e.g. `IB-7K3Q9P`)."""

    id: int
    reference: str
    chat_id: int
    itinerary: Itinerary
    price: Decimal
    currency: str
    status: OrderStatus
    created_at: datetime
    document_message_id: int | None = None


@dataclass(frozen=True, slots=True)
class Payment:
    """A confirmed payment, as recorded once per order.

    `provider_ref` is the Stripe Checkout Session id or the Circle payment intent id;
    `provider_payment_id` the Stripe PaymentIntent id or the Circle payment id, when known.
    """

    method: PaymentMethod
    amount: Decimal
    currency: str
    provider_ref: str
    paid_at: datetime
    provider_payment_id: str | None = None
    tx_hash: str | None = None
