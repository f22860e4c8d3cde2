"""Stripe's webhook signature: the `Stripe-Signature` header checked against the raw body
with the endpoint's secret, within stripe-python's default tolerance (300 s).
"""

from __future__ import annotations

import stripe

from itinerabot.adapters.stripe.errors import StripeSignatureError


def verify_signature(body: bytes, header: str, secret: str) -> None:
    """Check that Stripe signed `body` with `secret` (and not too long ago).

    Raises StripeSignatureError if it did not, UnicodeDecodeError (a ValueError) if the body
    is not UTF-8.
    """
    try:
        stripe.WebhookSignature.verify_header(
            body, header, secret, stripe.Webhook.DEFAULT_TOLERANCE
        )
    except stripe.SignatureVerificationError as exc:
        raise StripeSignatureError(str(exc.user_message or "bad signature")) from exc
