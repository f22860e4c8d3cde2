"""Every sentence the dialogue sends: prompts, answers to mistakes, the summary, help and status.

Plain text (no parse mode). Functions here only format; they decide nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from itinerabot.models import Airport, Flight, Order, OrderStatus

MAX_TEXT = 4096
_UTC = ZoneInfo("UTC")
# Spelled out rather than strftime's %a/%b, which follow the process locale.
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# ---------------------------------------------------------------- formatting


def day(d: date) -> str:
    """`Thu 24 Dec 2026`."""
    return f"{_WEEKDAYS[d.weekday()]} {d.day} {_MONTHS[d.month - 1]} {d.year}"


def utc_offset(moment: datetime) -> str:
    """`UTC+01:00`, `UTC−05:00`, `UTC+05:45` for an aware datetime."""
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "−"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def local_moment(moment: datetime) -> str:
    """`Thu 24 Dec 2026, 14:05 (UTC+01:00)` for an aware datetime."""
    return f"{day(moment.date())}, {moment:%H:%M} ({utc_offset(moment)})"


def utc_moment(moment: datetime) -> str:
    """`14:05 UTC on 24 Dec` for an aware datetime."""
    at = moment.astimezone(_UTC)
    return f"{at:%H:%M} UTC on {at.day} {_MONTHS[at.month - 1]}"


def duration(span: timedelta) -> str:
    """`8 h 25 min`."""
    minutes = int(span.total_seconds()) // 60
    hours, rest = divmod(abs(minutes), 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"


def airport(a: Airport) -> str:
    """`FRA · Frankfurt am Main International Airport, Frankfurt am Main (DE)`."""
    place = "" if a.city.casefold() in a.name.casefold() else f", {a.city}"
    country = f" ({a.country})" if a.country else ""
    return f"{a.iata} · {a.name}{place}{country}"


def airport_button(a: Airport) -> str:
    """A short button label: `LHR · London Heathrow Airport (GB)`."""
    label = f"{a.iata} · {a.name}" + (f" ({a.country})" if a.country else "")
    return label if len(label) <= 60 else label[:59] + "…"


def day_note(offset: int) -> str:
    """How the arrival day relates to the departure day, or "" for the same day."""
    return {
        -1: "the previous day by the local calendar (the flight crosses the date line)",
        0: "",
        1: "the next day",
        2: "two days later",
    }.get(offset, f"{offset:+d} days")


def money(amount: Decimal, currency: str) -> str:
    return f"{amount:.2f} {currency}"


def clip(text: str) -> str:
    """`text` cut to Telegram's message limit."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


# ---------------------------------------------------------------- greeting, help, commands

COMMANDS = (
    ("start", "make a new itinerary"),
    ("help", "how this works"),
    ("cancel", "drop the itinerary you are making"),
    ("status", "where your current itinerary stands"),
    ("orders", "your past orders, with their PDFs"),
)


def greeting(price: Decimal, currency: str) -> str:
    return (
        "Hello! I make a PDF itinerary of the flights you tell me, for "
        f"{money(price, currency)}.\n"
        "It lists your flights; it is not an airline ticket or a reservation.\n"
        "I'll ask one thing at a time. /cancel stops at any point, /help explains more."
    )


def help_text(price: Decimal, currency: str) -> str:
    commands = "\n".join(f"/{name} – {what}" for name, what in COMMANDS)
    return (
        "I turn the flights you enter into a neat PDF itinerary: passenger name, flight numbers, "
        "airports, local times and flight durations. It costs "
        f"{money(price, currency)}, paid by card or in USDC.\n\n"
        "The PDF is an itinerary of the flights you entered. It is not an airline ticket or a "
        "reservation: no seat is booked and no airline is involved.\n\n"
        f"{commands}"
    )


def unknown_command(name: str) -> str:
    commands = " ".join(f"/{n}" for n, _ in COMMANDS)
    return f"I don't know the command /{name[:40]}. I understand: {commands}."


NOTHING_TO_CANCEL = "There is nothing to cancel. /start makes a new itinerary."
DRAFT_DROPPED = "Done: I dropped the itinerary you were making. /start makes a new one."


def order_cancelled(reference: str) -> str:
    return f"Order {reference} is cancelled; nothing will be charged for it."


def order_kept_paid(reference: str) -> str:
    return f"Order {reference} is already paid, so it stays as it is and its PDF is yours."


def order_still_payable(reference: str) -> str:
    return f"Your earlier order {reference} still waits for payment; its pay buttons still work."


INTERNAL_ERROR = "Sorry, something went wrong on my side. Send /start to begin again."

# ---------------------------------------------------------------- prompts

