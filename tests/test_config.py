"""The payment settings as an owner writes them: which methods Telegram users are offered
(`telegram.payment_methods`) and the Stars price, each mistake refused with one clear line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from itinerabot.config import load_config, settings_from_mapping
from itinerabot.errors import ConfigError
from itinerabot.models import PaymentMethod
from tests.harness import CIRCLE_KEY, STRIPE_KEY, STRIPE_WHSEC

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.yaml"
TOKEN = "123456789:" + "A" * 35

STARS, CARD, USDC = PaymentMethod.STARS, PaymentMethod.CARD, PaymentMethod.USDC

STRIPE = {"secret_key": STRIPE_KEY, "webhook_secret": STRIPE_WHSEC}
CIRCLE = {"api_key": CIRCLE_KEY}
PRICED = {"price": 250}


def config(telegram: dict[str, Any] | None = None, **sections: Any) -> dict[str, Any]:
    """A config mapping with a valid token and the given payment sections."""
    return {"telegram": {"token": TOKEN, **(telegram or {})}, **sections}


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(raw, env={})
    return info.value.problems


def test_every_enabled_method_is_offered_by_default_stars_first() -> None:
    settings = settings_from_mapping(
        config(stripe=STRIPE, circle=CIRCLE, stars={"price": 250}), env={}
    )
    assert settings.telegram_methods == (STARS, CARD, USDC)
    assert settings.stars.price == 250
    without_stars = settings_from_mapping(config(stripe=STRIPE, circle=CIRCLE), env={})
    assert without_stars.telegram_methods == (CARD, USDC)
    assert not without_stars.stars.enabled


def test_stars_alone_follows_telegrams_rule_while_the_other_sections_stay_on() -> None:
    """`[stars]` offers Telegram users Stars only; card and USDC stay configured (the
    operator's refunds of earlier card or USDC payments still need them)."""
    settings = settings_from_mapping(
        config({"payment_methods": ["stars"]}, stripe=STRIPE, circle=CIRCLE, stars=PRICED), env={}
    )
    assert settings.telegram_methods == (STARS,)
    assert settings.stripe.enabled and settings.circle.enabled


def test_a_config_with_only_stars_is_valid_and_needs_no_secret_but_the_token() -> None:
    settings = settings_from_mapping(config(stars={"price": 1}), env={})
    assert settings.telegram_methods == (STARS,)
    assert settings.enabled_methods == (STARS,)
    assert settings.secrets() == [TOKEN]


@pytest.mark.parametrize("section", ["stars:\n", "stars:\n  refunds: operator\n"])
def test_a_stars_section_without_a_price_is_refused(section: str) -> None:
    """`stars:` alone (YAML's null: a present section, so Stars are on) or without `price`
    used to charge 500 Stars, a price the owner never chose."""
    raw = yaml.safe_load(f"telegram:\n  token: '{TOKEN}'\n{section}")
    assert problems(raw) == [
        "stars: price is required when Stars are on: the itinerary's price in whole Stars"
        " (1-100000), e.g. price: 500"
    ]
    off = yaml.safe_load(f"telegram:\n  token: '{TOKEN}'\n{section}  enabled: false\n")
    assert not settings_from_mapping({**off, "stripe": STRIPE}, env={}).stars.enabled


def test_a_switched_off_stars_section_is_not_offered() -> None:
    settings = settings_from_mapping(
        config(stripe=STRIPE, stars={"enabled": False, "price": 250}), env={}
    )
    assert settings.telegram_methods == (CARD,)


@pytest.mark.parametrize(
    ("sections", "methods", "line"),
    [
        (
            {"stars": PRICED},
            ["stars", "card"],
            "telegram.payment_methods: offers card, but the stripe section is missing or"
            " switched off (enabled: false)",
        ),
        (
            {"stars": PRICED, "circle": {**CIRCLE, "enabled": False}},
            ["usdc"],
            "telegram.payment_methods: offers usdc, but the circle section is missing or"
            " switched off (enabled: false)",
        ),
        (
            {"stripe": STRIPE, "stars": {"enabled": False}},
            ["stars", "card"],
            "telegram.payment_methods: offers stars, but the stars section is missing or"
            " switched off (enabled: false)",
        ),
        (
            {"stars": PRICED},
            ["card", "usdc"],
            "telegram.payment_methods: offers card and usdc, but the stripe and circle"
            " sections are missing or switched off (enabled: false)",
        ),
    ],
)
def test_a_method_whose_section_is_off_is_named(
    sections: dict[str, Any], methods: list[str], line: str
) -> None:
    assert problems(config({"payment_methods": methods}, **sections)) == [line]


@pytest.mark.parametrize(
    ("methods", "line"),
    [
        (["stars", "card", "stars"], "telegram.payment_methods: names stars more than once"),
        (
            ["card", "usdc", "card", "usdc"],
            "telegram.payment_methods: names card and usdc more than once",
        ),
        (
            [],
            "telegram.payment_methods: must name at least one method (stars, card, usdc);"
            " leave it out to offer every enabled one",
        ),
        ("stars", "telegram.payment_methods: must be a list, e.g. [stars] or [stars, card, usdc]"),
        (["paypal"], "telegram.payment_methods.0: Input should be 'stars', 'card' or 'usdc'"),
    ],
)
def test_a_malformed_method_list_is_one_clear_line(methods: object, line: str) -> None:
    raw = config({"payment_methods": methods}, stripe=STRIPE, circle=CIRCLE, stars=PRICED)
    assert problems(raw) == [line]


def test_no_payment_method_at_all_says_how_to_add_one() -> None:
    assert problems(config(stars={"enabled": False})) == [
        "no payment method is enabled: add a stars, stripe or circle section (a section that"
        " is present is enabled unless it says enabled: false)"
    ]


@pytest.mark.parametrize("price", [1, 250, 100000, "250", 250.0])
def test_stars_price_is_whole_stars_from_1_to_100000(price: object) -> None:
    settings = settings_from_mapping(config(stars={"price": price}), env={})
    assert settings.stars.price == int(float(str(price)))
    assert isinstance(settings.stars.price, int)


@pytest.mark.parametrize(
    ("price", "line"),
    [
        (0, "stars.price: Input should be greater than or equal to 1"),
        (-5, "stars.price: Input should be greater than or equal to 1"),
        (100001, "stars.price: Input should be less than or equal to 100000"),
        (2.5, "stars.price: Input should be a valid integer, got a number with a fractional part"),
        ("9.99", "stars.price: Input should be a valid integer, unable to parse string as an"
         " integer"),
        (True, "stars.price: must be a whole number of Stars"),
    ],
)  # fmt: skip
def test_a_stars_price_out_of_bounds_or_not_whole_is_refused(price: object, line: str) -> None:
    assert problems(config(stars={"price": price})) == [line]


def test_the_example_offers_every_method_stars_first_and_names_the_choices() -> None:
    """config.example.yaml, its placeholders filled in, loads with Stars on at its price and
    every method offered; its commented `payment_methods` line, uncommented, is valid too."""
    text = EXAMPLE.read_text()
    filled = (
        text.replace("REPLACE-with-the-token-from-BotFather", "A" * 35)
        .replace("REPLACE with an e-mail address, a @username or a URL", "a@b.example")
        .replace("REPLACE", "filled")
    )
    settings = settings_from_mapping(yaml.safe_load(filled), env={})
    assert settings.telegram_methods == (STARS, CARD, USDC)
    assert settings.stars.price == 500
    line = "  # payment_methods: [stars, card, usdc]\n"
    assert text.count(line) == 1
    strict = filled.replace(line, "  payment_methods: [stars]\n")
    assert settings_from_mapping(yaml.safe_load(strict), env={}).telegram_methods == (STARS,)


def test_a_yaml_file_with_stars_only_loads(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    lines = [
        "telegram:",
        f"  token: '{TOKEN}'",
        "  payment_methods: [stars]",
        "stars:",
        "  price: 250",
    ]
    path.write_text("\n".join(lines) + "\n")
    settings = load_config(path, env={})
    assert (settings.telegram_methods, settings.stars.price) == ((STARS,), 250)


@pytest.mark.parametrize("per", ["document", "traveller"])
def test_the_price_is_per_document_or_per_traveller(per: str) -> None:
    settings = settings_from_mapping(config(stars=PRICED, pricing={"per": per}), env={})
    assert settings.pricing.per == per
    assert settings.units(3) == (3 if per == "traveller" else 1)


@pytest.mark.parametrize("per", ["person", "passenger", "", "Traveller", 2])
def test_a_price_per_anything_else_is_refused(per: object) -> None:
    assert problems(config(stars=PRICED, pricing={"per": per})) == [
        "pricing.per: Input should be 'document' or 'traveller'"
    ]


def test_a_stars_price_the_whole_party_would_take_past_100000_is_refused() -> None:
    """Telegram takes at most 100000 Stars per invoice: 11112 Stars each for 9 travellers
    is 100008. The same price fits 8 travellers, or a price per document (the default)."""
    party: dict[str, Any] = {"stars": {"price": 11112}, "pricing": {"per": "traveller"}}
    assert problems(config(**party)) == [
        "stars.price 11112 per traveller times trips.max_travellers 9 is 100008 Stars: Telegram"
        " takes at most 100000 per invoice"
    ]
    eight = settings_from_mapping(config(**party, trips={"max_travellers": 8}), env={})
    assert eight.stars.price * eight.units(eight.trips.max_travellers) == 88896
    document = settings_from_mapping(config(stars={"price": 11112}), env={})
    assert document.stars.price * document.units(9) == 11112
    most = config(stars={"price": 11111}, pricing={"per": "traveller"})
    assert settings_from_mapping(most, env={}).stars.price * 9 == 99999
