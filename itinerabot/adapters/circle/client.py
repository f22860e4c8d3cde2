"""Circle's HTTP API for USDC payment intents: one HTTP port behind one request budget.

Every failure becomes a project error here, so the rest of the bot never sees HTTP details.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import trio

from itinerabot.adapters.circle.budget import Lane, RequestBudget
from itinerabot.adapters.circle.errors import SERVICE, CircleApiError, MalformedResponse
from itinerabot.adapters.circle.http import H11Pool, HttpPort, HttpxPort, RawResponse
from itinerabot.adapters.circle.status import (
    PaymentIntentView,
    PaymentView,
    RefundView,
    parse_payment_intent_response,
    parse_payment_response,
    parse_refund_response,
    unwrap_data,
)
from itinerabot.config import CircleSettings
from itinerabot.errors import ConfigError, RateLimited, TransientServiceError

log = logging.getLogger(__name__)

#: Seconds to wait after a 429 that has no usable Retry-After.
DEFAULT_RETRY_AFTER = 5.0
#: A Retry-After longer than this is cut to it: a bogus header must not stall payments for hours.
MAX_RETRY_AFTER = 600.0

# Circle ids are UUIDs; anything else would be spliced into the URL path, so refuse it.
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
_View = TypeVar("_View", PaymentIntentView, RefundView)


def _http_port(settings: CircleSettings, transport: httpx.AsyncBaseTransport | None) -> HttpPort:
    """The HTTP side of the client, with the key in its headers: our h11 pool on the real
    network, httpx over `transport` when one is given (tests, the sandbox). Raises
    ConfigError if the settings have no API key."""
    if settings.api_key is None:
        raise ConfigError(["circle.api_key: is required to talk to Circle"])
    headers = {
        "Authorization": f"Bearer {settings.api_key.get_secret_value()}",
        "Accept": "application/json",
    }
    if transport is None:
        return H11Pool(
            settings.base_url,
            headers=headers,
            timeout=settings.request_timeout,
            max_connections=settings.max_connections,
        )
    client = httpx.AsyncClient(
        base_url=settings.base_url,
        headers=headers,
        timeout=httpx.Timeout(settings.request_timeout),
        transport=transport,
    )
    return HttpxPort(client)


class CircleClient:
    """Talks to Circle's v1 API: payment intents (create, get, expire, refund), payments and
    notification subscriptions.

    Every request waits in the shared budget in the `lane` its caller names (see `Lane`).

    Raises, from every method: `RateLimited` (429; the shared budget is paused for
    `retry_after` seconds as well), `TransientServiceError` (5xx, network error, timeout),
    `MalformedResponse` (2xx with a body that is not the expected JSON; transient),
    `CircleApiError` (any other 4xx, with Circle's message and code).
    """

    def __init__(
        self,
        settings: CircleSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        budget: RequestBudget | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        create_attempts: int = 3,
        retry_backoff: float = 1.0,
    ) -> None:
        """Build the client; `budget` may be shared, otherwise one is made from the settings.

        `wall_clock` only turns an HTTP-date Retry-After into seconds. `create_attempts` and
        `retry_backoff` (doubling) govern the retries of `create_payment_intent`.
        Raises ConfigError if the settings have no API key.
        """
        if create_attempts < 1:
            raise ValueError("create_attempts must be at least 1")
        self.budget = budget or RequestBudget(
            settings.requests_per_second, settings.max_connections
        )
        self._wall_clock = wall_clock
        self._create_attempts = create_attempts
        self._retry_backoff = retry_backoff
        self._base_url = settings.base_url
        self._http = _http_port(settings, transport)

    def __repr__(self) -> str:
        return f"<CircleClient {self._base_url}>"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def create_payment_intent(
        self, *, idempotency_key: str, amount: Decimal, currency: str, chain: str, lane: Lane
    ) -> PaymentIntentView:
        """Create a transient payment intent settled in USD, payable on `chain`.

        `idempotency_key` (a UUID stored with the order first) makes a repeat return the same
        intent, so transient failures are retried `create_attempts` times in all, with doubling
        backoff (after a 429 the budget's pause is the wait). The answer has no deposit address
        yet: it shows up in later `get_payment_intent` results. Raises as the class says.
        """
        body = payment_intent_request(
            idempotency_key=idempotency_key, amount=amount, currency=currency, chain=chain
        )
        delay = self._retry_backoff
        for attempt in range(1, self._create_attempts + 1):
            try:
                data = await self._request("POST", "/v1/paymentIntents", lane, json=body)
                return parse_payment_intent_response(data)
            except TransientServiceError as exc:
                if attempt == self._create_attempts:
                    raise
                log.warning(
                    "creating Circle payment intent failed (attempt %d of %d), retrying: %s",
                    attempt,
                    self._create_attempts,
                    exc,
                )
                if not isinstance(exc, RateLimited):
                    await trio.sleep(delay)
                    delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    async def get_payment_intent(self, intent_id: str, *, lane: Lane) -> PaymentIntentView:
        """Fetch one payment intent: exactly one request, no retry (the poller's schedule retries).

        Raises as the class says; MalformedResponse also if Circle answers for another id.
        """
        data = await self._request("GET", f"/v1/paymentIntents/{_checked_id(intent_id)}", lane)
        return _about(parse_payment_intent_response(data), intent_id, "asked for payment intent")

    async def expire_payment_intent(self, intent_id: str, *, lane: Lane) -> PaymentIntentView:
        """Ask Circle to end an intent now (`POST /v1/paymentIntents/{id}/expire`), so no
        payment can land on it; returns the intent as Circle then shows it. One request, no
        retry. Raises as the class says: CircleApiError if Circle refuses (an intent that has
        already ended, for one), MalformedResponse also for an answer about another id.
        """
        data = await self._request(
            "POST", f"/v1/paymentIntents/{_checked_id(intent_id)}/expire", lane, json={}
        )
        return _about(parse_payment_intent_response(data), intent_id, "expired payment intent")

    async def refund_payment_intent(
        self,
        intent_id: str,
        *,
        idempotency_key: str,
        address: str,
        chain: str,
        amount: Decimal,
        lane: Lane,
    ) -> RefundView:
        """Send `amount` USDC paid on the intent back to `address` on `chain`
        (`POST /v1/paymentIntents/{id}/refund`, a crypto refund). One request, no retry:
        retrying with the same `idempotency_key` (a UUID) is safe. Raises as the class says.
        """
        body = crypto_refund_request(
            idempotency_key=idempotency_key, address=address, chain=chain, amount=amount
        )
        data = await self._request(
            "POST", f"/v1/paymentIntents/{_checked_id(intent_id)}/refund", lane, json=body
        )
        return parse_refund_response(data)

    async def get_refund(self, refund_id: str, *, lane: Lane) -> RefundView:
        """Fetch one crypto refund as it stands now (`GET /v1/payments/{id}` with the refund's
        id: Circle's CryptoPayment of type `refund`). One request, no retry. Raises as the
        class says; MalformedResponse also for an answer that is not that refund.
        """
        data = await self._request("GET", f"/v1/payments/{_checked_id(refund_id)}", lane)
        return _about(parse_refund_response(data), refund_id, "asked for refund")

    async def get_payment(self, payment_id: str, *, lane: Lane) -> PaymentView:
        """Fetch one crypto payment (for its `transactionHash`). One request, no retry."""
        return parse_payment_response(
            await self._request("GET", f"/v1/payments/{_checked_id(payment_id)}", lane)
        )

    async def create_subscription(
        self, endpoint: str, *, lane: Lane = Lane.TRAVELLER
    ) -> dict[str, Any]:
        """Subscribe `endpoint` (public https URL) to Circle's notifications; returns `data`.

        Circle then has Amazon SNS send a SubscriptionConfirmation to the endpoint. An
        operator's command, so a person waits on it: the TRAVELLER lane unless told.
        """
        data = await self._request(
            "POST", "/v1/notifications/subscriptions", lane, json={"endpoint": endpoint}
        )
        return unwrap_data(data)

    async def _request(
        self, method: str, path: str, lane: Lane, *, json: dict[str, Any] | None = None
    ) -> Any:
        """Send one request through the budget, in `lane`, and return its decoded JSON body."""
        async with self.budget.slot(lane):
            response = await self._http.request(method, path, json_body=json)
            if response.status == 429:
                retry_after = self._retry_after(response)
                self.budget.pause_until(trio.current_time() + retry_after)
                raise RateLimited(SERVICE, retry_after, _error_message(response))
        status = response.status
        if 200 <= status < 300:
            try:
                return response.json()
            except ValueError as exc:
                raise MalformedResponse(
                    f"{method} {path}: body is not JSON", status=status
                ) from exc
        if status >= 500:
            raise TransientServiceError(
                SERVICE, f"{method} {path}: {_error_message(response)}", status=status
            )
        raise CircleApiError(_error_message(response), status=status, code=_error_code(response))

    def _retry_after(self, response: RawResponse) -> float:
        value = response.headers.get("retry-after")
        seconds = parse_retry_after(value, now=self._wall_clock())
        return DEFAULT_RETRY_AFTER if seconds is None else min(seconds, MAX_RETRY_AFTER)


def payment_intent_request(
    *, idempotency_key: str, amount: Decimal, currency: str, chain: str
) -> dict[str, Any]:
    """The JSON body of `POST /v1/paymentIntents` for a fixed amount settled in USD."""
    if not amount.is_finite() or amount <= 0:
        raise ValueError("amount must be a positive number")
    cents = amount.quantize(Decimal("0.01"))
    if cents != amount:
        raise ValueError("amount must have at most two decimal places")
    return {
        "idempotencyKey": idempotency_key,
        "amount": {"amount": f"{cents:f}", "currency": currency},
        "settlementCurrency": "USD",
        "paymentMethods": [{"type": "blockchain", "chain": chain}],
        # Not in the OpenAPI schema (which allows extra properties); current docs send it.
        "type": "transient",
    }


def crypto_refund_request(
    *, idempotency_key: str, address: str, chain: str, amount: Decimal
) -> dict[str, Any]:
    """The JSON body of `POST /v1/paymentIntents/{id}/refund` (CryptoRefundCreationRequest):
    `amount` in USD (USDC is settled as USD) to `address` on `chain`."""
    if not amount.is_finite() or amount <= 0:
        raise ValueError("amount must be a positive number")
    cents = amount.quantize(Decimal("0.01"))
    if cents != amount:
        raise ValueError("amount must have at most two decimal places")
    if not address or not chain:
        raise ValueError("a crypto refund needs the destination address and chain")
    return {
        "idempotencyKey": idempotency_key,
        "destination": {"address": address, "chain": chain},
        # the source currency: what the intent settled in
        "amount": {"currency": "USD"},
        # what reaches the payer, in the currency they paid (USDC is Circle's "USD")
        "toAmount": {"amount": f"{cents:f}", "currency": "USD"},
    }


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _about(view: _View, asked: str, what: str) -> _View:
    """`view`, once sure it is about the object `asked` for. Raises MalformedResponse
    ("{what} {asked}, got {other id}") when Circle answered about another one."""
    if view.id != asked:
        raise MalformedResponse(f"{what} {asked}, got {view.id}")
    return view


def _checked_id(value: str) -> str:
    if not _ID_RE.fullmatch(value):
        raise ValueError(f"not a Circle id: {value!r}")
    return value


def _error_body(response: RawResponse) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_message(response: RawResponse) -> str:
    message = _error_body(response).get("message")
    if isinstance(message, str) and message:
        return message
    return f"HTTP {response.status}"


def _error_code(response: RawResponse) -> int | None:
    code = _error_body(response).get("code")
    return code if isinstance(code, int) and not isinstance(code, bool) else None
