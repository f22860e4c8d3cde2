"""Exceptions raised by the Stripe adapter, placed in the project tree of `itinerabot.errors`.

A refusal keeps Stripe's error code; a webhook whose signature fails is refused, not retried.
"""

from __future__ import annotations

from itinerabot.errors import ItinerabotError, PermanentServiceError

SERVICE = "stripe"


class StripeApiError(PermanentServiceError):
    """Stripe refused the request (a 4xx other than 409 and 429).

    `message` is Stripe's own sentence (Stripe masks keys in it) with its code, `code` is
    Stripe's error code (`resource_missing` …) if it sent one, `status` the HTTP status.
    """

    def __init__(self, message: str, *, status: int | None, code: str | None = None) -> None:
        super().__init__(SERVICE, message, status=status)
        self.code = code


class StripeSignatureError(ItinerabotError):
    """A webhook body whose `Stripe-Signature` does not verify with our secret (or is older
    than the tolerance): not Stripe's, or replayed. `reason` says which, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Stripe webhook refused: {reason}")
        self.reason = reason
