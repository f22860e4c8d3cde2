"""Fixed, realistic orders and card payments for `itinerabot render --sample`, tests and the bench.

`sample_order`: Frankfurt to New York and back on Lufthansa; the return lands the next day.
`sample_trip`: up to 16 flights around the world in legs with connections, for 1-9 travellers.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from itinerabot.models import (
    Airport,
    Flight,
    Itinerary,
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
)

FRANKFURT = Airport(
    iata="FRA",
    name="Frankfurt am Main International Airport",
    city="Frankfurt am Main",
    country="DE",
    tz="Europe/Berlin",
)
NEW_YORK_JFK = Airport(
    iata="JFK",
    name="John F Kennedy International Airport",
    city="New York",
    country="US",
    tz="America/New_York",
)


def sample_order() -> tuple[Order, Payment]:
    """A paid two-flight order (LH 400 out, LH 401 back) and its Stripe card payment."""
    itinerary = Itinerary(
        passengers=("Maria Schneider",),
        legs=(
            (
                Flight(
                    flight_number="LH 400",
                    origin=FRANKFURT,
                    destination=NEW_YORK_JFK,
                    departure_local=datetime(2026, 12, 10, 10, 55),
                    arrival_local=datetime(2026, 12, 10, 13, 50),
                ),
            ),
            (
                Flight(
                    flight_number="LH 401",
                    origin=NEW_YORK_JFK,
                    destination=FRANKFURT,
                    departure_local=datetime(2026, 12, 20, 17, 45),
                    arrival_local=datetime(2026, 12, 21, 7, 35),
                ),
            ),
        ),
    )
    order = Order(
        id=1,
        reference="IB-7K3Q9P",
        chat_id=123456789,
        itinerary=itinerary,
        price=Decimal("10.00"),
        currency="USD",
        status=OrderStatus.PAID,
        created_at=datetime(2026, 11, 26, 9, 58, tzinfo=UTC),
    )
    payment = Payment(
        method=PaymentMethod.CARD,
        amount=Decimal("10.00"),
        currency="USD",
        provider_ref="cs_test_a1Qm3xR8vB2nK7pLz4TsY9wEoD6hJcFgU0iN5",
        paid_at=datetime(2026, 11, 26, 10, 0, 12, tzinfo=UTC),
        provider_payment_id="pi_3QxT8kLz4TsY9wEo1d6hJcFg",
    )
    return order, payment


def _airport(iata: str, name: str, city: str, country: str, tz: str) -> Airport:
    return Airport(iata=iata, name=name, city=city, country=country, tz=tz)


_DOH = _airport("DOH", "Hamad International Airport", "Doha", "QA", "Asia/Qatar")
_BKK = _airport("BKK", "Suvarnabhumi Airport", "Bangkok", "TH", "Asia/Bangkok")
_SIN = _airport("SIN", "Singapore Changi Airport", "Singapore", "SG", "Asia/Singapore")
_SYD = _airport(
    "SYD", "Sydney Kingsford Smith International Airport", "Sydney", "AU", "Australia/Sydney"
)
_AKL = _airport("AKL", "Auckland International Airport", "Auckland", "NZ", "Pacific/Auckland")
_HNL = _airport(
    "HNL", "Daniel K Inouye International Airport", "Honolulu", "US", "Pacific/Honolulu"
)
_LAX = _airport(
    "LAX", "Los Angeles International Airport", "Los Angeles", "US", "America/Los_Angeles"
)
_YYZ = _airport("YYZ", "Toronto Pearson International Airport", "Toronto", "CA", "America/Toronto")
_LHR = _airport("LHR", "London Heathrow Airport", "London", "GB", "Europe/London")
_DXB = _airport("DXB", "Dubai International Airport", "Dubai", "AE", "Asia/Dubai")
_DEL = _airport("DEL", "Indira Gandhi International Airport", "New Delhi", "IN", "Asia/Kolkata")
_IST = _airport("IST", "Istanbul Airport", "Istanbul", "TR", "Europe/Istanbul")
_VIE = _airport("VIE", "Vienna International Airport", "Vienna", "AT", "Europe/Vienna")
_ZRH = _airport("ZRH", "Zurich Airport", "Zurich", "CH", "Europe/Zurich")

#: around the world from Frankfurt and back: (number, airline, from, to, block minutes, then
#: minutes on the ground before a connection, or the local time a new leg leaves 3 days later)
_ROUTE: Final = (
    ("QR 68", "Qatar Airways", FRANKFURT, _DOH, 365, time(10, 15)),
    ("QR 836", "Qatar Airways", _DOH, _BKK, 400, 155),
    ("SQ 983", "Singapore Airlines", _BKK, _SIN, 145, time(8, 5)),
    ("SQ 221", "Singapore Airlines", _SIN, _SYD, 470, 110),
    ("NZ 104", "Air New Zealand", _SYD, _AKL, 185, time(9, 30)),
    ("NZ 10", "Air New Zealand", _AKL, _HNL, 530, time(21, 10)),
    ("HA 2", "Hawaiian Airlines", _HNL, _LAX, 330, 215),
    ("AA 4", "American Airlines", _LAX, NEW_YORK_JFK, 325, 100),
    ("AC 717", "Air Canada", NEW_YORK_JFK, _YYZ, 110, time(7, 0)),
    ("AC 848", "Air Canada", _YYZ, _LHR, 415, 195),
    ("EK 2", "Emirates", _LHR, _DXB, 415, time(14, 15)),
    ("EK 510", "Emirates", _DXB, _DEL, 195, 140),
    ("TK 717", "Turkish Airlines", _DEL, _IST, 390, time(6, 5)),
    ("TK 1885", "Turkish Airlines", _IST, _VIE, 140, 95),
    ("OS 561", "Austrian Airlines", _VIE, _ZRH, 80, time(7, 5)),
    ("LX 1070", "Swiss", _ZRH, FRANKFURT, 60, 65),
)

#: names as in passports, Latin letters, up to the 60 characters a traveller may enter
_TRAVELLERS: Final = (
    "MARIA-ALEJANDRA DE LOS ANGELES FERNANDEZ-GARCIA HOHENBERG",
    "JOHANNES MAXIMILIAN FRIEDRICH ALEXANDER SCHNEIDER-WESTPHALEN",
    "NGUYEN THI THANH HUONG",
    "ANNA-SOPHIE KATHARINA ELISABETH MUELLER-LUEDENSCHEIDT",
    "OLUWASEUN ADEBAYO OLUWADAMILOLA AKINWUMI-OGUNLEYE",
    "SIOBHAN MAIREAD O'SULLIVAN-FITZGERALD",
    "KRISTOFFER ALEKSANDER BJOERNSTAD HALVORSEN-LINDQVIST",
    "PRIYA LAKSHMI VENKATARAMAN SUBRAMANIAN-RAGHAVAN",
    "JEAN-BAPTISTE EMMANUEL DE LA ROCHEFOUCAULD-MONTMORENCY",
)
_LEG_GAP: Final = timedelta(days=3)
_UNIT_PRICE: Final = Decimal("10.00")


def sample_trip(flights: int, travellers: int) -> tuple[Order, Payment]:
    """A paid order of the first `flights` flights of a trip around the world (legs of one to
    three flights, connections of 1 to 4 hours, every airline named) for `travellers` people
    with long passport names, priced per traveller, and its Stripe card payment.

    Raises ValueError unless 1 <= flights <= 16 and 1 <= travellers <= 9.
    """
    if not 1 <= flights <= len(_ROUTE):
        raise ValueError(f"flights must be 1 to {len(_ROUTE)}, not {flights}")
    if not 1 <= travellers <= len(_TRAVELLERS):
        raise ValueError(f"travellers must be 1 to {len(_TRAVELLERS)}, not {travellers}")
    legs: list[list[Flight]] = []
    landed = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # the first leg leaves 3 days after this
    for number, airline, origin, destination, minutes, then in _ROUTE[:flights]:
        if isinstance(then, int):
            departs = landed + timedelta(minutes=then)
        else:
            day = _local(landed, origin).date() + _LEG_GAP
            departs = datetime.combine(day, then, ZoneInfo(origin.tz)).astimezone(UTC)
        landed = departs + timedelta(minutes=minutes)
        flight = Flight(
            flight_number=number,
            origin=origin,
            destination=destination,
            departure_local=_local(departs, origin),
            arrival_local=_local(landed, destination),
            airline=airline,
        )
        if isinstance(then, int):
            legs[-1].append(flight)
        else:
            legs.append([flight])
    itinerary = Itinerary(
        passengers=_TRAVELLERS[:travellers], legs=tuple(tuple(leg) for leg in legs)
    )
    price = _UNIT_PRICE * travellers
    order = Order(
        id=2,
        reference="IB-W4N8RT",
        chat_id=123456789,
        itinerary=itinerary,
        price=price,
        currency="USD",
        status=OrderStatus.PAID,
        created_at=datetime(2026, 11, 26, 9, 58, tzinfo=UTC),
        quantity=travellers,
    )
    payment = Payment(
        method=PaymentMethod.CARD,
        amount=price,
        currency="USD",
        provider_ref="cs_test_b7Wm2yT9cD4nQ8rLx5UsZ0fGpE3kJhHaV1jM6",
        paid_at=datetime(2026, 11, 26, 10, 0, 12, tzinfo=UTC),
        provider_payment_id="pi_3QyU9mNa5UtZ0fGp2e7kKdHh",
    )
    return order, payment


def _local(moment: datetime, airport: Airport) -> datetime:
    """The naive wall time at `airport` of `moment`, as a traveller enters it."""
    return moment.astimezone(ZoneInfo(airport.tz)).replace(tzinfo=None)
