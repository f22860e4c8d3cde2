"""Build the `stripe.StripeClient` (async over httpx, so it runs under trio)."""

from __future__ import annotations

import httpx
import stripe

from itinerabot.config import StripeSettings


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
