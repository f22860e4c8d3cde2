"""Airline names by IATA or ICAO code from the shipped OpenFlights snapshot, and its refresh."""

from __future__ import annotations

import csv
import fnmatch
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from itinerabot.airlines import airline_name

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "itinerabot" / "data"


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("LH", "Lufthansa"),
        ("BA", "British Airways"),
        ("QR", "Qatar Airways"),
        ("EK", "Emirates"),
        ("TG", "Thai Airways International"),
        ("TK", "Turkish Airlines"),
        ("AF", "Air France"),
        ("U2", "easyJet"),
        ("6E", "IndiGo"),
        ("FZ", "flydubai"),
    ],
)
def test_a_well_known_iata_code_gives_the_airline(code: str, name: str) -> None:
    assert airline_name(code) == name


@pytest.mark.parametrize("typed", ["lh", "Lh", " LH ", "dlh", "DLH"])
def test_codes_are_matched_in_any_case_and_icao_codes_too(typed: str) -> None:
    assert airline_name(typed) == "Lufthansa"


@pytest.mark.parametrize(("code", "name"), [("BAW", "British Airways"), ("QTR", "Qatar Airways")])
def test_an_icao_code_gives_the_airline(code: str, name: str) -> None:
    assert airline_name(code) == name


@pytest.mark.parametrize("code", ["ZZ", "00", "", "L", "LH4", "DLHX", "ЛХ"])
def test_an_unknown_code_gives_none(code: str) -> None:
    assert airline_name(code) is None


def test_a_code_shared_with_a_cargo_airline_names_the_passenger_airline() -> None:
    assert airline_name("LH") == "Lufthansa"  # not Lufthansa Cargo, also active on LH
    assert airline_name("SQ") == "Singapore Airlines"
    assert airline_name("GEC") == "Lufthansa Cargo"  # its own ICAO code still finds it


def test_a_reused_code_names_the_airline_flying_it_now() -> None:
    assert airline_name("AZ") == "ITA Airways"  # Alitalia's code since 2021
    assert airline_name("AD") == "Azul"  # once Air Paradise
    assert airline_name("CJ") == "BA CityFlyer"  # once China Northern


@pytest.mark.parametrize("code", ["9W", "JAI", "CO", "VX", "AB", "UK"])
def test_a_closed_airline_is_not_named(code: str) -> None:
    # Jet Airways, Continental, Virgin America, Air Berlin, Vistara: a traveller typing the code
    # is asked for the airline rather than shown a name that no longer flies
    assert airline_name(code) is None


def test_a_fictional_airline_is_not_named() -> None:
    # user-added "virtual airlines" marked active in OpenFlights, on codes real airlines use
    assert airline_name("RM") is None  # "Rainbow Air US"
    assert airline_name("XP") is None  # "XPTO"


def test_every_name_is_clean_for_chat_and_the_pdf() -> None:
    with (DATA / "airlines.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) > 900
    for row in rows:
        for code in (row["iata"], row["icao"]):
            if code:
                name = airline_name(code)
                assert name is not None and name == name.strip() and len(name) >= 2, row
                assert name.isprintable() and "  " not in name, row
                assert "(Priv)" not in name, row  # an OpenFlights marker, not a name
                name.encode("cp1252")  # Helvetica in the PDF draws these characters only


def test_the_snapshot_ships_with_its_licence_and_credit() -> None:
    licence = (DATA / "AIRLINES-LICENSE").read_text(encoding="utf-8")
    assert "OpenFlights" in licence and "Open Database License" in licence
    assert "https://opendatacommons.org/licenses/odbl/1-0/" in licence
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.partition("## Airline names")[2].partition("\n## ")[0]
    assert "OpenFlights" in section and "ODbL" in section
    assert "scripts/refresh_airlines.py" in section


def test_the_wheel_includes_every_data_file() -> None:
    """setuptools puts a package's non-Python files in the wheel only when package-data names
    them (patterns relative to the package): a data file not listed would be missing after
    `pip install .` and in the container."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["itinerabot"]
    shipped = sorted(p.relative_to(ROOT / "itinerabot").as_posix() for p in DATA.iterdir())
    assert shipped == ["data/AIRLINES-LICENSE", "data/airlines.csv"]
    for path in shipped:
        assert any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns), path


SAMPLE_DAT = """\
-1,Unknown,\\N,-,N/A,\\N,\\N,Y
324,"All Nippon Airways","ANA All Nippon Airways","NH","ANA","ALL NIPPON","Japan","Y"
3000,Jet Airways,\\N,9W,JAI,JET AIRWAYS,India,Y
596,Alitalia,\\N,AZ,AZA,ALITALIA,Italy,Y
900,Old Air,\\N,Q1,OLD,OLD,Nowhere,N
901,New Air\t ,\\N,Q1,NEW,NEW,Somewhere,Y
902,Some Air Cargo,\\N,Q2,SAC,SOMECARGO,Somewhere,Y
903,Some Air,\\N,Q2,SAI,SOME,Somewhere,Y
904,Twin Air,\\N,Q3,TWA,TWIN,Somewhere,Y
905,Twin Air Two,\\N,Q3,TWB,TWIN,Somewhere,Y
906,Made Up Air,\\N,Q4,MU1,MADE UP,Somewhere,Y
907,Sim Virtual Airlines,\\N,Q5,SVA,SIM,Somewhere,Y
19678,Rainbow Air US,\\N,RM,RNY,Rainbow Air,United States,Y
908,Island Hopper (Priv),\\N,Q6,\\N,,Somewhere,Y
909,Cyrillic Air,\\N,ЯП,\\N,,Somewhere,Y
910,Digits Air,\\N,12,\\N,,Somewhere,Y
911,O\\\\'Hare Air,\\N,Q7,\\N,,Somewhere,Y
"""


@pytest.mark.process
def test_the_refresh_script_builds_the_snapshot_by_its_rules(tmp_path: Path) -> None:
    source = tmp_path / "airlines.dat"
    source.write_text(SAMPLE_DAT, encoding="utf-8")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "scripts/refresh_airlines.py", "--from", str(source), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    with (out / "airlines.csv").open(encoding="utf-8") as f:
        rows = {(r["iata"], r["icao"]): r["name"] for r in csv.DictReader(f)}
    assert rows == {
        ("AZ", "ITY"): "ITA Airways",  # our correction: the code now flies for ITA
        ("NH", "ANA"): "All Nippon Airways",
        ("Q1", "NEW"): "New Air",  # the closed Old Air gives way; the name is trimmed
        ("Q2", "SAI"): "Some Air",  # passenger before cargo, whatever the ids
        ("", "SAC"): "Some Air Cargo",  # keeps its own ICAO code
        ("Q3", "TWA"): "Twin Air",  # two active: the lowest OpenFlights id
        ("", "TWB"): "Twin Air Two",
        ("Q6", ""): "Island Hopper",  # OpenFlights' marker is not part of the name
        ("Q7", ""): "O'Hare Air",  # OpenFlights' escaped quote
    }
    # left out: Jet Airways (closed), Made Up Air (ICAO with a digit), the virtual airline,
    # Rainbow Air US (fictional), codes that are not IATA's shape, OpenFlights' "Unknown"
    assert "Jet Airways" not in rows.values() and "Old Air" not in rows.values()
    assert "fictional" in done.stdout and "malformed code" in done.stdout
    licence = (out / "AIRLINES-LICENSE").read_text(encoding="utf-8")
    assert "9 airlines" in licence and "the file airlines.dat" in licence
