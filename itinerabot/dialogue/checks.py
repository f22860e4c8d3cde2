"""Whether the answers of a draft fit together, and which question needs asking next.

Each answer is checked against the ones before it, so an edit only re-asks what it invalidates.
A flight after another departs after it lands, at least the minimum connection time later; a
connection departs within 24 h from the airport the flight before landed at.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from itinerabot.dialogue import texts, validate
from itinerabot.dialogue.draft import Draft, FlightDraft, answer_of, questions, split_key
from itinerabot.dialogue.types import Context
from itinerabot.models import Airport, elapsed

#: a stop longer than this is the next leg, never a connection (the sentences say 24 hours)
MAX_CONNECTION = timedelta(hours=24)


def departure(flight: FlightDraft) -> datetime | None:
    """The flight's local departure, once its date and time are answered."""
    if flight.date is None or flight.departure is None:
        return None
    return datetime.combine(flight.date, flight.departure)


def arrival(flight: FlightDraft) -> validate.Arrival | validate.Invalid | None:
    """The flight's arrival resolved against its departure, once everything it needs is answered."""
    departed = departure(flight)
    if departed is None or flight.arrival is None or not flight.origin or not flight.destination:
        return None
    answer = validate.ArrivalInput(flight.arrival, flight.arrival_offset)
    return validate.resolve_arrival(departed, flight.origin.tz, answer, flight.destination.tz)


def landing(flight: FlightDraft) -> datetime | None:
    """When the flight lands (aware, at its destination), once that is known and valid."""
    arrived = arrival(flight)
    if not isinstance(arrived, validate.Arrival) or flight.destination is None:
        return None
    return validate.aware(arrived.local, flight.destination.tz)


def local_today(ctx: Context, airport: Airport) -> date:
    """Today's date at `airport`."""
    return ctx.now.astimezone(ZoneInfo(airport.tz)).date()


def problem(draft: Draft, key: str, ctx: Context) -> str | None:
    """Why the answer to `key` does not fit the answers before it, or None."""
    if key.startswith("name.") or "." not in key:
        return None
    index, name = split_key(key)
    flight = draft.flights[index]
    t = ctx.texts
    same = flight.origin and flight.destination and flight.origin.iata == flight.destination.iata
    if name == "destination" and same and flight.origin:
        return texts.same_airport(t, flight.origin)
    # only the date and the departure depend on the flight before: resolve its landing for them
    before = index and name in ("date", "departure")
    landed = landing(draft.flights[index - 1]) if before else None
    if name == "date" and flight.date and flight.origin:
        invalid = validate.check_date(flight.date, today=local_today(ctx, flight.origin))
        if invalid:
            return invalid.say(t)
        if landed is None:
            return None
        first = validate.aware(datetime.combine(flight.date, time(0, 0)), flight.origin.tz)
        last = validate.aware(datetime.combine(flight.date, time(23, 59)), flight.origin.tz)
        if elapsed(landed, last) < timedelta(0):
            return texts.date_before_landing(t, flight.date, landed)
        if flight.connection and elapsed(landed, first) > MAX_CONNECTION:
            return texts.connection_day_too_late(t, flight.date, landed)
    if name == "departure" and flight.origin:
        departed = departure(flight)
        if departed is None:
            return None
        invalid = validate.check_departure(departed, flight.origin.tz, now=ctx.now)
        if invalid:
            return invalid.say(t)
        if landed is None:
            return None
        return _gap_problem(ctx, flight, validate.aware(departed, flight.origin.tz), landed)
    if name == "arrival":
        arrived = arrival(flight)
        return arrived.say(t) if isinstance(arrived, validate.Invalid) else None
    return None


def _gap_problem(
    ctx: Context, flight: FlightDraft, departs: datetime, landed: datetime
) -> str | None:
    """Why a flight departing at `departs` cannot follow one that landed at `landed`, or None."""
    t, gap = ctx.texts, elapsed(landed, departs)
    if gap < timedelta(0):
        return texts.departs_before_landing(t, departs, landed)
    if gap < ctx.trips.min_connection:
        return texts.connection_too_short(t, gap, ctx.trips.min_connection)
    if flight.connection and gap > MAX_CONNECTION:
        return texts.connection_too_long(t, gap)
    return None


def next_question(draft: Draft, ctx: Context) -> tuple[str, str | None] | None:
    """The first question without a fitting answer, with the reason if it has an unfitting one."""
    for key in questions(draft):
        if answer_of(draft, key) is None:
            return key, None
        found = problem(draft, key, ctx)
        if found:
            return key, found
    return None
