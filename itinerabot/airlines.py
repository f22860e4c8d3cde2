"""Airline names by designator: IATA `LH` or ICAO `DLH` → `Lufthansa`.

Reads the snapshot `itinerabot/data/airlines.csv` (OpenFlights data, ODbL: see AIRLINES-LICENSE
beside it; rebuilt by `scripts/refresh_airlines.py`) once, on first use; a lookup is then one
dict access.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import unicodedata
from importlib import resources

DATA_PACKAGE = "itinerabot"
DATA_PATH = ("data", "airlines.csv")
COLUMNS = ("iata", "icao", "name", "country", "openflights_id")

# IATA designators are two letters or digits (not two digits: those are not issued); ICAO
# airline designators are three letters.
IATA_CODE = re.compile(r"(?![0-9]{2})[A-Z0-9]{2}")
ICAO_CODE = re.compile(r"[A-Z]{3}")


def airline_name(code: str) -> str | None:
    """The name of the airline whose IATA (`LH`) or ICAO (`DLH`) designator is `code`.

    Case and surrounding spaces are ignored. None when the snapshot has no active airline with
    that code. Raises OSError on the first call if the packaged data file is missing (a broken
    install).
    """
    return _names().get(code.strip().upper())


def known_codes() -> frozenset[str]:
    """Every IATA and ICAO designator the snapshot names an airline for."""
    return frozenset(_names())


def drawable(text: str) -> bool:
    """True when the PDF's built-in fonts can draw every character of `text` (Windows-1252)."""
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def clean_name(text: str) -> str:
    """`text` fit for a chat message and the PDF: control and format characters removed, each
    run of white space one space, none at either end."""
    visible = "".join(c for c in text if c.isspace() or not _invisible(c))
    return " ".join(visible.split())


def _invisible(char: str) -> bool:
    # Cc control, Cf format (zero-width, bidi marks), Co private use, Cs surrogates, Cn unassigned
    return unicodedata.category(char).startswith("C")


@functools.cache
def _names() -> dict[str, str]:
    """Every code of the snapshot → its airline's name; the first row wins a repeated code."""
    text = resources.files(DATA_PACKAGE).joinpath(*DATA_PATH).read_text(encoding="utf-8")
    names: dict[str, str] = {}
    for row in csv.DictReader(io.StringIO(text)):
        name = clean_name(row["name"])
        if not name:
            continue
        iata, icao = row["iata"].strip().upper(), row["icao"].strip().upper()
        if IATA_CODE.fullmatch(iata):
            names.setdefault(iata, name)
        if ICAO_CODE.fullmatch(icao):
            names.setdefault(icao, name)
    return names
