"""Find airports by IATA code, city or name in the `airportsdata` database.

Matching ignores case and diacritics, matches word prefixes, ranks big airports first and offers the
closest spellings when nothing matches. The index is built once, on first use.
"""

from __future__ import annotations

import bisect
import difflib
import functools
import re
import unicodedata
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import airportsdata

from itinerabot.models import Airport

# The world's busiest passenger airports: with no traffic figures in the data, this is what puts
# Heathrow before Biggin Hill when someone types "London". Roughly busiest first.
_MAJOR_CODES = (
    "ATL DXB DFW LHR HND DEN IST LAX ORD DEL CDG JFK CAN AMS MAD FRA PVG PEK SZX CTU LAS ICN "
    "SIN BOM CLT MCO SFO SEA EWR MIA PHX IAH BCN MUC FCO LGW DOH BKK KUL CGK MNL HKG NRT SYD "
    "MEL YYZ YVR MEX CUN GRU GIG BOG LIM SCL EZE JED RUH AUH CAI JNB CPT ADD NBO LOS BLR MAA "
    "HYD CCU SGN HAN TPE KIX PMI LIS OPO ZRH VIE CPH ARN OSL HEL DUB MAN BRU MXP ORY PRG WAW "
    "BUD ATH SAW AYT TLV BOS MSP DTW PHL LGA BWI IAD DCA SLC SAN TPA FLL HNL YUL STN BER DUS "
    "HAM STR CGN NCE GVA AKL BNE PER "
)
MAJOR_AIRPORTS: tuple[str, ...] = tuple(_MAJOR_CODES.split())

# Words that mark airfields a traveller is unlikely to mean.
_MINOR_WORDS = frozenset(
    {
        "raf",
        "afb",
        "heliport",
        "seaplane",
        "army",
        "naval",
        "base",
        "station",
        "field",
        "strip",
        "airstrip",
        "glider",
    }
)

# Letters that Unicode decomposition leaves alone but a traveller types in plain Latin.
_TRANSLITERATION = str.maketrans(
    {"ð": "d", "þ": "th", "æ": "ae", "ø": "o", "œ": "oe", "ł": "l", "đ": "d", "ı": "i", "ß": "ss"}
)

_MAJOR_RANK = {code: rank for rank, code in enumerate(MAJOR_AIRPORTS)}

MAX_MATCHES = 8


def normalise(text: str) -> str:
    """Lower-case `text`, drop diacritics, turn each run of non-alphanumerics into one space."""
    lowered = text.casefold().translate(_TRANSLITERATION)
    decomposed = unicodedata.normalize("NFKD", lowered)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain).split())


@dataclass(frozen=True, slots=True)
class AirportSearch:
    """What a search found: `matches` best first (at most `MAX_MATCHES`), `total` of them in all.

    `chosen` is set when one match clearly is what the traveller meant (a code, a single match, or
    the one big airport of the city typed).
    """

    matches: tuple[Airport, ...]
    total: int
    chosen: Airport | None


@dataclass(frozen=True, slots=True)
class _Entry:
    airport: Airport
    city: str
    words: frozenset[str]
    major: int | None  # position in MAJOR_AIRPORTS
    international: bool
    minor: bool


