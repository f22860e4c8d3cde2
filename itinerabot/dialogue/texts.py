"""Every sentence the dialogue sends: prompts, answers to mistakes, the summary, help and status.

Plain text (no parse mode), in the chat's language `t`. Functions here only format; they decide
nothing. Constants are English msgids marked with `N_`, translated where they are used.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from itinerabot.dialogue.types import Context
from itinerabot.i18n import LANGUAGES, N_, Texts, english
from itinerabot.models import (
    Airport,
    Flight,
    Itinerary,
    Order,
    OrderStatus,
    TripShape,
    elapsed,
    layover,
    stops,
)

MAX_TEXT = 4096
_UTC = ZoneInfo("UTC")

# ---------------------------------------------------------------- formatting


def day(t: Texts, d: date) -> str:
    """`Thu 24 Dec 2026`."""
    # Names from the catalogue's locale data rather than strftime's, which follow the process.
    return f"{t.weekday(d.weekday())} {d.day} {t.month(d.month)} {d.year}"


def utc_offset(moment: datetime) -> str:
    """`UTC+01:00`, `UTC−05:00`, `UTC+05:45` for an aware datetime."""
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "−"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def local_moment(t: Texts, moment: datetime) -> str:
    """`Thu 24 Dec 2026, 14:05 (UTC+01:00)` for an aware datetime."""
    return f"{day(t, moment.date())}, {moment:%H:%M} ({utc_offset(moment)})"


def utc_moment(t: Texts, moment: datetime) -> str:
    """`14:05 UTC on 24 Dec` for an aware datetime."""
    at = moment.astimezone(_UTC)
    return t.gettext(
        "{time} UTC on {day} {month}", time=f"{at:%H:%M}", day=at.day, month=t.month(at.month)
    )


def duration(t: Texts, span: timedelta) -> str:
    """`8 h 25 min`."""
    minutes = int(span.total_seconds()) // 60
    hours, rest = divmod(abs(minutes), 60)
    if hours:
        return t.gettext("{hours} h {minutes} min", hours=hours, minutes=f"{rest:02d}")
    return t.gettext("{minutes} min", minutes=rest)


def airport(a: Airport) -> str:
    """`FRA · Frankfurt am Main International Airport, Frankfurt am Main (DE)`."""
    place = "" if a.city.casefold() in a.name.casefold() else f", {a.city}"
    country = f" ({a.country})" if a.country else ""
    return f"{a.iata} · {a.name}{place}{country}"


def airport_button(a: Airport) -> str:
    """A short button label: `LHR · London Heathrow Airport (GB)`."""
    label = f"{a.iata} · {a.name}" + (f" ({a.country})" if a.country else "")
    return label if len(label) <= 60 else label[:59] + "…"


def day_note(t: Texts, offset: int) -> str:
    """How the arrival day relates to the departure day, or "" for the same day."""
    if offset == 0:
        return ""
    if offset == -1:
        return t.gettext(
            "the previous day by the local calendar (the flight crosses the date line)"
        )
    if offset == 1:
        return t.gettext("the next day")
    if offset == 2:
        return t.gettext("two days later")
    return t.ngettext("{offset} day", "{offset} days", abs(offset), offset=f"{offset:+d}")


def money(amount: Decimal, currency: str) -> str:
    return f"{amount:.2f} {currency}"


def offered_price(t: Texts, ctx: Context) -> str:
    """The price in each currency this chat is offered: `500 ⭐ or 10.00 USD`, `500 ⭐` (Stars
    alone), `10.00 USD` (card or USDC alone, or nothing offered); "per traveller" after it when
    the shop prices each traveller."""
    said = [] if ctx.stars_price is None else [f"{ctx.stars_price} ⭐"]
    if ctx.card_enabled or ctx.usdc_enabled or not said:
        said.append(money(ctx.price, ctx.currency))
    price = said[0]
    if len(said) == 2:
        price = t.gettext("{first} or {second}", first=said[0], second=said[1])
    return t.gettext("{price} per traveller", price=price) if ctx.per_traveller else price


def total_price(t: Texts, ctx: Context, units: int) -> str:
    """What an itinerary of `units` times the price costs: `offered_price` for one, else each
    currency's total with its sum: `1000 ⭐ (2 × 500 ⭐) or 20.00 USD (2 × 10.00 USD)`."""
    if units == 1:
        return offered_price(t, dataclasses.replace(ctx, per_traveller=False))
    said = (
        []
        if ctx.stars_price is None
        else [(f"{ctx.stars_price * units} ⭐", f"{ctx.stars_price} ⭐")]
    )
    if ctx.card_enabled or ctx.usdc_enabled or not said:
        said.append((money(ctx.price * units, ctx.currency), money(ctx.price, ctx.currency)))
    each = [f"{total} ({units} × {unit})" for total, unit in said]
    if len(each) == 1:
        return each[0]
    return t.gettext("{first} or {second}", first=each[0], second=each[1])


