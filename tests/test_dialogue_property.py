"""Random conversations: whatever arrives, `step` answers within Telegram's limits and never raises.

Each example walks part of the happy path to reach a step, then feeds random texts, commands, other
messages and button presses: real callback data harvested from earlier replies, and garbage. Which
payment methods are offered (card, USDC, Stars at a price) is drawn afresh for every event.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from itinerabot.dialogue import current_question, step, texts
from itinerabot.dialogue.airports import default_index
from itinerabot.dialogue.flow import Draft
from itinerabot.dialogue.types import (
    AnswerCallback,
    ButtonPress,
    CancelOrder,
    CommandMessage,
    Context,
    CreateOrder,
    Event,
    OtherMessage,
    Outcome,
    PayByCard,
    PayWithStars,
    PayWithUsdc,
    SendText,
    TextMessage,
    TripRules,
)
from itinerabot.models import Itinerary, Order, OrderStatus

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

#: airports a random trip flies between; the clocks change twice a year at FRA, LHR, JFK,
#: SYD (in the southern spring and autumn) and MUC, and a trip may start any day of ten months
AIRPORTS = ("FRA", "DOH", "BKK", "JFK", "LHR", "NRT", "SYD", "GRU", "DXB", "SIN", "JNB", "MUC")
FIRST_DEPARTURE = datetime(2026, 6, 10, 6, 0, tzinfo=UTC)


def zone(code: str) -> ZoneInfo:
    airport = default_index().by_code(code)
    assert airport is not None
    return ZoneInfo(airport.tz)


@dataclass(frozen=True)
class Trip:
    """A random trip typed from /start to the summary, and what its order must hold."""

    events: list[Event]
    travellers: int
    legs: list[int]  # flights per leg
    route: list[str]  # every flight's origin, then the last destination


@st.composite
def trips(draw: st.DrawFn) -> Trip:
    """1-3 travellers and 1-6 flights, each after the first a connection (90 min to 22 h after
    landing, from where it landed) or the next leg (from anywhere, up to 5 days later). The
    margins keep each answer valid whichever way an hour repeated by a clock change is read."""
    travellers = draw(st.integers(1, 3), label="travellers")
    events: list[Event] = [CommandMessage("start"), TextMessage("Jane Doe")]
    for n in range(1, travellers):
        events += [TextMessage("add"), TextMessage(f"John {'XYZ'[n]}avier")]
    events.append(TextMessage("no"))
    legs: list[int] = []
    route: list[str] = []
    takes_off = FIRST_DEPARTURE + timedelta(minutes=draw(st.integers(0, 300 * 24 * 60)))
    landed = takes_off
    here = draw(st.sampled_from(AIRPORTS), label="start")
    for n in range(draw(st.integers(1, 6), label="flights")):
        connection = n > 0 and draw(st.booleans(), label="connection")
        if n > 0:
            events.append(TextMessage("connection" if connection else "next leg"))
            longest = 22 * 60 if connection else 5 * 24 * 60
            takes_off = landed + timedelta(minutes=draw(st.integers(90, longest), label="gap"))
        if connection:
            legs[-1] += 1
        else:
            legs.append(1)
            here = draw(st.sampled_from(AIRPORTS), label="origin") if n else here
            events.append(TextMessage(here))
        to = draw(st.sampled_from([a for a in AIRPORTS if a != here]), label="to")
        landed = takes_off + timedelta(minutes=draw(st.integers(90, 18 * 60), label="flight"))
        leaves, arrives = takes_off.astimezone(zone(here)), landed.astimezone(zone(to))
        days = (arrives.date() - leaves.date()).days
        events += [
            TextMessage(to),
            TextMessage(f"QR {100 + n}"),
            TextMessage(f"{leaves:%d %b %Y}"),
            TextMessage(f"{leaves:%H:%M}"),
            TextMessage(f"{arrives:%H:%M} {days:+d}"),
        ]
        route.append(here)
        here = to
    events.append(TextMessage("done"))
    return Trip(events, travellers, legs, [*route, here])


PLAUSIBLE_TEXTS = [
    "Jane Doe", "José Núñez", "x", "add", "no", "done", "connection", "next leg", "London",
    "Heathrow", "frankfurt", "Frnkfurt", "HND", "HNL", "tokyo", "paris", "LH 401", "BA2490",
    "LH12345", "24 Dec 2026",
    "2026-05-31", "2027-06-02", "today", "Dec 24", "31.02.2027", "10:00", "2:05pm", "25:00",
    "07:30 +1", "22:00 -1", "05:00 -1", "14:00 +0", "07:30 +3", "", " ", "/start",
]  # fmt: skip

COMMANDS = ["start", "help", "cancel", "status", "orders", "edit", "x" * 40]

texts_st = st.one_of(st.sampled_from(PLAUSIBLE_TEXTS), st.text(max_size=260))
commands_st = st.builds(
    CommandMessage,
    st.sampled_from(COMMANDS),
    st.one_of(st.just(""), st.just("paid_IB-1"), st.text(max_size=80)),
)
others_st = st.builds(OtherMessage, st.one_of(st.sampled_from(["photo", "sticker"]), st.text()))
garbage_data_st = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"(pay:(card|usdc|stars)|pdf):IB-[0-9]{6}", fullmatch=True),
    st.from_regex(
        r"[0-9]{1,11}:(tr|mo|ap|al|dt|nl|sum|ef|em|rm|add):[A-Za-z0-9.]{0,12}", fullmatch=True
    ),
)


def harvest(outcome: Outcome) -> list[str]:
    return [
        button.data
        for reply in outcome.replies
        if isinstance(reply, SendText)
        for row in reply.keyboard
        for button in row
        if button.data
    ]


def readable(state: str | None) -> bool:
    try:
        Draft.loads(state or "")
    except Exception:
        return False
    return True


def check_outcome(event: Event, before: str | None, outcome: Outcome, ctx: Context) -> None:
    Draft.loads(outcome.state)  # every state written can be read back
    for reply in outcome.replies:
        if isinstance(reply, SendText):
            assert 0 < len(reply.text) <= 4096
            assert reply.text != texts.INTERNAL_ERROR
            assert sum(len(row) for row in reply.keyboard) <= 100
            for row in reply.keyboard:
                for button in row:
                    assert button.data is not None or button.url is not None
                    assert button.data is None or 0 < len(button.data.encode()) <= 64
                    assert button.text
    check_payment_offer(outcome, ctx)
    answers = [r for r in outcome.replies if isinstance(r, AnswerCallback)]
    if isinstance(event, ButtonPress):
        assert [a.callback_id for a in answers] == [event.callback_id]
        if answers[0].text == texts.STALE:
            assert outcome.state == before or not readable(before)
            assert len(outcome.replies) == 1 and not outcome.actions
    else:
        assert answers == []
    statuses = {o.reference: o.status for o in ctx.orders}
    for action in outcome.actions:
        if isinstance(action, CancelOrder):
            assert statuses.get(action.reference) is OrderStatus.AWAITING_PAYMENT
        if isinstance(action, CreateOrder):
            check_order(action, ctx)


def check_order(order: CreateOrder, ctx: Context) -> None:
    """What every order the dialogue makes must hold, whatever the trip's shape."""
    assert order.reference == ctx.new_reference
    itinerary = order.itinerary
    assert 1 <= len(itinerary.passengers) <= ctx.trips.max_travellers
    assert order.quantity == (len(itinerary.passengers) if ctx.per_traveller else 1)
    assert 1 <= len(itinerary.flights) <= ctx.trips.max_flights
    for flight in itinerary.flights:
        assert timedelta(minutes=15) <= flight.duration <= timedelta(hours=20)
        assert flight.departure_utc > ctx.now
        assert flight.origin.iata != flight.destination.iata
    for before, after in itertools.pairwise(itinerary.flights):
        assert after.departure_utc - before.arrival_utc >= ctx.trips.min_connection
    for leg in itinerary.legs:
        for before, after in itertools.pairwise(leg):
            assert after.origin == before.destination
            assert after.departure_utc - before.arrival_utc <= timedelta(hours=24)


