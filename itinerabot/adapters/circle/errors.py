"""Exceptions raised by the Circle adapter, placed in the project tree of `itinerabot.errors`.

A garbage body is transient: a poller treats it as one failed check and tries again next tick.
"""

from __future__ import annotations

from itinerabot.errors import ItinerabotError, PermanentServiceError, TransientServiceError

SERVICE = "circle"


class MalformedResponse(TransientServiceError):
    """Circle (or a proxy in front of it) answered with a body that is not the expected JSON.

    Transient on purpose: an HTML error page or a truncated body from a proxy usually goes away,
    and a poller must count it as one failed check, not as the end of the payment.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(SERVICE, message, status=status)


class CircleApiError(PermanentServiceError):
    """Circle refused the request with a 4xx other than 429.

    `message` is Circle's own `message` (or a description when the body has none), `code` is
    Circle's numeric `code` if it sent one, `status` the HTTP status.
    """

    def __init__(self, message: str, *, status: int, code: int | None = None) -> None:
        super().__init__(SERVICE, message, status=status)
        self.code = code


class SnsVerificationError(ItinerabotError):
    """An Amazon SNS message failed verification; `reason` says why, in one line.

    `retryable` is true only when the signing certificate could not be fetched because of a
    network error, a timeout or a 5xx from Amazon: the message may be genuine, so the webhook
    should answer 5xx and let SNS deliver it again. Everything else is a refusal (4xx).
    """

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(f"SNS message refused: {reason}")
        self.reason = reason
        self.retryable = retryable
