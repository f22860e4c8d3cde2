"""Read and check what the traveller types: names, flight numbers, dates, times, flight timing.

Every function returns the value it read or an `Invalid` whose message says exactly what is allowed.
No clock: "now" and "today" are arguments.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from itinerabot.dialogue import texts
from itinerabot.i18n import Texts, english
from itinerabot.models import elapsed

NAME_MIN, NAME_MAX = 2, 60
MIN_FLIGHT = timedelta(minutes=15)
MAX_FLIGHT = timedelta(hours=20)
BOOKING_HORIZON = timedelta(days=365)
ARRIVAL_OFFSETS = (-1, 0, 1, 2)

_UTC = ZoneInfo("UTC")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_WEEKDAY = r"(?:(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)[a-z]*\.?,?\s+)?"


@dataclass(frozen=True, slots=True)
class Invalid:
    """An answer that cannot be used; `say(texts)` tells the traveller what is allowed."""

    say: Callable[[Texts], str]

    @property
    def message(self) -> str:
        """What `say` tells, in English (the default language)."""
        return self.say(english())


def _says(message: str) -> Invalid:
    """An `Invalid` whose message is the catalogue's sentence `message`."""
    return Invalid(lambda t: t.gettext(message))


@dataclass(frozen=True, slots=True)
class ArrivalInput:
    """An arrival time as typed: the local time and, if given (`+1`, `-1`), the day offset."""

    time: time
    offset: int | None


@dataclass(frozen=True, slots=True)
class Arrival:
    """A checked arrival: local wall time at the destination and its day offset from departure."""

    local: datetime
    offset: int
    inferred: bool  # True when the traveller gave no offset and it is not the same day


# ---------------------------------------------------------------- passenger name


def parse_passenger_name(text: str) -> str | Invalid:
    """The name in capitals with single spaces, or why it cannot be printed as in a passport."""
    name = " ".join(text.replace("’", "'").replace("‘", "'").split()).upper()
    if not name:
        return _says(texts.NAME_RULES)
    bad = sorted({c for c in name if not (c.isascii() and (c.isalpha() or c in " -'"))})
    if bad:
        suggestion = _ascii_suggestion(name)
        return Invalid(lambda t: texts.name_bad_characters(t, bad, suggestion))
    if not NAME_MIN <= len(name) <= NAME_MAX:
        return Invalid(lambda t: texts.name_bad_length(t, len(name), NAME_MIN, NAME_MAX))
    if not all(re.fullmatch(r"[A-Z]+(?:['-][A-Z]+)*'?", word) for word in name.split()):
        return _says(texts.NAME_PUNCTUATION)
    if sum(c.isalpha() for c in name) < NAME_MIN:
        return _says(texts.NAME_RULES)
    return name


def _ascii_suggestion(name: str) -> str | None:
    decomposed = unicodedata.normalize("NFKD", name.translate(_NAME_TRANSLITERATION))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    result = parse_passenger_name(plain) if plain != name and plain.isascii() else None
    return result if isinstance(result, str) else None


_NAME_TRANSLITERATION = str.maketrans(
    {"Ð": "D", "Þ": "TH", "Æ": "AE", "Ø": "O", "Œ": "OE", "Ł": "L", "Đ": "D", "ß": "SS"}
)

# ---------------------------------------------------------------- airline name

AIRLINE_MIN, AIRLINE_MAX = 2, 40
_AIRLINE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .&'()\-]*")


def parse_airline_name(text: str) -> str | Invalid:
    """An airline's name as the traveller typed it, spaces tidied: Latin letters, digits and
    `. & - ' ( )` only, so the PDF's fonts can print it; never a date or a time (an answer
    meant for the next question would print as the airline)."""
    name = " ".join(text.replace("’", "'").split())
    words = name.casefold()
    looks_like = _read_date(words, date(2000, 1, 1)) if words[:1].isdigit() else None
    if isinstance(looks_like, date) or _read_time(words) is not None:
        return _says(texts.AIRLINE_NOT_A_DATE)
    if not AIRLINE_MIN <= len(name) <= AIRLINE_MAX or not _AIRLINE.fullmatch(name):
        return _says(texts.AIRLINE_RULES)
    if sum(c.isalpha() for c in name) < AIRLINE_MIN:
        return _says(texts.AIRLINE_RULES)
    return name


# ---------------------------------------------------------------- flight number

_FLIGHT_NUMBER = re.compile(r"([A-Z0-9]{2}|[A-Z]{3})(\d{1,4})([A-Z]?)")