class AirportIndex:
    """An in-memory index over `airportsdata` rows keyed by IATA code."""

    def __init__(self, rows: Mapping[str, Mapping[str, Any]]) -> None:
        zones = zoneinfo.available_timezones()
        self._by_code: dict[str, _Entry] = {}
        by_word: dict[str, set[str]] = {}
        for code, row in rows.items():
            entry = _entry(code, row, zones)
            if entry is None:
                continue
            self._by_code[entry.airport.iata] = entry
            for word in entry.words:
                by_word.setdefault(word, set()).add(entry.airport.iata)
        self._by_word = {w: frozenset(codes) for w, codes in by_word.items()}
        self._words = sorted(self._by_word)
        # For suggestions: spellings grouped by length, so difflib only compares likely neighbours.
        self._spellings: dict[int, list[str]] = {}
        self._spelling_codes: dict[str, set[str]] = {}
        for entry in self._by_code.values():
            for spelling in {entry.city, normalise(entry.airport.name), *entry.words}:
                if len(spelling) >= 3:
                    self._spelling_codes.setdefault(spelling, set()).add(entry.airport.iata)
        for spelling in self._spelling_codes:
            self._spellings.setdefault(len(spelling), []).append(spelling)

    def __len__(self) -> int:
        return len(self._by_code)

    def by_code(self, code: str) -> Airport | None:
        """The airport with this IATA code (any case), or None."""
        entry = self._by_code.get(code.strip().upper())
        return entry.airport if entry else None

    def search(self, query: str) -> AirportSearch:
        """Airports whose code, city or name match `query`, best first."""
        wanted = normalise(query)
        if len(wanted) < 3:
            return AirportSearch((), 0, None)
        if len(wanted) == 3 and wanted.isalpha() and wanted.upper() in self._by_code:
            airport = self._by_code[wanted.upper()].airport
            return AirportSearch((airport,), 1, airport)
        codes: frozenset[str] | None = None
        for token in wanted.split():
            found = self._codes_for(token)
            codes = found if codes is None else codes & found
            if not codes:
                return AirportSearch((), 0, None)
        entries = sorted((self._by_code[c] for c in codes or ()), key=lambda e: _rank(e, wanted))
        matches = tuple(e.airport for e in entries[:MAX_MATCHES])
        return AirportSearch(matches, len(entries), _clear_choice(entries, wanted))

    def suggest(self, query: str, limit: int = 5) -> tuple[Airport, ...]:
        """The airports spelled most like `query`, for when `search` finds nothing."""
        wanted = normalise(query)
        if len(wanted) < 3:
            return ()
        candidates: list[str] = []
        for size in range(len(wanted) - 2, len(wanted) + 3):
            candidates.extend(self._spellings.get(size, ()))
        close = difflib.get_close_matches(wanted, candidates, n=limit * 2, cutoff=0.75)
        seen: list[str] = []
        for spelling in close:
            best = sorted(
                self._spelling_codes[spelling], key=lambda c: _rank(self._by_code[c], spelling)
            )
            for code in best:
                if code not in seen:
                    seen.append(code)
        if wanted.upper() in self._by_code:
            seen.insert(0, wanted.upper())
        return tuple(self._by_code[c].airport for c in seen[:limit])

    def _codes_for(self, token: str) -> frozenset[str]:
        if len(token) < 3:
            return self._by_word.get(token, frozenset())
        start = bisect.bisect_left(self._words, token)
        found: set[str] = set()
        for word in self._words[start:]:
            if not word.startswith(token):
                break
            found |= self._by_word[word]
        return frozenset(found)


def _entry(code: str, row: Mapping[str, Any], zones: Iterable[str]) -> _Entry | None:
    tz = str(row.get("tz") or "")
    iata = str(row.get("iata") or code).upper()
    name = str(row.get("name") or "").strip()
    if tz not in zones or not re.fullmatch(r"[A-Z]{3}", iata) or not name:
        return None
    city = str(row.get("city") or "").strip() or name
    airport = Airport(iata=iata, name=name, city=city, country=str(row.get("country") or ""), tz=tz)
    words = frozenset(normalise(f"{city} {name}").split()) | {iata.lower()}
    name_words = set(normalise(name).split())
    return _Entry(
        airport=airport,
        city=normalise(city),
        words=words,
        major=_MAJOR_RANK.get(iata),
        international="international" in name_words,
        minor=bool(name_words & _MINOR_WORDS),
    )


def _rank(entry: _Entry, wanted: str) -> tuple[int, int, int, int, int, str]:
    city_exact = entry.city == wanted
    city_start = entry.city.startswith(wanted)
    return (
        0 if city_exact else 1 if city_start else 2,
        len(MAJOR_AIRPORTS) if entry.major is None else entry.major,
        1 if entry.minor else 0,
        0 if entry.international else 1,
        len(entry.airport.name),
        entry.airport.iata,
    )


def _clear_choice(entries: list[_Entry], wanted: str) -> Airport | None:
    if len(entries) == 1:
        return entries[0].airport
    # "frankfurt": the one big airport of that city beats Frankfurt-Hahn; "london" has several.
    majors = [e for e in entries if e.major is not None]
    if len(majors) == 1 and majors[0].city.startswith(wanted):
        return majors[0].airport
    return None


@functools.cache
def default_index() -> AirportIndex:
    """The index over `airportsdata`'s IATA table, built on first call and kept."""
    return AirportIndex(airportsdata.load("IATA"))
