"""Looking airports up by code, city and name in the real `airportsdata` table."""

from __future__ import annotations

import pytest

from itinerabot.dialogue.airports import AirportIndex, default_index, normalise


def codes(query: str) -> list[str]:
    return [a.iata for a in default_index().search(query).matches]


@pytest.mark.parametrize("typed", ["FRA", "fra", " Fra "])
def test_a_code_is_found_in_any_case(typed: str) -> None:
    found = default_index().search(typed)
    assert found.chosen is not None and found.chosen.iata == "FRA"
    assert found.chosen.tz == "Europe/Berlin" and found.chosen.country == "DE"
    assert default_index().by_code(typed.strip()) == found.chosen


def test_an_airport_name_finds_it() -> None:
    found = default_index().search("Heathrow")
    assert found.chosen is not None and found.chosen.iata == "LHR"
    assert found.chosen.city == "London"
    assert codes("heathrow airport") == ["LHR"]


def test_a_city_with_one_big_airport_chooses_it() -> None:
    found = default_index().search("frankfurt")
    assert found.chosen is not None and found.chosen.iata == "FRA"
    assert codes("frankfurt")[:2] == ["FRA", "HHN"]


@pytest.mark.parametrize(
    ("city", "first"), [("London", ["LHR", "LGW"]), ("paris", ["CDG", "ORY"]), ("Tokyo", ["HND"])]
)
def test_a_city_with_several_airports_lists_the_big_ones_first(city: str, first: list[str]) -> None:
    found = default_index().search(city)
    assert found.chosen is None
    assert [a.iata for a in found.matches[: len(first)]] == first
    assert found.total >= len(found.matches) >= 2


def test_london_lists_its_airports_within_the_button_limit() -> None:
    found = default_index().search("london")
    assert {"LHR", "LGW", "STN", "LTN", "LCY"} <= {a.iata for a in found.matches}
    assert len(found.matches) <= 8


@pytest.mark.parametrize(
    ("typed", "code"), [("Zürich", "ZRH"), ("ZURICH", "ZRH"), ("münchen", None)]
)
def test_diacritics_are_ignored(typed: str, code: str | None) -> None:
    found = default_index().search(typed)
    assert (found.chosen.iata if found.chosen else None) == code


def test_words_match_by_prefix_and_all_must_match() -> None:
    assert "JFK" in codes("new york")
    assert "JFK" in codes("kennedy")
    assert codes("john kenn")[0] == "JFK"
    assert codes("heathrow gatwick") == []


@pytest.mark.parametrize(
    ("typo", "code"), [("Frnkfurt", "FRA"), ("Londn", "LHR"), ("Heathroww", "LHR")]
)
def test_typos_get_the_closest_suggestions(typo: str, code: str) -> None:
    assert default_index().search(typo).matches == ()
    assert code in [a.iata for a in default_index().suggest(typo)]


def test_nonsense_gets_no_match_and_few_suggestions() -> None:
    assert default_index().search("qqqqqqqqq").total == 0
    assert len(default_index().suggest("qqqqqqqqq")) <= 5
    assert default_index().search("").matches == ()
    assert default_index().search("ab").matches == ()


def test_rows_without_a_known_time_zone_are_ignored() -> None:
    base = {"iata": "AAA", "name": "Alpha Airport", "city": "Alpha", "country": "XX"}
    index = AirportIndex(
        {
            "AAA": {**base, "tz": "Europe/Paris"},
            "BBB": {**base, "iata": "BBB", "tz": ""},
            "CCC": {**base, "iata": "CCC", "tz": "Mars/Olympus_Mons"},
        }
    )
    assert len(index) == 1
    assert index.by_code("bbb") is None and index.by_code("CCC") is None
    assert [a.iata for a in index.search("alpha").matches] == ["AAA"]


def test_the_default_index_is_built_once() -> None:
    assert default_index() is default_index()
    assert len(default_index()) > 5000


def test_normalise() -> None:
    assert normalise("  São-Paulo/Guarulhos ") == "sao paulo guarulhos"
    assert normalise("Egilsstaðir") == "egilsstadir"