def clip(text: str) -> str:
    """`text` cut to Telegram's message limit."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


# ---------------------------------------------------------------- greeting, help, commands

#: (command, what it does) in English, for the bot's command menu
COMMANDS = (
    ("start", N_("make a new itinerary")),
    ("help", N_("how this works")),
    ("cancel", N_("drop the itinerary you are making")),
    ("status", N_("where your current itinerary stands")),
    ("orders", N_("your past orders, with their PDFs")),
    ("language", N_("choose the language I write in")),
)


def commands(t: Texts) -> list[tuple[str, str]]:
    """The command menu in the language of `t`."""
    return [(name, t.gettext(what)) for name, what in COMMANDS]


def greeting(t: Texts, ctx: Context) -> str:
    return t.gettext(
        "Hello! I make a PDF itinerary of the flights you tell me, for {price}.\n"
        "It lists your flights; it is not an airline ticket or a reservation.\n"
        "I'll ask one thing at a time. /cancel stops at any point, /help explains more.",
        price=offered_price(t, ctx),
    )


def help_text(t: Texts, ctx: Context) -> str:
    listed = "\n".join(f"/{name} – {what}" for name, what in commands(t))
    ways = ways_to_pay(t, ctx)
    if ways is None:
        cost = t.gettext("It costs {price}.", price=offered_price(t, ctx))
    else:
        cost = t.gettext("It costs {price}, paid {ways}.", price=offered_price(t, ctx), ways=ways)
    return t.gettext(
        "I turn the flights you enter into a neat PDF itinerary: up to {most} travellers, "
        "one-way, return or multi-city, with connections, airlines, airports, local times and "
        "flight durations. {cost}\n\n"
        "The PDF is an itinerary of the flights you entered. It is not an airline ticket or a "
        "reservation: no seat is booked and no airline is involved.\n\n"
        "{commands}",
        cost=cost,
        most=ctx.trips.max_travellers,
        commands=listed,
    )


PAID_IN_STARS = N_("in Telegram Stars")
PAID_BY_CARD = N_("by card")
PAID_IN_USDC = N_("in USDC")


def ways_to_pay(t: Texts, ctx: Context) -> str | None:
    """`in Telegram Stars, by card or in USDC`: the methods this chat is offered, in the
    order of their buttons; None when none is."""
    offered = (
        (PAID_IN_STARS, ctx.stars_price is not None),
        (PAID_BY_CARD, ctx.card_enabled),
        (PAID_IN_USDC, ctx.usdc_enabled),
    )
    ways = [t.gettext(way) for way, on in offered if on]
    if len(ways) < 2:
        return ways[0] if ways else None
    if len(ways) == 2:
        return t.gettext("{first} or {second}", first=ways[0], second=ways[1])
    return t.gettext("{first}, {second} or {third}", first=ways[0], second=ways[1], third=ways[2])


def unknown_command(t: Texts, name: str) -> str:
    listed = " ".join(f"/{n}" for n, _ in COMMANDS)
    return t.gettext(
        "I don't know the command /{name}. I understand: {commands}.",
        name=name[:40],
        commands=listed,
    )


NOTHING_TO_CANCEL = N_("There is nothing to cancel. /start makes a new itinerary.")
DRAFT_DROPPED = N_("Done: I dropped the itinerary you were making. /start makes a new one.")


def order_cancelled(t: Texts, reference: str) -> str:
    return t.gettext(
        "Order {reference} is cancelled; nothing will be charged for it.", reference=reference
    )


def order_kept_paid(t: Texts, reference: str) -> str:
    return t.gettext(
        "Order {reference} is already paid, so it stays as it is and its PDF is yours.",
        reference=reference,
    )


def order_still_payable(t: Texts, reference: str) -> str:
    return t.gettext(
        "Your earlier order {reference} still waits for payment; its pay buttons still work.",
        reference=reference,
    )


INTERNAL_ERROR = N_("Sorry, something went wrong on my side. Send /start to begin again.")

# ---------------------------------------------------------------- language

ASK_LANGUAGE = N_("Which language shall I write in? Tap one:")
LANGUAGE_SET = N_("From now on I write in English.")


def language_buttons() -> list[tuple[str, str]]:
    """(code, label) of each language, each named in itself."""
    return list(LANGUAGES.items())


# ---------------------------------------------------------------- prompts

NAME_RULES = N_(
    "Type the passenger name exactly as in the passport, 2 to 60 characters: Latin letters A–Z, "
    "spaces, hyphens (-) and apostrophes ('), e.g. JANE MARY DOE or SEAN O'NEILL."
)
ASK_NAME = N_("Passenger name, as in the passport (Latin letters A–Z, spaces, - and '):")


def ask_next_name(t: Texts, number: int) -> str:
    return t.gettext(
        "Traveller {number}: name as in the passport (Latin letters A–Z, spaces, - and '):",
        number=number,
    )


ASK_TRAVELLERS = N_(
    "Is anyone else travelling on this itinerary? Every traveller's name goes on the PDF."
)
ADD_TRAVELLER = N_("Add another traveller")
TRAVELLERS_DONE = N_("No, on to the flights")
TRAVELLERS_RULES = N_("Press Add another traveller, or No, on to the flights.")


def travellers_full(t: Texts, most: int) -> str:
    return t.gettext("That makes {most} travellers, the most one itinerary holds.", most=most)


def ask_more(t: Texts, label: str, destination: Airport, landed: datetime) -> str:
    return t.gettext(
        "{flight} lands at {airport} {moment}. What comes next?\n"
        "• a connecting flight from {airport}, on the same journey;\n"
        "• the next leg: a new journey, e.g. the return or the next city;\n"
        "• or nothing: the itinerary is complete.",
        flight=label,
        airport=destination.iata,
        moment=local_moment(t, landed),
    )


def add_connection(t: Texts, a: Airport) -> str:
    return t.gettext("Connecting flight from {airport}", airport=a.iata)


ADD_LEG = N_("Next leg")
FLIGHTS_DONE = N_("Done: show the summary")
MORE_RULES = N_("Press a button: a connecting flight, the next leg, or done.")


def flights_full(t: Texts, most: int) -> str:
    return t.gettext("That makes {most} flights, the most one itinerary holds.", most=most)


def too_many_flights(t: Texts, count: int, most: int) -> str:
    return t.gettext(
        "This itinerary has {count} flights, but one holds at most {most}. Remove a flight to "
        "go on.",
        count=count,
        most=most,
    )


def too_many_travellers(t: Texts, count: int, most: int) -> str:
    return t.gettext(
        "This itinerary has {count} travellers, but one holds at most {most}. Remove a "
        "traveller to go on.",
        count=count,
        most=most,
    )


def flight_label(t: Texts, index: int, count: int) -> str:
    """What the flight at `index` of `count` is called: "Flight", or "Flight 2"."""
    return t.gettext("Flight") if count == 1 else t.gettext("Flight {number}", number=index + 1)


def connection_label(t: Texts, label: str, via: Airport) -> str:
    return t.gettext("{flight} (connecting at {airport})", flight=label, airport=via.iata)


def ask_airline(t: Texts, label: str, number: str) -> str:
    return t.gettext(
        "{flight} {number}: I don't know the airline with the code {code}. What is the airline's "
        "name, as on your booking? (Latin letters, e.g. Air Example.) It is asked once for this "
        "code.",
        flight=label,
        number=number,
        code=number.partition(" ")[0],
    )


def ask_airline_again(t: Texts, label: str, number: str) -> str:
    return t.gettext(
        "{flight} {number}: which airline's name goes beside it, as on your booking? (Latin "
        "letters, e.g. Air Example.)",
        flight=label,
        number=number,
    )


SKIP_AIRLINE = N_("Skip: show the flight number only")
AIRLINE_RULES = N_(
    "Type the airline's name with Latin letters, digits, spaces and . & - ' ( ), 2 to 40 "
    "characters, e.g. Air Example."
)
AIRLINE_NOT_A_DATE = N_(
    "That looks like a date or a time, not an airline. Type the airline's name as on your "
    "booking, or press Skip."
)
SAME_DAY = N_("Same day, {day}")
NEXT_DAY = N_("Next day, {day}")
MAKE_NEW_LEG = N_("Make it the next leg")


def ask_origin(t: Texts, label: str) -> str:
    return t.gettext(
        "{flight} – departure airport? Type a city, an airport name or a 3-letter IATA code "
        "(e.g. Frankfurt, Heathrow, JFK).",
        flight=label,
    )


def ask_destination(t: Texts, label: str, origin: Airport) -> str:
    return t.gettext(
        "{flight} from {origin} – arrival airport? A city, an airport name or a code.",
        flight=label,
        origin=origin.iata,
    )


def ask_number(t: Texts, label: str, origin: Airport, destination: Airport) -> str:
    return t.gettext(
        "{flight} {origin} → {destination} – flight number? "
        "Airline code and 1–4 digits, e.g. LH 401 or BA2490.",
        flight=label,
        origin=origin.iata,
        destination=destination.iata,
    )


def ask_date(t: Texts, label: str, origin: Airport, example: date) -> str:
    return t.gettext(
        "{flight} – departure date (local at {origin})? E.g. {spelled}, {dotted} or {iso}.",
        flight=label,
        origin=origin.iata,
        # the date parser reads English month names only, so the example spells one
        spelled=f"{example.day} {english().month(example.month)} {example.year}",
        dotted=f"{example:%d.%m.%Y}",
        iso=example.isoformat(),
    )


def ask_departure(t: Texts, label: str, origin: Airport, when: date) -> str:
    return t.gettext(
        "{flight} – departure time on {day}, local time at {origin}? E.g. 14:05, 1405 or 2:05pm.",
        flight=label,
        day=day(t, when),
        origin=origin.iata,
    )


def ask_arrival(t: Texts, label: str, destination: Airport) -> str:
    return t.gettext(
        "{flight} – arrival time, local time at {destination}? E.g. 17:40. "
        "If it lands on the next day, add +1 (e.g. 07:30 +1).",
        flight=label,
        destination=destination.iata,
    )


def currently(t: Texts, value: str) -> str:
    return t.gettext("Now: {value}. Type a new answer to change it.", value=value)


RETURN_ORIGIN_HINT = N_("Or pick the airport you flew to:")
RETURN_DESTINATION_HINT = N_("Or pick the airport you started from:")

# ---------------------------------------------------------------- answers and acknowledgements


def ack_passenger(t: Texts, name: str) -> str:
    return t.gettext("Passenger: {name}", name=name)


def ack_travellers(t: Texts, count: int) -> str:
    return t.ngettext("{count} traveller.", "{count} travellers.", count, count=count)


def ack_airline(t: Texts, name: str) -> str:
    return t.gettext("Airline: {name}", name=name) if name else t.gettext("Airline: not given")


def flight_name(number: str, airline: str | None) -> str:
    """`LH 400 · Lufthansa`, or the number alone when the airline is not known."""
    return f"{number} · {airline}" if airline else number


def ack_airport(t: Texts, origin: bool, a: Airport, others: Sequence[Airport]) -> str:
    """`From: …` (or `To: …` when not `origin`), with other airports the search matched."""
    if origin:
        text = t.gettext("From: {airport}", airport=airport(a))
    else:
        text = t.gettext("To: {airport}", airport=airport(a))
    if others:
        listed = ", ".join(f"{o.iata} ({o.name})" for o in others[:3])
        text += "\n" + t.gettext(
            "(Also matching: {airports}. Not this one? Use Edit on the summary.)", airports=listed
        )
    return text


def ack_number(t: Texts, number: str, airline: str | None) -> str:
    return t.gettext("Flight number: {number}", number=flight_name(number, airline))


def ack_date(t: Texts, when: date) -> str:
    return t.gettext("Date: {day}", day=day(t, when))


def ack_departure(t: Texts, moment: datetime) -> str:
    return t.gettext("Departs: {moment}", moment=local_moment(t, moment))


def ack_arrival(t: Texts, moment: datetime, offset: int, inferred: bool, took: timedelta) -> str:
    arrives = local_moment(t, moment)
    if offset:
        arrives += f" – {day_note(t, offset)}"
    text = t.gettext(
        "Arrives: {moment}. Flight time {duration}.", moment=arrives, duration=duration(t, took)
    )
    if inferred:
        text += " " + t.gettext(
            "If that day is wrong, change it with Edit on the summary (add +1, +2 or -1)."
        )
    return text


def several_airports(t: Texts, query: str, total: int, shown: int) -> str:
    if total > shown:
        return t.gettext(
            "Several airports match “{query}” (showing {shown} of {total}; type more of the name "
            "to narrow it). Pick one, or type its 3-letter code:",
            query=query[:60],
            shown=shown,
            total=total,
        )
    return t.gettext(
        "Several airports match “{query}”. Pick one, or type its 3-letter code:", query=query[:60]
    )


def no_airport(t: Texts, query: str, has_suggestions: bool) -> str:
    text = t.gettext("I found no airport for “{query}”.", query=query[:60])
    if has_suggestions:
        return (
            text + " " + t.gettext("Did you mean one of these? Or type another city, name or code.")
        )
    return (
        text
        + " "
        + t.gettext("Type a city, an airport name or a 3-letter IATA code, e.g. Paris or CDG.")
    )


def same_airport(t: Texts, a: Airport) -> str:
    return t.gettext(
        "The flight can't land where it took off ({airport}). Type the arrival airport.",
        airport=a.iata,
    )


def text_too_long(t: Texts, length: int, limit: int) -> str:
    return t.ngettext(
        "That's {length} character; answers here are at most {limit}. Please send it shorter.",
        "That's {length} characters; answers here are at most {limit}. Please send it shorter.",
        length,
        length=length,
        limit=limit,
    )


def not_text(t: Texts, kind: str, hint: str) -> str:
    what = " ".join(re.sub(r"[^a-z]+", " ", kind.casefold()).split())[:30] or "message"
    return t.gettext(
        "I can only read text here, so I can't use this {what}. {hint}", what=what, hint=hint
    )


CHANGE_DATE = N_("Change the date")

HINTS = {
    "name": N_("Please type the passenger name as in the passport."),
    "travellers": TRAVELLERS_RULES,
    "more": MORE_RULES,
    "airline": N_("Please type the airline's name, e.g. Air Example."),
    "origin": N_("Please type the departure airport: a city, an airport name or a code."),
    "destination": N_("Please type the arrival airport: a city, an airport name or a code."),
    "number": N_("Please type the flight number, e.g. LH 401."),
    "date": N_("Please type the departure date, e.g. 24 Dec 2026."),
    "departure": N_("Please type the local departure time, e.g. 14:05."),
    "arrival": N_("Please type the local arrival time, e.g. 17:40 (add +1 for the next day)."),
}

# ---------------------------------------------------------------- validation messages


def name_bad_characters(t: Texts, bad: Sequence[str], suggestion: str | None) -> str:
    text = t.gettext(
        "The name can't contain {characters}. Passports print names in Latin letters A–Z only, "
        "with spaces, hyphens (-) and apostrophes (').",
        characters=" ".join(bad[:10]),
    )
    if suggestion:
        text += " " + t.gettext("Without accents it would be: {name}", name=suggestion)
    return text


def name_bad_length(t: Texts, length: int, low: int, high: int) -> str:
    return t.ngettext(
        "The name has {length} character; it must have {low} to {high}.",
        "The name has {length} characters; it must have {low} to {high}.",
        length,
        length=length,
        low=low,
        high=high,
    )


NAME_PUNCTUATION = N_(
    "Each part of the name must start with a letter; hyphens and apostrophes go between letters, "
    "e.g. ANNE-MARIE O'NEILL."
)


def quoting(t: Texts, msgid: str, text: str) -> str:
    """`msgid` (one of the answers below that quote what the traveller typed) in the language
    of `t`, with the first 40 characters of `text` as its {text}."""
    return t.gettext(msgid, text=text[:40])


FLIGHT_NUMBER_INVALID = N_(
    "“{text}” is not a flight number. Type the airline code (2 letters/digits like LH, "
    "U2, or 3 letters like DLH) and 1–4 digits, optionally one letter after: LH 401, BA2490."
)
DATE_UNREADABLE = N_(
    "I couldn't read “{text}” as a date. Type day, month and year, e.g. 24 Dec 2026, "
    "24.12.2026 (day first) or 2026-12-24."
)
DATE_NOT_A_DAY = N_("“{text}” is not a day in the calendar. Check the day and month.")
TIME_UNREADABLE = N_(
    "I couldn't read “{text}” as a time. Type it as 24-hour HH:MM (14:05 or 1405) "
    "or with am/pm (2:05pm)."
)
ARRIVAL_UNREADABLE = N_(
    "I couldn't read “{text}” as a time. Type it as 24-hour HH:MM (17:40) or with "
    "am/pm (5:40pm), and add +1 if it lands the next day (07:30 +1)."
)


def date_in_past(t: Texts, when: date, today: date, last: date) -> str:
    return t.gettext(
        "{day} is in the past (today is {today} there). Type a date from today up to {last}.",
        day=day(t, when),
        today=day(t, today),
        last=day(t, last),
    )


def date_too_far(t: Texts, when: date, last: date) -> str:
    return t.gettext(
        "{day} is more than a year ahead. Type a date up to {last}.",
        day=day(t, when),
        last=day(t, last),
    )


ARRIVAL_OFFSET_RANGE = N_(
    "The day after the time can be +1 or +2 (later days) or -1 (the previous local day, when "
    "flying east over the date line), e.g. 07:30 +1."
)


def time_skipped(t: Texts, local: datetime, tz: str) -> str:
    return t.gettext(
        "{time} doesn't exist on {day} in {zone}: the clocks jump forward that night. "
        "Check the time.",
        time=f"{local:%H:%M}",
        day=day(t, local.date()),
        zone=tz,
    )


def departure_in_past(t: Texts, local: datetime, now_local: datetime) -> str:
    return t.gettext(
        "{day} at {time} has already passed there (it is now {now} local time). Type a later time.",
        day=day(t, local.date()),
        time=f"{local:%H:%M}",
        now=f"{now_local:%H:%M}",
    )


def arrival_before_departure(t: Texts, took_off: datetime, landed: datetime) -> str:
    return t.gettext(
        "That arrival ({arrival}, i.e. {arrival_utc}) is {duration} before the departure "
        "({departure_utc}) in absolute time, so the flight would land before it took off. "
        "Check the time; add +1 if it lands the next local day, or -1 if it lands the previous "
        "local day (flying east over the date line).",
        arrival=local_moment(t, landed),
        arrival_utc=utc_moment(t, landed),
        duration=duration(t, -elapsed(took_off, landed)),
        departure_utc=utc_moment(t, took_off),
    )


def flight_too_short(t: Texts, took: timedelta, least: timedelta) -> str:
    return t.gettext(
        "That makes the flight {duration} long; a flight takes at least {least}. "
        "Check the arrival time.",
        duration=duration(t, took),
        least=duration(t, least),
    )


def flight_too_long(t: Texts, took_off: datetime, landed: datetime, most: timedelta) -> str:
    return t.gettext(
        "That makes the flight {duration} long (departure {departure_utc}, arrival "
        "{arrival_utc}); I accept flights up to {most}. Check the time, and the day: +1, +2 or "
        "-1 after the time.",
        duration=duration(t, elapsed(took_off, landed)),
        departure_utc=utc_moment(t, took_off),
        arrival_utc=utc_moment(t, landed),
        most=duration(t, most),
    )


def date_before_landing(t: Texts, when: date, landed: datetime) -> str:
    return t.gettext(
        "This flight can't be on {day}: the flight before it lands {arrival}. "
        "Type a date on or after its arrival.",
        day=day(t, when),
        arrival=local_moment(t, landed),
    )


def connection_day_too_late(t: Texts, when: date, landed: datetime) -> str:
    return t.gettext(
        "{day} is more than 24 hours after the flight before lands ({arrival}). A stop that long "
        "is the next leg, not a connection: type an earlier date, or press Make it the next leg.",
        day=day(t, when),
        arrival=local_moment(t, landed),
    )


def departs_before_landing(t: Texts, departure: datetime, landed: datetime) -> str:
    return t.gettext(
        "This flight would depart {departure}, before the flight before it lands ({arrival}; "
        "{arrival_utc}). It must depart after that one arrives.",
        departure=local_moment(t, departure),
        arrival=local_moment(t, landed),
        arrival_utc=utc_moment(t, landed),
    )


def connection_too_short(t: Texts, gap: timedelta, least: timedelta) -> str:
    return t.gettext(
        "That leaves only {gap} after the flight before lands; a connection needs at least "
        "{least}. Type a later time, or change the date.",
        gap=duration(t, gap),
        least=duration(t, least),
    )


def connection_too_long(t: Texts, gap: timedelta) -> str:
    return t.gettext(
        "That is {gap} after the flight before lands. A stop of more than 24 hours is the next "
        "leg, not a connection: type an earlier time, or press Make it the next leg.",
        gap=duration(t, gap),
    )


# ---------------------------------------------------------------- summary, status, orders

ITINERARY_NOT_TICKET = N_(
    "The PDF is an itinerary of the flights you entered. It is not an airline ticket or a "
    "reservation: no seat is booked and no airline is involved."
)
PAY_CARD = N_("Pay by card")
PAY_USDC = N_("Pay with USDC")
PAY_STARS = N_("Pay {price} ⭐")
EDIT = N_("Edit")
CANCEL = N_("Cancel")
BACK_TO_SUMMARY = N_("Back to the summary")
NO_PAYMENT_METHOD = N_("Payment is not available at the moment; please try again later.")
EDIT_WHAT = N_(
    "What would you like to change? Tap a traveller or a flight to change it, or remove one."
)
ADD_FLIGHT = N_("Add a flight")
TRAVELLER_NUMBER = N_("traveller {number}")
TO_EDIT_MENU = N_("Change something else instead")
REMOVE = N_("Remove")
REMOVE_FLIGHT = N_("Remove this flight")
BACK = N_("Back")
FIELD_LABELS = {
    "origin": N_("from"),
    "destination": N_("to"),
    "number": N_("flight number"),
    "airline": N_("airline"),
    "date": N_("date"),
    "departure": N_("departure time"),
    "arrival": N_("arrival time"),
}


def edit_label(t: Texts, field: str) -> str:
    return t.gettext(FIELD_LABELS[field])


def edit_flight_what(t: Texts, label: str, flight: str) -> str:
    return t.gettext(
        "{flight} ({number}): what would you like to change?", flight=label, number=flight
    )


def passenger_removed(t: Texts, name: str) -> str:
    return t.gettext("Removed {name} from the itinerary.", name=name)


def flight_removed(t: Texts, flight: str) -> str:
    return t.gettext("Removed flight {flight}.", flight=flight)


def leg_heading(t: Texts, shape: TripShape, index: int, route_text: str) -> str:
    """`Outbound: FRA → DOH → BKK`, `Return: …`, `Leg 3: …`, or `Flights: …` for one-way."""
    if shape is TripShape.ONE_WAY:
        return t.gettext("One-way: {route}", route=route_text)
    if shape is TripShape.RETURN:
        if index == 0:
            return t.gettext("Outbound: {route}", route=route_text)
        return t.gettext("Return: {route}", route=route_text)
    return t.gettext("Leg {number}: {route}", number=index + 1, route=route_text)


def layover_line(t: Texts, at: Airport, span: timedelta) -> str:
    return t.gettext(
        "Connection at {airport}: {duration} on the ground",
        airport=at.iata,
        duration=duration(t, span),
    )


def summary(
    t: Texts,
    itinerary: Itinerary,
    price: str,
    reference: str,
) -> str:
    """The whole itinerary for a last check, flights grouped by leg with their connections;
    `price` as `total_price` says it. A trip
    too long for one message in full shows one line per flight."""
    names = itinerary.passengers
    head = [t.gettext("Please check your itinerary."), ""]
    if len(names) == 1:
        head.append(ack_passenger(t, names[0]))
    else:
        head.append(t.gettext("Travellers ({count}):", count=len(names)))
        head += [f"{n}. {name}" for n, name in enumerate(names, start=1)]
    tail = [
        "",
        t.gettext("Price: {price} · Order {reference}", price=price, reference=reference),
        "",
        t.gettext(ITINERARY_NOT_TICKET),
    ]
    whole = "\n".join([*head, *_journey(t, itinerary, compact=False), *tail])
    if len(whole) <= MAX_TEXT:
        return whole
    return clip("\n".join([*head, *_journey(t, itinerary, compact=True), *tail]))


def _journey(t: Texts, itinerary: Itinerary, compact: bool) -> list[str]:
    """The flights leg by leg, with the time on the ground at each connection."""
    parts: list[str] = []
    count, number = len(itinerary.flights), 0
    for leg_index, leg in enumerate(itinerary.legs):
        codes = [leg[0].origin.iata, *(f.destination.iata for f in leg)]
        parts += ["", leg_heading(t, itinerary.shape, leg_index, " → ".join(codes))]
        for position, flight in enumerate(leg):
            if position:
                parts.append(layover_line(t, flight.origin, layover(leg[position - 1], flight)))
            offset = (flight.arrival_local.date() - flight.departure_local.date()).days
            number += 1
            name = flight_name(flight.flight_number, flight.airline)
            if compact:
                parts.append(_flight_line(t, number, name, flight, offset))
                continue
            arrives = local_moment(t, flight.arrival_aware)
            if offset:
                arrives += f" – {day_note(t, offset)}"
            parts += [
                f"{flight_label(t, number - 1, count)} {name}",
                t.gettext("From: {airport}", airport=airport(flight.origin)),
                ack_departure(t, flight.departure_aware),
                t.gettext("To: {airport}", airport=airport(flight.destination)),
                t.gettext("Arrives: {moment}", moment=arrives),
                t.gettext("Flight time: {duration}", duration=duration(t, flight.duration)),
            ]
    return parts


def _flight_line(t: Texts, number: int, name: str, flight: Flight, offset: int) -> str:
    """`3. QR 831 · Qatar Airways: BKK Sat 2 Jan 2027 20:00 → DOH 23:15 (7 h 15 min)`."""
    departs, arrives = flight.departure_local, flight.arrival_local
    landing = f"{arrives:%H:%M}" + (f" ({offset:+d})" if offset else "")
    return (
        f"{number}. {name}: {flight.origin.iata} {day(t, departs.date())} {departs:%H:%M} → "
        f"{flight.destination.iata} {landing} ({duration(t, flight.duration)})"
    )


SUMMARY_HINT = N_("Use the buttons under the summary: pay, edit or cancel.")
EDIT_HINT = N_("Pick what to change with the buttons above.")
IDLE_HINT = N_("Send /start to make a new itinerary, or /help to learn more.")
STALE = N_("That step is already done.")
ALREADY_PAID = N_("This order is already paid.")
ORDER_WAS_CANCELLED = N_("This order was cancelled. /start makes a new one.")
ORDER_UNKNOWN = N_("I can't find that order.")
CARD_OFF = N_("Card payment is not available at the moment.")
USDC_OFF = N_("USDC payment is not available at the moment.")
STARS_OFF = N_("Payment in Telegram Stars is not available at the moment.")
NOT_PAID_NO_PDF = N_("That order isn't paid, so there is no PDF to send.")
SENDING_PDF = N_("Sending the PDF again…")

STATUS_WORDS = {
    OrderStatus.AWAITING_PAYMENT: N_("waiting for payment"),
    OrderStatus.CANCELLED: N_("cancelled"),
    OrderStatus.PAID: N_("paid, PDF on its way"),
    OrderStatus.DELIVERED: N_("paid, PDF sent"),
    OrderStatus.DELIVERY_FAILED: N_("paid, sending the PDF failed (/orders to ask for it again)"),
}


def status_word(t: Texts, status: OrderStatus) -> str:
    word = STATUS_WORDS.get(status)
    return t.gettext(word) if word else str(status)


def route(t: Texts, order: Order) -> str:
    flights = order.itinerary.flights
    if not flights:
        return "—"
    codes = [a.iata for a in stops(flights)]
    return " → ".join(codes) + f", {day(t, flights[0].departure_local.date())}"


def order_line(t: Texts, order: Order) -> str:
    return f"{order.reference} · {route(t, order)} · {status_word(t, order.status)}"


QUESTIONS = {
    "name": N_("the passenger name"),
    "travellers": N_("whether anyone else travels"),
    "more": N_("what comes after the last flight"),
    "airline": N_("the airline's name"),
    "origin": N_("the departure airport"),
    "destination": N_("the arrival airport"),
    "number": N_("the flight number"),
    "date": N_("the departure date"),
    "departure": N_("the departure time"),
    "arrival": N_("the arrival time"),
}


def status_in_progress(t: Texts, answered: int, total: int, question: str) -> str:
    return t.ngettext(
        "You are making an itinerary: {answered} of {total} answer given. "
        "Waiting for: {question}. /cancel drops it.",
        "You are making an itinerary: {answered} of {total} answers given. "
        "Waiting for: {question}. /cancel drops it.",
        total,
        answered=answered,
        total=total,
        question=question,
    )


def status_summary(t: Texts, reference: str, order: Order | None) -> str:
    if order is None:
        return t.gettext(
            "Your itinerary is ready as order {reference}; use the buttons under the summary.",
            reference=reference,
        )
    text = t.gettext(
        "Order {reference} ({route}): {status}.",
        reference=reference,
        route=route(t, order),
        status=status_word(t, order.status),
    )
    if order.status is OrderStatus.AWAITING_PAYMENT:
        text += " " + t.gettext("Pay with the buttons under the summary.")
    return text


STATUS_EDITING = N_("You are changing your itinerary: pick what to change with the buttons above.")
STATUS_IDLE = N_("No itinerary in progress. /start makes a new one.")


def status_latest(t: Texts, order: Order) -> str:
    return t.gettext("Your latest order: {order}.", order=order_line(t, order))


NO_ORDERS = N_("You have no orders yet. /start makes a new itinerary.")


def orders_list(t: Texts, lines: Sequence[str], more: bool) -> str:
    """The listed orders; `more` says the chat has older ones than those listed."""
    if more:
        head = t.ngettext(
            "Your latest {shown} order, newest first (older ones are not shown):",
            "Your latest {shown} orders, newest first (older ones are not shown):",
            len(lines),
            shown=len(lines),
        )
    else:
        head = t.gettext("Your orders, newest first:")
    tail = t.gettext("Paid orders have a button to send the PDF again.")
    return clip("\n".join([head, *lines, "", tail]))


def pdf_button(t: Texts, reference: str) -> str:
    return t.gettext("PDF {reference}", reference=reference)