def parse_flight_number(text: str) -> str | Invalid:
    """`LH 401` from `lh401`, `LH-401`, `lh 0401`; ICAO codes (`DLH 401`) and a suffix are kept."""
    # A space or hyphen the traveller typed marks where the airline code ends ("L4 01" ≠ "L 401").
    parts = re.split(r"[\s\-]+", text.strip().upper(), maxsplit=1)
    if len(parts) == 2 and not 2 <= len(parts[0]) <= 3:
        return Invalid(lambda t: texts.quoting(t, texts.FLIGHT_NUMBER_INVALID, text.strip()))
    match = _FLIGHT_NUMBER.fullmatch(re.sub(r"[\s\-]+", "", text).upper())
    if match and len(parts) == 2 and match[1] != parts[0]:
        match = None
    if match is None or not any(c.isalpha() for c in match[1]) or int(match[2]) == 0:
        return Invalid(lambda t: texts.quoting(t, texts.FLIGHT_NUMBER_INVALID, text.strip()))
    return f"{match[1]} {int(match[2])}{match[3]}"


# ---------------------------------------------------------------- dates


def parse_date(text: str, *, today: date) -> date | Invalid:
    """A departure date from today (local at the departure airport) up to a year ahead.

    Accepts `2026-12-24`, `24.12.2026`, `24/12/2026`, `24 Dec 2026`, `Dec 24`, `today`, `tomorrow`;
    a date without a year is the next such day.
    """
    words = " ".join(text.strip().casefold().split())
    if words in ("today", "tomorrow"):
        return today + timedelta(days=1 if words == "tomorrow" else 0)
    found = _read_date(words, today)
    if isinstance(found, Invalid):
        return found
    return check_date(found, today=today) or found


def check_date(when: date, *, today: date) -> Invalid | None:
    """Why `when` is not between `today` and a year ahead, or None."""
    last = today + BOOKING_HORIZON
    if when < today:
        return Invalid(lambda t: texts.date_in_past(t, when, today, last))
    if when > last:
        return Invalid(lambda t: texts.date_too_far(t, when, last))
    return None


def _read_date(words: str, today: date) -> date | Invalid:
    numeric = re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", words)
    if numeric:
        return _make_date(int(numeric[1]), int(numeric[2]), int(numeric[3]), words)
    numeric = re.fullmatch(r"(\d{1,2})[./-](\d{1,2})(?:[./-](\d{2}|\d{4}))?\.?", words)
    if numeric:
        first, second = int(numeric[1]), int(numeric[2])
        day, month = (second, first) if second > 12 >= first else (first, second)
        return _with_year(day, month, numeric[3], today, words)
    day_first = re.fullmatch(
        _WEEKDAY + r"(\d{1,2})(?:st|nd|rd|th)?\.?\s*([a-z]+)\.?,?(?:\s+(\d{4}))?", words
    )
    if day_first and day_first[2] in _MONTHS:
        return _with_year(int(day_first[1]), _MONTHS[day_first[2]], day_first[3], today, words)
    month_first = re.fullmatch(
        _WEEKDAY + r"([a-z]+)\.?\s*(\d{1,2})(?:st|nd|rd|th)?,?(?:\s+(\d{4}))?", words
    )
    if month_first and month_first[1] in _MONTHS:
        return _with_year(
            int(month_first[2]), _MONTHS[month_first[1]], month_first[3], today, words
        )
    return Invalid(lambda t: texts.quoting(t, texts.DATE_UNREADABLE, words))


def _with_year(day: int, month: int, year: str | None, today: date, words: str) -> date | Invalid:
    if year is not None:
        number = int(year)
        return _make_date(number + 2000 if number < 100 else number, month, day, words)
    this_year = _make_date(today.year, month, day, words)
    if isinstance(this_year, date) and this_year >= today:
        return this_year
    next_year = _make_date(today.year + 1, month, day, words)
    return this_year if isinstance(next_year, Invalid) else next_year


def _make_date(year: int, month: int, day: int, words: str) -> date | Invalid:
    try:
        return date(year, month, day)
    except ValueError:
        return Invalid(lambda t: texts.quoting(t, texts.DATE_NOT_A_DAY, words))


# ---------------------------------------------------------------- times

_OFFSET = re.compile(r"\(?\s*([+-])\s*(\d)\s*(?:d|day|days)?\s*\)?$")


def parse_time(text: str) -> time | Invalid:
    """A local time from `14:05`, `14.05`, `14h05`, `1405`, `2:05pm`, `2 pm`."""
    found = _read_time(" ".join(text.strip().casefold().split()))
    return (
        Invalid(lambda t: texts.quoting(t, texts.TIME_UNREADABLE, text.strip()))
        if found is None
        else found
    )