NAME_RULES = (
    "Type the passenger name exactly as in the passport, 2 to 60 characters: Latin letters A–Z, "
    "spaces, hyphens (-) and apostrophes ('), e.g. JANE MARY DOE or SEAN O'NEILL."
)
ASK_NAME = "Passenger name, as in the passport (Latin letters A–Z, spaces, - and '):"
ASK_TRIP = "One-way or return?"
TRIP_ONE_WAY = "One-way"
TRIP_RETURN = "Return"
TRIP_RULES = "Press One-way or Return below (or type one-way or return)."


def flight_label(index: int, return_trip: bool) -> str:
    if not return_trip:
        return "Flight"
    return "Outbound flight" if index == 0 else "Return flight"


def ask_origin(label: str) -> str:
    return (
        f"{label} – departure airport? Type a city, an airport name or a 3-letter IATA code "
        "(e.g. Frankfurt, Heathrow, JFK)."
    )


def ask_destination(label: str, origin: Airport) -> str:
    return f"{label} from {origin.iata} – arrival airport? A city, an airport name or a code."


def ask_number(label: str, origin: Airport, destination: Airport) -> str:
    return (
        f"{label} {origin.iata} → {destination.iata} – flight number? "
        "Airline code and 1–4 digits, e.g. LH 401 or BA2490."
    )


def ask_date(label: str, origin: Airport, example: date) -> str:
    spelled = f"{example.day} {_MONTHS[example.month - 1]} {example.year}"
    return (
        f"{label} – departure date (local at {origin.iata})? "
        f"E.g. {spelled}, {example:%d.%m.%Y} or {example.isoformat()}."
    )


def ask_departure(label: str, origin: Airport, when: date) -> str:
    return (
        f"{label} – departure time on {day(when)}, local time at {origin.iata}? "
        "E.g. 14:05, 1405 or 2:05pm."
    )


def ask_arrival(label: str, destination: Airport) -> str:
    return (
        f"{label} – arrival time, local time at {destination.iata}? E.g. 17:40. "
        "If it lands on the next day, add +1 (e.g. 07:30 +1)."
    )


def currently(value: str) -> str:
    return f"Now: {value}. Type a new answer to change it."


RETURN_ORIGIN_HINT = "Or pick the airport you flew to:"
RETURN_DESTINATION_HINT = "Or pick the airport you started from:"

# ---------------------------------------------------------------- answers and acknowledgements


def ack_passenger(name: str) -> str:
    return f"Passenger: {name}"


def ack_trip(return_trip: bool) -> str:
    return "Return trip." if return_trip else "One-way trip."


def ack_airport(role: str, a: Airport, others: Sequence[Airport]) -> str:
    text = f"{role}: {airport(a)}"
    if others:
        listed = ", ".join(f"{o.iata} ({o.name})" for o in others[:3])
        text += f"\n(Also matching: {listed}. Not this one? Use Edit on the summary.)"
    return text


def ack_number(number: str) -> str:
    return f"Flight number: {number}"


def ack_date(when: date) -> str:
    return f"Date: {day(when)}"


def ack_departure(moment: datetime) -> str:
    return f"Departs: {local_moment(moment)}"


def ack_arrival(moment: datetime, offset: int, inferred: bool, took: timedelta) -> str:
    text = f"Arrives: {local_moment(moment)}"
    if offset:
        text += f" – {day_note(offset)}"
    text += f". Flight time {duration(took)}."
    if inferred:
        text += " If that day is wrong, change it with Edit on the summary (add +1, +2 or -1)."
    return text


def several_airports(query: str, total: int, shown: int) -> str:
    more = (
        f" (showing {shown} of {total}; type more of the name to narrow it)"
        if total > shown
        else ""
    )
    return f"Several airports match “{query[:60]}”{more}. Pick one, or type its 3-letter code:"


def no_airport(query: str, has_suggestions: bool) -> str:
    text = f"I found no airport for “{query[:60]}”."
    if has_suggestions:
        return text + " Did you mean one of these? Or type another city, name or code."
    return text + " Type a city, an airport name or a 3-letter IATA code, e.g. Paris or CDG."


def same_airport(a: Airport) -> str:
    return f"The flight can't land where it took off ({a.iata}). Type the arrival airport."


def text_too_long(length: int, limit: int) -> str:
    return f"That's {length} characters; answers here are at most {limit}. Please send it shorter."


def not_text(kind: str, hint: str) -> str:
    what = " ".join(re.sub(r"[^a-z]+", " ", kind.casefold()).split())[:30] or "message"
    return f"I can only read text here, so I can't use this {what}. {hint}"


CHANGE_DATE = "Change the date"

HINTS = {
    "name": "Please type the passenger name as in the passport.",
    "trip": "Please press One-way or Return.",
    "origin": "Please type the departure airport: a city, an airport name or a code.",
    "destination": "Please type the arrival airport: a city, an airport name or a code.",
    "number": "Please type the flight number, e.g. LH 401.",
    "date": "Please type the departure date, e.g. 24 Dec 2026.",
    "departure": "Please type the local departure time, e.g. 14:05.",
    "arrival": "Please type the local arrival time, e.g. 17:40 (add +1 for the next day).",
}

