"""A fixed, realistic order and card payment for `itinerabot render --sample`, tests and the bench.

Frankfurt to New York and back on Lufthansa; the return lands the next day.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

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
