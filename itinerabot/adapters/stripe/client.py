"""The Stripe adapter: `StripeApi`, the calls the bot makes to Stripe (Checkout Sessions and
Refunds) answering Stripe's JSON, with stripe-python's errors converted into the project's
tree (`itinerabot.errors`); no module outside `adapters.stripe` sees a stripe-python error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import stripe

from itinerabot.adapters.stripe.errors import SERVICE, StripeApiError
from itinerabot.config import StripeSettings
from itinerabot.errors import ServiceError, TransientServiceError


def build_stripe_client(
    settings: StripeSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[stripe.StripeClient, stripe.HTTPXClient]:
    """stripe-python's client and its HTTP client (close it with `await http.close_async()`);
    wrap the client in `StripeApi` to call it."""
    assert settings.secret_key is not None
    http = stripe.HTTPXClient(timeout=20.0)
    if transport is not None:
        # stripe-python builds its own AsyncClient; tests and the sandbox swap the transport.
        http._client_async = httpx.AsyncClient(transport=transport)
    client = stripe.StripeClient(
        settings.secret_key.get_secret_value(),
        http_client=http,
        base_addresses={"api": settings.api_base},
        max_network_retries=settings.max_network_retries,
    )
    return client, http


def service_error(exc: stripe.StripeError, action: str) -> ServiceError:
    """The project's error for a failed Stripe call: transient for the network, 5xx, 429 and
    409 (a concurrent request with the same idempotency key), permanent for other refusals.

    The message is Stripe's own sentence (Stripe masks keys in it) with its error code.
    """
    status = exc.http_status
    message = exc.user_message or type(exc).__name__
    if exc.code:
        message = f"{message} ({exc.code})"
    text = f"{action}: {message}"
    if (
        isinstance(exc, stripe.APIConnectionError)
        or status is None
        or status >= 500
        or status in (409, 429)
    ):
        return TransientServiceError(SERVICE, text, status=status)
    return StripeApiError(text, status=status, code=exc.code)


@contextmanager
def stripe_errors(action: str) -> Iterator[None]:
    """Run Stripe calls inside; a `stripe.StripeError` leaves as `service_error(exc, action)`.

    Raises TransientServiceError or PermanentServiceError (from the Stripe error).
    """
    try:
        yield
    except stripe.StripeError as exc:
        raise service_error(exc, action) from exc


class StripeApi:
    """The Stripe calls the bot makes. Each answers Stripe's JSON object as a dict.

    Every method raises TransientServiceError (network, 5xx, 409, 429: ask again) or
    StripeApiError, a PermanentServiceError (Stripe refused the request).
    """

    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    async def create_checkout_session(
        self, params: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """Create a Checkout Session; the same key within 24 h answers the same session."""
        with stripe_errors("creating a checkout session"):
            session = await self._client.v1.checkout.sessions.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        return session.to_dict()

    async def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        """The Checkout Session `session_id` as Stripe has it now."""
        with stripe_errors("retrieving a checkout session"):
            session = await self._client.v1.checkout.sessions.retrieve_async(session_id)
        return session.to_dict()

    async def create_refund(
        self, params: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """Create a refund; the same key within 24 h answers the same refund."""
        with stripe_errors("refunding a card payment"):
            refund = await self._client.v1.refunds.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        return refund.to_dict()

    async def list_refunds(
        self, payment_intent: str, *, limit: int, starting_after: str | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of the refunds of `payment_intent` (after `starting_after`), and whether
        Stripe has more."""
        params: dict[str, Any] = {"payment_intent": payment_intent, "limit": limit}
        if starting_after is not None:
            params["starting_after"] = starting_after
        with stripe_errors("looking up the refunds of a card payment"):
            page = await self._client.v1.refunds.list_async(params)  # type: ignore[arg-type]
        return [item.to_dict() for item in page.data], bool(page.has_more)

    async def retrieve_refund(self, refund_id: str) -> dict[str, Any]:
        """The refund `refund_id` as Stripe has it now."""
        with stripe_errors("retrieving a card refund"):
            refund = await self._client.v1.refunds.retrieve_async(refund_id)
        return refund.to_dict()