# ---------------------------------------------------------------- validation messages


def name_bad_characters(bad: Sequence[str], suggestion: str | None) -> str:
    shown = " ".join(bad[:10])
    text = (
        f"The name can't contain {shown}. Passports print names in Latin letters A–Z only, "
        "with spaces, hyphens (-) and apostrophes (')."
    )
    if suggestion:
        text += f" Without accents it would be: {suggestion}"
    return text


def name_bad_length(length: int, low: int, high: int) -> str:
    return f"The name has {length} characters; it must have {low} to {high}."


NAME_PUNCTUATION = (
    "Each part of the name must start with a letter; hyphens and apostrophes go between letters, "
    "e.g. ANNE-MARIE O'NEILL."
)


def flight_number_invalid(text: str) -> str:
    return (
        f"“{text[:40]}” is not a flight number. Type the airline code (2 letters/digits like LH, "
        "U2, or 3 letters like DLH) and 1–4 digits, optionally one letter after: LH 401, BA2490."
    )


def date_unreadable(text: str) -> str:
    return (
        f"I couldn't read “{text[:40]}” as a date. Type day, month and year, e.g. 24 Dec 2026, "
        "24.12.2026 (day first) or 2026-12-24."
    )


def date_not_a_day(text: str) -> str:
    return f"“{text[:40]}” is not a day in the calendar. Check the day and month."


def date_in_past(when: date, today: date, last: date) -> str:
    return (
        f"{day(when)} is in the past (today is {day(today)} there). "
        f"Type a date from today up to {day(last)}."
    )


def date_too_far(when: date, last: date) -> str:
    return f"{day(when)} is more than a year ahead. Type a date up to {day(last)}."


def time_unreadable(text: str) -> str:
    return (
        f"I couldn't read “{text[:40]}” as a time. Type it as 24-hour HH:MM (14:05 or 1405) "
        "or with am/pm (2:05pm)."
    )


def arrival_unreadable(text: str) -> str:
    return (
        f"I couldn't read “{text[:40]}” as a time. Type it as 24-hour HH:MM (17:40) or with "
        "am/pm (5:40pm), and add +1 if it lands the next day (07:30 +1)."
    )


ARRIVAL_OFFSET_RANGE = (
    "The day after the time can be +1 or +2 (later days) or -1 (the previous local day, when "
    "flying east over the date line), e.g. 07:30 +1."
)


def time_skipped(local: datetime, tz: str) -> str:
    return (
        f"{local:%H:%M} doesn't exist on {day(local.date())} in {tz}: the clocks jump forward "
        "that night. Check the time."
    )


def departure_in_past(local: datetime, now_local: datetime) -> str:
    return (
        f"{day(local.date())} at {local:%H:%M} has already passed there (it is now "
        f"{now_local:%H:%M} local time). Type a later time."
    )


def arrival_before_departure(took_off: datetime, landed: datetime) -> str:
    return (
        f"That arrival ({local_moment(landed)}, i.e. {utc_moment(landed)}) is "
        f"{duration(took_off - landed)} before the departure ({utc_moment(took_off)}) in "
        "absolute time, so the flight would land before it took off. Check the time; add +1 "
        "if it lands the next local day, or -1 if it lands the previous local day (flying east "
        "over the date line)."
    )


def flight_too_short(took: timedelta, least: timedelta) -> str:
    return (
        f"That makes the flight {duration(took)} long; a flight takes at least "
        f"{duration(least)}. Check the arrival time."
    )


def flight_too_long(took_off: datetime, landed: datetime, most: timedelta) -> str:
    return (
        f"That makes the flight {duration(landed - took_off)} long (departure "
        f"{utc_moment(took_off)}, arrival {utc_moment(landed)}); I accept flights up to "
        f"{duration(most)}. Check the time, and the day: +1, +2 or -1 after the time."
    )


def return_date_before_outbound(when: date, outbound_arrival: datetime) -> str:
    return (
        f"The return can't be on {day(when)}: the outbound flight lands "
        f"{local_moment(outbound_arrival)}. Type a date on or after its arrival."
    )


def return_before_outbound(departure: datetime, outbound_arrival: datetime) -> str:
    return (
        f"The return would depart {local_moment(departure)}, before the outbound flight lands "
        f"({local_moment(outbound_arrival)}; {utc_moment(outbound_arrival)}). The return must "
        "depart after the outbound arrives."
    )


# ---------------------------------------------------------------- summary, status, orders

