"""Domain records shared by the dialogue, the store, payments and the PDF.

Plain frozen dataclasses with no I/O; times of flights are local wall times at each airport.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
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
    #: the operating airline's name as shown beside the number ("Lufthansa"), when known
    airline: str | None = None

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
        d: dict[str, Any] = {
            "flight_number": self.flight_number,
            "origin": self.origin.to_dict(),
            "destination": self.destination.to_dict(),
            "departure_local": self.departure_local.isoformat(timespec="minutes"),
            "arrival_local": self.arrival_local.isoformat(timespec="minutes"),
        }
        if self.airline is not None:
            d["airline"] = self.airline
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Flight:
        return cls(
            flight_number=str(d["flight_number"]),
            origin=Airport.from_dict(d["origin"]),
            destination=Airport.from_dict(d["destination"]),
            departure_local=datetime.fromisoformat(d["departure_local"]),
            arrival_local=datetime.fromisoformat(d["arrival_local"]),
            airline=None if d.get("airline") is None else str(d["airline"]),
        )


def layover(arrived: Flight, departing: Flight) -> timedelta:
    """The time on the ground between landing with `arrived` and taking off with `departing`."""
    return departing.departure_utc - arrived.arrival_utc


def elapsed(start: datetime, end: datetime) -> timedelta:
    """The real time from `start` to `end` (aware). Python subtracts two times of the same zone
    by their wall clocks, which is wrong across a clock change (a connection at the airport
    it landed at, a flight within one zone): both are put on UTC first."""
    return end.astimezone(ZoneInfo("UTC")) - start.astimezone(ZoneInfo("UTC"))


def stops(flights: Sequence[Flight]) -> list[Airport]:
    """The airports in the order flown: where the flights take off, connect and land. A flight
    that does not leave from where the one before landed (the next leg starting elsewhere)
    shows both airports."""
    found: list[Airport] = []
    for flight in flights:
        if not found or found[-1].iata != flight.origin.iata:
            found.append(flight.origin)
        found.append(flight.destination)
    return found


class TripShape(enum.StrEnum):
    ONE_WAY = "one_way"
    RETURN = "return"  # two legs, the second from where the first ends back to where it began
    MULTI_CITY = "multi_city"


@dataclass(frozen=True, slots=True)
class Itinerary:
    """What the traveller entered: 1–9 passengers (names as in the passport) and the journey.

    The journey is made of legs in time order; each leg is one or more flights, every flight after
    the first a connection from the airport the one before landed at.
    """

    passengers: tuple[str, ...]
    legs: tuple[tuple[Flight, ...], ...]

    @property
    def flights(self) -> tuple[Flight, ...]:
        """Every flight of every leg, in order."""
        return tuple(f for leg in self.legs for f in leg)

    @property
    def shape(self) -> TripShape:
        if len(self.legs) == 1:
            return TripShape.ONE_WAY
        first, second = self.legs[0], self.legs[-1]
        if (
            len(self.legs) == 2
            and second[0].origin.iata == first[-1].destination.iata
            and second[-1].destination.iata == first[0].origin.iata
        ):
            return TripShape.RETURN
        return TripShape.MULTI_CITY

    def to_dict(self) -> dict[str, Any]:
        return {
            "passengers": list(self.passengers),
            "legs": [[f.to_dict() for f in leg] for leg in self.legs],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Itinerary:
        """The itinerary in `d`; also reads the form stored before legs and several passengers
        (`passenger` and `flights`: one-way or return, each flight a leg of its own)."""
        if "legs" not in d:
            return cls(
                passengers=(str(d["passenger"]),),
                legs=tuple((Flight.from_dict(f),) for f in d["flights"]),
            )
        return cls(
            passengers=tuple(str(p) for p in d["passengers"]),
            legs=tuple(tuple(Flight.from_dict(f) for f in leg) for leg in d["legs"]),
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
#: the most Stars Telegram takes for one invoice
STARS_MAX = 100_000


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
    #: how many units the total `price` is made of: the travellers when priced per traveller
    quantity: int = 1

    @property
    def unit_price(self) -> Decimal:
        """The price of one unit (one traveller, or the whole document)."""
        return self.price / self.quantity


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
