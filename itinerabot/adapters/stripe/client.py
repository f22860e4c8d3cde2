"""The Stripe adapter: build the `stripe.StripeClient` (async over httpx, so it runs under
trio), and convert stripe-python's errors into the project's tree (`itinerabot.errors`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import stripe

from itinerabot.config import StripeSettings
from itinerabot.errors import PermanentServiceError, ServiceError, TransientServiceError

SERVICE = "stripe"


def build_stripe_client(
    settings: StripeSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[stripe.StripeClient, stripe.HTTPXClient]:
    """The client and its HTTP client (close it with `await http.close_async()`)."""
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
    return PermanentServiceError(SERVICE, text, status=status)


@contextmanager
def stripe_errors(action: str) -> Iterator[None]:
    """Run Stripe calls inside; a `stripe.StripeError` leaves as `service_error(exc, action)`.

    Raises TransientServiceError or PermanentServiceError (from the Stripe error).
    """
    try:
        yield
    except stripe.StripeError as exc:
        raise service_error(exc, action) from exc
