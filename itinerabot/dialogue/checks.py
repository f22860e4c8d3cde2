"""Whether the answers of a draft fit together, and which question needs asking next.

Each answer is checked against the ones before it, so an edit only re-asks what it invalidates.
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from itinerabot.dialogue import texts, validate
from itinerabot.dialogue.draft import Draft, FlightDraft, answer_of, questions, split_key
from itinerabot.dialogue.types import Context
from itinerabot.models import Airport


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


def local_today(ctx: Context, airport: Airport) -> date:
    """Today's date at `airport`."""
    return ctx.now.astimezone(ZoneInfo(airport.tz)).date()


def problem(draft: Draft, key: str, ctx: Context) -> str | None:
    """Why the answer to `key` does not fit the answers before it, or None."""
    if key in ("name", "trip"):
        return None
    index, name = split_key(key)
    flight = draft.flights[index]
    same = flight.origin and flight.destination and flight.origin.iata == flight.destination.iata
    if name == "destination" and same and flight.origin:
        return texts.same_airport(ctx.texts, flight.origin)
    if name == "date" and flight.date and flight.origin:
        invalid = validate.check_date(flight.date, today=local_today(ctx, flight.origin))
        if invalid:
            return invalid.say(ctx.texts)
        landed = _outbound_landing(draft) if index == 1 else None
        latest = datetime.combine(flight.date, time(23, 59))
        if landed and validate.aware(latest, flight.origin.tz) < landed:
            return texts.return_date_before_outbound(ctx.texts, flight.date, landed)
    if name == "departure" and flight.origin:
        departed = departure(flight)
        if departed is None:
            return None
        invalid = validate.check_departure(departed, flight.origin.tz, now=ctx.now)
        landed = _outbound_landing(draft) if index == 1 else None
        if invalid is None and landed:
            invalid = validate.check_return_after_outbound(
                validate.aware(departed, flight.origin.tz), landed
            )
        return invalid.say(ctx.texts) if invalid else None
    if name == "arrival":
        arrived = arrival(flight)
        return arrived.say(ctx.texts) if isinstance(arrived, validate.Invalid) else None
    return None


def _outbound_landing(draft: Draft) -> datetime | None:
    arrived = arrival(draft.flights[0])
    destination = draft.flights[0].destination
    if not isinstance(arrived, validate.Arrival) or destination is None:
        return None
    return validate.aware(arrived.local, destination.tz)


def next_question(draft: Draft, ctx: Context) -> tuple[str, str | None] | None:
    """The first question without a fitting answer, with the reason if it has an unfitting one."""
    for key in questions(draft):
        if answer_of(draft, key) is None:
            return key, None
        found = problem(draft, key, ctx)
        if found:
            return key, found
    return None
