"""Configuration: one YAML file validated by pydantic, secrets also from the environment.

`load_config` raises `ConfigError` with one human line per problem; nothing else escapes. A
value still holding config.example.yaml's placeholder (`REPLACE…`) is one of those problems.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from itinerabot.errors import ConfigError
from itinerabot.models import STARS_MAX, PaymentMethod

#: Environment variables that override secrets in the file (and may replace them entirely).
SECRET_ENV: dict[tuple[str, str], str] = {
    ("telegram", "token"): "ITINERABOT_TELEGRAM_TOKEN",
    ("stripe", "secret_key"): "ITINERABOT_STRIPE_SECRET_KEY",
    ("stripe", "webhook_secret"): "ITINERABOT_STRIPE_WEBHOOK_SECRET",
    ("circle", "api_key"): "ITINERABOT_CIRCLE_API_KEY",
}

#: a payment method as the config names it
MethodName = Literal["stars", "card", "usdc"]

_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]{20,}$")

#: what every value in config.example.yaml that must be filled in contains
PLACEHOLDER = "REPLACE"


#: the blockchains Circle's payment intents accept (PaymentMethodBlockchain.chain in its spec)
Chain = Literal[
    "ALGO", "ARB", "AVAX", "BASE", "BTC", "ETH", "HBAR", "NOBLE", "OP", "POLY", "SOL", "SUI", "XLM"
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _clean_secret(cls, v: object) -> object:
        """Secrets often come from files or env vars with a trailing newline: strip it, and
        refuse any other whitespace or control character (it would land in HTTP headers)."""
        if isinstance(v, SecretStr):
            text = v.get_secret_value().strip()
            if not text or any(c.isspace() or not c.isprintable() for c in text):
                raise ValueError("must be one word with no spaces or control characters")
            return SecretStr(text)
        return v


class TelegramSettings(_Section):
    token: SecretStr
    api_base: str = "https://api.telegram.org"
    long_poll_timeout: int = Field(default=50, ge=1, le=50)
    #: seconds between the end of a failed getUpdates and the next, doubling up to the cap
    backoff_initial: float = Field(default=1.0, gt=0)
    backoff_cap: float = Field(default=60.0, gt=0)
    conflict_backoff: float = Field(default=30.0, gt=0)
    #: /healthz answers 503 once getUpdates has not succeeded for this many seconds
    healthy_within: float = Field(default=120.0, gt=0)
    #: updates of different chats handled at once (one chat's are always one at a time)
    concurrent_chats: int = Field(default=32, ge=1, le=1000)
    #: updates held in memory at most while the store is slow; later ones wait in the
    #: update inbox (pre-checkout queries are always answered at once)
    max_updates_in_hand: int = Field(default=2000, ge=10, le=100_000)
    #: the payment methods Telegram users are offered (their buttons always read Stars, card,
    #: USDC); unset: every method enabled below. Telegram asks digital goods to be sold for
    #: Stars only. The list is per channel: WhatsApp has no Stars, so its own list (to come,
    #: `whatsapp.payment_methods`) must refuse `stars`.
    payment_methods: tuple[MethodName, ...] | None = None

    @field_validator("payment_methods", mode="before")
    @classmethod
    def _a_list(cls, v: object) -> object:
        if isinstance(v, str):  # `payment_methods: stars`
            raise ValueError("must be a list, e.g. [stars] or [stars, card, usdc]")
        return v

    @field_validator("payment_methods")
    @classmethod
    def _methods(cls, v: tuple[MethodName, ...] | None) -> tuple[MethodName, ...] | None:
        if v is None:
            return v
        if not v:
            raise ValueError(
                "must name at least one method (stars, card, usdc); leave it out to offer"
                " every enabled one"
            )
        twice = sorted({m for m in v if v.count(m) > 1})
        if twice:
            raise ValueError("names " + " and ".join(twice) + " more than once")
        return v

    @field_validator("token")
    @classmethod
    def _token_shape(cls, v: SecretStr) -> SecretStr:
        if not _TOKEN_RE.fullmatch(v.get_secret_value()):
            raise ValueError("does not look like a bot token from @BotFather (digits:secret)")
        return v

    @model_validator(mode="after")
    def _healthy_after_a_long_poll(self) -> TelegramSettings:
        # an idle long poll answers (and counts as a success) only every long_poll_timeout s
        if self.healthy_within <= self.long_poll_timeout:
            raise ValueError("healthy_within must be longer than long_poll_timeout")
        return self

    @field_validator("api_base")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_url(v)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=65536, ge=1024)
    #: seconds a client may take to send its request (headers and body); then 408 and closed
    read_timeout: float = Field(default=10.0, gt=0)
    #: open connections at most; further ones wait to be accepted
    max_connections: int = Field(default=200, ge=1)


class StoreSettings(_Section):
    path: Path = Path("itinerabot.sqlite3")
    #: days a sent message's outbox row is kept (for `orders show`), then deleted
    sent_messages_retention_days: float = Field(default=30.0, gt=0)
    #: days a webhook event id is remembered for de-duplication (Stripe retries for 3 days)
    webhook_ids_retention_days: float = Field(default=30.0, ge=4)


class PricingSettings(_Section):
    price: Decimal = Field(default=Decimal("10.00"), gt=0, le=Decimal("10000"))
    currency: Literal["USD"] = "USD"
    #: what `price` (and `stars.price`) is for: the whole document, or each traveller on it
    per: Literal["document", "traveller"] = "document"

    @field_validator("price")
    @classmethod
    def _cents(cls, v: Decimal) -> Decimal:
        if v != v.quantize(Decimal("0.01")):
            raise ValueError("must have at most two decimal places")
        return v.quantize(Decimal("0.01"))


class TripSettings(_Section):
    """What one itinerary may hold, and the timing rules between its flights."""

    #: flights on one document, over all legs
    max_flights: int = Field(default=16, ge=1, le=16)
    #: travellers on one document (names as in the passport)
    max_travellers: int = Field(default=9, ge=1, le=9)
    #: the least time on the ground between landing and a connecting flight or the next leg
    min_connection_minutes: int = Field(default=30, ge=0, le=720)


class PdfSettings(_Section):
    page_size: Literal["A4", "Letter"] = "A4"


class SenderSettings(_Section):
    per_chat_interval: float = Field(default=1.0, ge=0)
    per_chat_burst: int = Field(default=2, ge=1, le=5)
    global_rate: float = Field(default=30.0, gt=0)
    shutdown_grace: float = Field(default=10.0, ge=0)
    backoff_cap: float = Field(default=60.0, gt=0)
    #: seconds a message keeps being retried on transient errors before it is given up
    give_up_after: float = Field(default=86400.0, gt=0)


class StripeSettings(_Section):
    enabled: bool = True
    secret_key: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    api_base: str = "https://api.stripe.com"
    session_expiry: int = Field(default=3600, ge=1800, le=86400)
    max_network_retries: int = Field(default=2, ge=0, le=10)
    #: a second card payment of an order already paid: refunded at once ("automatic") or
    #: listed for `itinerabot orders refund` ("operator")
    refunds: Literal["automatic", "operator"] = "automatic"

    @field_validator("api_base")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_url(v)

    @property
    def livemode(self) -> bool:
        """True for a live-mode key (`sk_live_…`, `rk_live_…`): only live events may pay."""
        key = self.secret_key.get_secret_value() if self.secret_key is not None else ""
        return key.startswith(("sk_live_", "rk_live_"))

    @model_validator(mode="after")
    def _secrets_when_enabled(self) -> StripeSettings:
        if self.enabled:
            missing = [n for n in ("secret_key", "webhook_secret") if getattr(self, n) is None]
            if missing:
                raise ValueError(
                    "card payments are enabled but "
                    + " and ".join(f"{n} (or ${SECRET_ENV[('stripe', n)]})" for n in missing)
                    + " is missing"
                )
        return self


class CircleSettings(_Section):
    enabled: bool = True
    api_key: SecretStr | None = None
    base_url: str = "https://api-sandbox.circle.com"
    chain: Chain = "ETH"
    poll_interval: float = Field(default=30.0, gt=0)
    poll_window: float = Field(default=3600.0, gt=0)
    #: until a new intent's deposit address shows, it is checked this often (ahead of routine
    #: checks), for at most one poll_interval; unset: on the poll_interval grid from the start
    address_check_interval: float | None = Field(default=2.0, gt=0)
    #: after the window, open intents are still checked this often until they expire
    late_check_interval: float = Field(default=300.0, ge=1)
    #: how long after Circle's `expiresOn` an intent is still checked (a payment confirmed late)
    expiry_margin: float = Field(default=900.0, ge=0)
    #: the lifetime assumed for an intent whose `expiresOn` Circle has not shown (its default)
    intent_lifetime: float = Field(default=8 * 3600.0, gt=0)
    requests_per_second: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=10, ge=1, le=100)
    request_timeout: float = Field(default=10.0, gt=0)
    #: the SNS topic whose notifications are accepted: Circle's sandbox or production topic
    environment: Literal["sandbox", "prod"] = "sandbox"
    #: SNS signing certificates known in advance, by their SigningCertURL (which must still be
    #: on an Amazon SNS host): a PEM file each. For hosts that cannot reach Amazon, and the demo.
    sns_pinned_certificates: dict[str, Path] = {}

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_url(v)

    @model_validator(mode="after")
    def _key_when_enabled(self) -> CircleSettings:
        if self.enabled and self.api_key is None:
            raise ValueError(
                f"USDC payments are enabled but api_key (or ${SECRET_ENV[('circle', 'api_key')]})"
                " is missing"
            )
        if self.poll_window < self.poll_interval:
            raise ValueError("poll_window must be at least poll_interval")
        return self


class StarsSettings(_Section):
    """Telegram Stars (currency XTR): an invoice inside Telegram, paid in one tap."""

    enabled: bool = True
    #: the itinerary's price in whole Stars (Telegram takes 1 to 100000 per invoice): required
    #: when Stars are on (the default is only there for a switched-off section)
    price: int = Field(default=500, ge=1, le=STARS_MAX)
    #: a second Stars payment of an order already paid: refunded at once ("automatic") or
    #: listed for `itinerabot orders refund` ("operator")
    refunds: Literal["automatic", "operator"] = "automatic"

    @field_validator("price", mode="before")
    @classmethod
    def _not_yes_or_no(cls, v: object) -> object:
        # YAML reads `price: yes` as True, which pydantic would take as 1 Star
        if isinstance(v, bool):
            raise ValueError("must be a whole number of Stars")
        return v

    @model_validator(mode="after")
    def _priced(self) -> StarsSettings:
        # no price of its own would charge one the owner never chose
        if self.enabled and "price" not in self.model_fields_set:
            raise ValueError(
                "price is required when Stars are on: the itinerary's price in whole Stars"
                " (1-100000), e.g. price: 500"
            )
        return self


class ShopSettings(_Section):
    #: where travellers reach the shop (an e-mail address, a Telegram @username, a URL): told
    #: to a traveller who is owed money back, e.g. to give the address for a USDC refund
    support_contact: str | None = Field(default=None, min_length=3, max_length=200)


class LoggingSettings(_Section):
    format: Literal["text", "json"] = "text"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Settings(_Section):
    """The whole configuration; see config.example.yaml for every key."""

    telegram: TelegramSettings
    server: ServerSettings = ServerSettings()
    store: StoreSettings = StoreSettings()
    pricing: PricingSettings = PricingSettings()
    trips: TripSettings = TripSettings()
    pdf: PdfSettings = PdfSettings()
    sender: SenderSettings = SenderSettings()
    stripe: StripeSettings = StripeSettings(enabled=False)
    circle: CircleSettings = CircleSettings(enabled=False)
    stars: StarsSettings = StarsSettings(enabled=False)
    shop: ShopSettings = ShopSettings()
    logging: LoggingSettings = LoggingSettings()

    @model_validator(mode="after")
    def _one_payment_method(self) -> Settings:
        if not (self.stripe.enabled or self.circle.enabled or self.stars.enabled):
            raise ValueError(
                "no payment method is enabled: add a stars, stripe or circle section (a section"
                " that is present is enabled unless it says enabled: false)"
            )
        off = [m for m in self.telegram.payment_methods or () if m not in self.enabled_methods]
        if off:
            sections = " and ".join(_SECTION_OF[m] for m in off)
            raise ValueError(
                f"telegram.payment_methods: offers {' and '.join(off)}, but the {sections}"
                f" section{'s are' if len(off) > 1 else ' is'} missing or switched off"
                " (enabled: false)"
            )
        return self

    @model_validator(mode="after")
    def _stars_total_fits(self) -> Settings:
        # Telegram takes at most 100000 Stars per invoice, the whole party's price included
        most = self.stars.price * self.units(self.trips.max_travellers)
        if self.stars.enabled and most > STARS_MAX:
            raise ValueError(
                f"stars.price {self.stars.price} per traveller times trips.max_travellers"
                f" {self.trips.max_travellers} is {most} Stars: Telegram takes at most 100000"
                " per invoice"
            )
        return self

    def units(self, travellers: int) -> int:
        """How many times the price an itinerary with `travellers` travellers costs."""
        return travellers if self.pricing.per == "traveller" else 1

    @property
    def enabled_methods(self) -> tuple[PaymentMethod, ...]:
        """The payment methods whose section is enabled, Stars first."""
        on = {
            PaymentMethod.STARS: self.stars.enabled,
            PaymentMethod.CARD: self.stripe.enabled,
            PaymentMethod.USDC: self.circle.enabled,
        }
        return tuple(m for m, enabled in on.items() if enabled)

    @property
    def telegram_methods(self) -> tuple[PaymentMethod, ...]:
        """The payment methods Telegram users are offered: `telegram.payment_methods`, or
        every enabled one when it is unset."""
        listed = self.telegram.payment_methods
        if listed is None:
            return self.enabled_methods
        return tuple(PaymentMethod(m) for m in listed)

    def secrets(self) -> list[str]:
        """Every secret value, for the log redactor."""
        values = [
            self.telegram.token,
            self.stripe.secret_key,
            self.stripe.webhook_secret,
            self.circle.api_key,
        ]
        return [v.get_secret_value() for v in values if v is not None]


#: the config section that enables each payment method
_SECTION_OF = {"stars": "stars", "card": "stripe", "usdc": "circle"}


def _check_url(v: str) -> str:
    if not re.match(r"^https?://[^\s/]+", v):
        raise ValueError("must be an http:// or https:// URL")
    return v.rstrip("/")


def settings_from_mapping(raw: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Validate `raw` (the parsed YAML) with secrets from `env` taking precedence."""
    data: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in raw.items()}
    if data.get("telegram") is None:
        data["telegram"] = {}  # so a missing token is reported as telegram.token
    for (section, key), var in SECRET_ENV.items():
        value = env.get(var)
        if value:
            sect = data.setdefault(section, {})
            if isinstance(sect, dict):
                sect[key] = value
    # A payment section that is present is enabled unless it says otherwise (an empty
    # `stars:` in YAML is None: present, with every default).
    for section in ("stripe", "circle", "stars"):
        if section in data and data[section] is None:
            data[section] = {}
        if isinstance(data.get(section), dict):
            data[section].setdefault("enabled", True)
    unfilled = placeholders(data)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        others = [_describe(err) for err in exc.errors()]
        # a placeholder's own line says it best; its key's other complaints are left out
        keys = {line.partition(":")[0] for line in unfilled}
        raise ConfigError(
            unfilled + [line for line in others if line.partition(":")[0] not in keys]
        ) from None
    if unfilled:
        raise ConfigError(unfilled)
    return settings