def check_payment_offer(outcome: Outcome, ctx: Context) -> None:
    """Only the methods offered get buttons and actions, only for orders still payable, and
    the summary's price is said in exactly the currencies offered."""
    offered = {"card": ctx.card_enabled, "usdc": ctx.usdc_enabled}
    offered["stars"] = ctx.stars_price is not None
    for data in harvest(outcome):
        if data.startswith("pay:"):
            assert offered[data.split(":")[1]], data
    said = [] if ctx.stars_price is None else [f"{ctx.stars_price} ⭐"]
    money = ctx.card_enabled or ctx.usdc_enabled or not said
    if money:
        said.append("10.00 USD")
    price = " or ".join(said) + (" per traveller" if ctx.per_traveller else "")
    for reply in outcome.replies:
        if not isinstance(reply, SendText):
            continue
        # /help's cost, the greeting's price
        for marker in ("flight durations. It costs ", "flights you tell me, for "):
            _, found, rest = reply.text.partition(marker)
            if found:
                assert rest.startswith(price) and not rest[len(price) :].startswith(" or "), rest
        # the summary's price line: a total in each currency offered, and only in those
        _, found, rest = reply.text.partition("\nPrice: ")
        if found:
            line = rest.partition(" · Order ")[0]
            assert ("⭐" in line) == (ctx.stars_price is not None), line
            assert ("USD" in line) == money, line
    statuses = {o.reference: o.status for o in ctx.orders}
    for action in outcome.actions:
        method = {PayByCard: "card", PayWithUsdc: "usdc", PayWithStars: "stars"}.get(type(action))
        if method is not None:
            assert offered[method], action
            status = statuses.get(getattr(action, "reference", ""))
            assert status in (None, OrderStatus.AWAITING_PAYMENT), (action, status)