ITINERARY_NOT_TICKET = (
    "The PDF is an itinerary of the flights you entered. It is not an airline ticket or a "
    "reservation: no seat is booked and no airline is involved."
)
PAY_CARD = "Pay by card"
PAY_USDC = "Pay with USDC"
EDIT = "Edit"
CANCEL = "Cancel"
BACK_TO_SUMMARY = "Back to the summary"
NO_PAYMENT_METHOD = "Payment is not available at the moment; please try again later."
EDIT_WHAT = "What would you like to change?"
FIELD_LABELS = {
    "name": "Passenger name",
    "trip": "One-way / return",
    "origin": "from",
    "destination": "to",
    "number": "flight number",
    "date": "date",
    "departure": "departure time",
    "arrival": "arrival time",
}


def edit_label(field: str, flight: str | None) -> str:
    label = FIELD_LABELS[field]
    return f"{flight}: {label}" if flight else label


def summary(
    passenger: str,
    flights: Sequence[tuple[str, Flight, int]],
    price: Decimal,
    currency: str,
    reference: str,
) -> str:
    """The whole itinerary for a last check: `flights` holds (label, flight, arrival day offset)."""
    parts = ["Please check your itinerary.", "", f"Passenger: {passenger}"]
    for label, flight, offset in flights:
        arrives = local_moment(flight.arrival_aware)
        if offset:
            arrives += f" – {day_note(offset)}"
        parts += [
            "",
            f"{label} {flight.flight_number}",
            f"From: {airport(flight.origin)}",
            f"Departs: {local_moment(flight.departure_aware)}",
            f"To: {airport(flight.destination)}",
            f"Arrives: {arrives}",
            f"Flight time: {duration(flight.duration)}",
        ]
    parts += [
        "",
        f"Price: {money(price, currency)} · Order {reference}",
        "",
        ITINERARY_NOT_TICKET,
    ]
    return clip("\n".join(parts))


SUMMARY_HINT = "Use the buttons under the summary: pay, edit or cancel."
EDIT_HINT = "Pick the field to change with the buttons above."
IDLE_HINT = "Send /start to make a new itinerary, or /help to learn more."
STALE = "That step is already done."
ALREADY_PAID = "This order is already paid."
ORDER_WAS_CANCELLED = "This order was cancelled. /start makes a new one."
ORDER_UNKNOWN = "I can't find that order."
CARD_OFF = "Card payment is not available at the moment."
USDC_OFF = "USDC payment is not available at the moment."
NOT_PAID_NO_PDF = "That order isn't paid, so there is no PDF to send."
SENDING_PDF = "Sending the PDF again…"

STATUS_WORDS = {
    OrderStatus.AWAITING_PAYMENT: "waiting for payment",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.PAID: "paid, PDF on its way",
    OrderStatus.DELIVERED: "paid, PDF sent",
    OrderStatus.DELIVERY_FAILED: "paid, sending the PDF failed (/orders to ask for it again)",
}


def route(order: Order) -> str:
    flights = order.itinerary.flights
    if not flights:
        return "—"
    codes = [flights[0].origin.iata, *(f.destination.iata for f in flights)]
    return " → ".join(codes) + f", {day(flights[0].departure_local.date())}"


def order_line(order: Order) -> str:
    return f"{order.reference} · {route(order)} · {STATUS_WORDS.get(order.status, order.status)}"


QUESTIONS = {
    "name": "the passenger name",
    "trip": "one-way or return",
    "origin": "the departure airport",
    "destination": "the arrival airport",
    "number": "the flight number",
    "date": "the departure date",
    "departure": "the departure time",
    "arrival": "the arrival time",
}


def status_in_progress(answered: int, total: int, question: str) -> str:
    return (
        f"You are making an itinerary: {answered} of {total} answers given. "
        f"Waiting for: {question}. /cancel drops it."
    )


def status_summary(reference: str, order: Order | None) -> str:
    if order is None:
        return f"Your itinerary is ready as order {reference}; use the buttons under the summary."
    state = STATUS_WORDS.get(order.status, order.status)
    text = f"Order {reference} ({route(order)}): {state}."
    if order.status is OrderStatus.AWAITING_PAYMENT:
        text += " Pay with the buttons under the summary."
    return text


STATUS_EDITING = "You are changing your itinerary: pick a field with the buttons above."
STATUS_IDLE = "No itinerary in progress. /start makes a new one."


def status_latest(order: Order) -> str:
    return f"Your latest order: {order_line(order)}."


NO_ORDERS = "You have no orders yet. /start makes a new itinerary."


def orders_list(lines: Sequence[str], total: int) -> str:
    head = (
        "Your orders, newest first:"
        if total <= len(lines)
        else (f"Your latest {len(lines)} of {total} orders, newest first:")
    )
    return clip("\n".join([head, *lines, "", "Paid orders have a button to send the PDF again."]))


def pdf_button(reference: str) -> str:
    return f"PDF {reference}"