def _read_time(words: str) -> time | None:
    twelve = re.fullmatch(r"(\d{1,2})(?:[:.](\d{2}))?\s*([ap])\.?\s*m\.?", words)
    if twelve:
        hour, minute = int(twelve[1]), int(twelve[2] or 0)
        if not 1 <= hour <= 12 or minute > 59:
            return None
        return time(hour % 12 + (12 if twelve[3] == "p" else 0), minute)
    clock = re.fullmatch(r"(\d{1,2})\s*[:.h]\s*(\d{2})|(\d{1,2})(\d{2})", words)
    if clock is None:
        return None
    hour, minute = int(clock[1] or clock[3]), int(clock[2] or clock[4])
    return time(hour, minute) if hour <= 23 and minute <= 59 else None


def parse_arrival(text: str) -> ArrivalInput | Invalid:
    """An arrival time, optionally followed by a day offset: `07:30 +1`, `22:10 -1`, `6am +2`."""
    words = " ".join(text.strip().casefold().split())
    offset: int | None = None
    match = _OFFSET.search(words)
    if match:
        offset = int(match[2]) * (-1 if match[1] == "-" else 1)
        if offset not in ARRIVAL_OFFSETS:
            return _says(texts.ARRIVAL_OFFSET_RANGE)
        words = words[: match.start()].strip()
    found = _read_time(words)
    if found is None:
        return Invalid(lambda t: texts.quoting(t, texts.ARRIVAL_UNREADABLE, text.strip()))
    return ArrivalInput(found, offset)


# ---------------------------------------------------------------- flight timing


def aware(local: datetime, tz: str) -> datetime:
    """`local` wall time at zone `tz`, as an aware datetime."""
    return local.replace(tzinfo=ZoneInfo(tz))


def local_time_exists(local: datetime, tz: str) -> bool:
    """False for wall times skipped when clocks go forward (e.g. 02:30 on a spring DST day)."""
    there = aware(local, tz)
    return there.astimezone(_UTC).astimezone(ZoneInfo(tz)).replace(tzinfo=None) == local


def check_departure(local: datetime, tz: str, *, now: datetime) -> Invalid | None:
    """Why a departure at `local` wall time in `tz` cannot be used, or None."""
    if not local_time_exists(local, tz):
        return Invalid(lambda t: texts.time_skipped(t, local, tz))
    if aware(local, tz) <= now:
        return Invalid(lambda t: texts.departure_in_past(t, local, now.astimezone(ZoneInfo(tz))))
    return None


def resolve_arrival(
    departure: datetime, origin_tz: str, answer: ArrivalInput, destination_tz: str
) -> Arrival | Invalid:
    """Put the arrival time on a day and check the flight time across the two zones.

    Without an offset the arrival is the same day, or the next day when its clock time is earlier
    than the departure's; if that gives an implausible flight, the one other day that gives a
    plausible one is taken (e.g. the previous local day when flying east over the date line).
    """
    if answer.offset is not None:
        return _arrival_on(departure, origin_tz, answer, answer.offset, destination_tz, False)
    default = 1 if answer.time < departure.time() else 0
    first = _arrival_on(departure, origin_tz, answer, default, destination_tz, default != 0)
    if isinstance(first, Arrival):
        return first
    for offset in sorted(ARRIVAL_OFFSETS, key=lambda o: abs(o - default)):
        if offset != default:
            other = _arrival_on(departure, origin_tz, answer, offset, destination_tz, True)
            if isinstance(other, Arrival):
                return other
    return first


def _arrival_on(
    departure: datetime,
    origin_tz: str,
    answer: ArrivalInput,
    offset: int,
    destination_tz: str,
    inferred: bool,
) -> Arrival | Invalid:
    local = datetime.combine(departure.date() + timedelta(days=offset), answer.time)
    if not local_time_exists(local, destination_tz):
        return Invalid(lambda t: texts.time_skipped(t, local, destination_tz))
    took_off = aware(departure, origin_tz)
    landed = aware(local, destination_tz)
    duration = elapsed(took_off, landed)
    if duration <= timedelta(0):
        return Invalid(lambda t: texts.arrival_before_departure(t, took_off, landed))
    if duration < MIN_FLIGHT:
        return Invalid(lambda t: texts.flight_too_short(t, duration, MIN_FLIGHT))
    if duration > MAX_FLIGHT:
        return Invalid(lambda t: texts.flight_too_long(t, took_off, landed, MAX_FLIGHT))
    return Arrival(local, offset, inferred)