def placeholders(data: Mapping[str, Any]) -> list[str]:
    """One line per value still holding the example's placeholder, in file order. A payment
    section switched off (`enabled: false`) is not looked at: its values are not used."""
    problems = []
    for section, values in data.items():
        if not isinstance(values, Mapping) or values.get("enabled") is False:
            continue
        for key, value in values.items():
            if isinstance(value, str) and PLACEHOLDER in value:
                env = SECRET_ENV.get((section, key))
                instead = f" (or set ${env})" if env else ""
                problems.append(
                    f"{section}.{key}: still holds the example's placeholder; fill it in{instead}"
                )
    return problems


def _describe(err: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = str(err.get("msg", "is invalid"))
    msg = msg.removeprefix("Value error, ")
    if err.get("type") == "missing":
        env = next((var for (s, k), var in SECRET_ENV.items() if f"{s}.{k}" == loc), None)
        msg = "is required" + (f" (in the file or as ${env})" if env else "")
    elif err.get("type") == "extra_forbidden":
        msg = "is not a known setting"
    # a check of the whole file names its keys in its own message
    return f"{loc}: {msg}" if loc else msg


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the YAML file at `path`. Raises ConfigError, never anything else."""
    env = os.environ if env is None else env
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot be read ({exc.__class__.__name__})"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError([f"{path}: is not valid YAML{where}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: the top level must be a mapping of sections"])
    return settings_from_mapping(raw, env)