def random_event(data: st.DataObject, n: int, latest: list[str], harvested: list[str]) -> Event:
    kind = data.draw(st.sampled_from(["text", "command", "other", "press", "press", "garbage"]))
    if kind == "text":
        return TextMessage(data.draw(texts_st))
    if kind == "command":
        return data.draw(commands_st)
    if kind == "other":
        return data.draw(others_st)
    if kind == "press" and latest and data.draw(st.booleans()):
        press_data = data.draw(st.sampled_from(latest))
    elif kind == "press" and harvested:
        press_data = data.draw(st.sampled_from(harvested[-30:]))
    else:
        press_data = data.draw(garbage_data_st)
    return ButtonPress(press_data, f"cb{n}", data.draw(st.none() | st.just(n)))


@pytest.mark.slow
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), trip=trips())
def test_random_conversations_stay_within_limits(data: st.DataObject, trip: Trip) -> None:
    state: str | None = None
    harvested: list[str] = []
    latest: list[str] = []
    orders: dict[str, tuple[Itinerary, OrderStatus]] = {}
    whole = len(trip.events)
    prefix = data.draw(st.one_of(st.integers(0, whole), st.just(whole)), label="prefix")
    events: list[Event] = list(trip.events[:prefix])
    for n in range(prefix + data.draw(st.integers(5, 30), label="random events")):
        if n >= len(events):
            events.append(random_event(data, n, latest, harvested))
        event = events[n]
        for reference, (itinerary, _) in orders.items():
            status = data.draw(st.sampled_from(OrderStatus), label="status")
            orders[reference] = (itinerary, status)
        ctx = Context(
            now=NOW,
            price=Decimal("10.00"),
            currency="USD",
            new_reference=f"IB-{n:06d}",
            orders=tuple(
                Order(i, ref, 42, it, Decimal("10.00"), "USD", status, NOW)
                for i, (ref, (it, status)) in enumerate(reversed(orders.items()))
            ),
            card_enabled=data.draw(st.booleans(), label="card"),
            usdc_enabled=data.draw(st.booleans(), label="usdc"),
            stars_price=data.draw(st.none() | st.integers(1, 11_111), label="stars price"),
            per_traveller=data.draw(st.booleans(), label="per traveller"),
            trips=TripRules(max_flights=data.draw(st.integers(1, 16), label="max flights")),
        )
        outcome = step(state, event, ctx)
        check_outcome(event, state, outcome, ctx)
        for action in outcome.actions:
            if isinstance(action, CreateOrder):
                orders[action.reference] = (action.itinerary, OrderStatus.AWAITING_PAYMENT)
        fresh = harvest(outcome)
        if fresh:
            latest = fresh
            harvested += fresh
        state = outcome.state
        hypothesis.event(f"at {current_question(state)}")
        if isinstance(event, ButtonPress):
            hypothesis.event("press " + ("stale" if len(outcome.replies) == 1 else "taken"))


@settings(max_examples=300, deadline=None)
@given(state=st.one_of(st.none(), st.text(max_size=300), st.from_regex(r'\{"v":1.*\}')))
def test_any_stored_state_is_survived(state: str | None) -> None:
    ctx = Context(now=NOW, price=Decimal("10.00"), currency="USD", new_reference="IB-000001")
    for event in (
        TextMessage("LH 401"),
        ButtonPress("1:sum:edit", "cb", 1),
        CommandMessage("status"),
    ):
        outcome = step(state, event, ctx)
        check_outcome(event, state, outcome, ctx)


@settings(max_examples=150, deadline=None)
@given(trip=trips(), per_traveller=st.booleans())
def test_any_trip_shape_reaches_the_summary_as_typed(trip: Trip, per_traveller: bool) -> None:
    """Whatever the shape (travellers, connections, legs), the order holds the trip typed."""
    ctx = Context(
        now=NOW,
        price=Decimal("10.00"),
        currency="USD",
        new_reference="IB-000001",
        per_traveller=per_traveller,
    )
    state: str | None = None
    made: list[CreateOrder] = []
    for event in trip.events:
        outcome = step(state, event, ctx)
        check_outcome(event, state, outcome, ctx)
        made += [a for a in outcome.actions if isinstance(a, CreateOrder)]
        state = outcome.state
    assert current_question(state) == "summary", state
    (order,) = made
    itinerary = order.itinerary
    assert len(itinerary.passengers) == trip.travellers
    assert [len(leg) for leg in itinerary.legs] == trip.legs
    route = [f.origin.iata for f in itinerary.flights] + [itinerary.flights[-1].destination.iata]
    assert route == trip.route
    assert order.quantity == (trip.travellers if per_traveller else 1)
