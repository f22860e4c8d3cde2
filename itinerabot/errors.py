"""The project's one exception tree, drawn here once. Adapters convert third-party errors
into it (`raise ... from exc`); the classes of one service live in its adapter's `errors`
module, named here by their path below `itinerabot`.

ItinerabotError
├── ConfigError                  bad or missing configuration (exit 2, one line per problem)
├── StoreError                   the SQLite store failed or has an unknown schema
│   └── StoreConstraintError     SQLite refused a write of ours (a constraint, a trigger):
│                                a bug in our data, not an outage; retrying fails again
├── adapters.circle.errors.SnsVerificationError
│                                a webhook message that is not a genuine SNS message
│                                (`retryable`: the certificate could not be fetched)
├── adapters.stripe.errors.StripeSignatureError
│                                a webhook body whose Stripe-Signature does not verify
├── payments.document.OrderNotPaid
│                                a PDF asked for an order that is not paid (a bug upstream)
├── operator.errors.Refused      an operator command cannot do what was asked (one sentence)
│   └── operator.errors.UnknownOrder   no order has the reference given
└── ServiceError                 a call to an outside service failed (`service`, `status`)
    ├── TransientServiceError    worth retrying: network, timeout, 5xx, 429, garbage body
    │   ├── RateLimited          the service asked us to wait `retry_after` seconds
    │   ├── OutcomeUnknown       the request may have reached the service; no answer came
    │   └── adapters.circle.errors.MalformedResponse
    │                            Circle's body is not the expected JSON
    └── PermanentServiceError    the service refused the request (4xx); retrying will not
        │                        help. Never raised for a bug of ours (that is a plain
        │                        exception: ValueError, RuntimeError, an assert)
        ├── InvalidToken         Telegram refused the bot token
        ├── Conflict             another instance is polling the same bot (409)
        ├── RecipientBlocked     the user blocked the bot or the chat is gone (403)
        ├── adapters.circle.errors.CircleApiError
        │                        Circle refused the request: its `code` and `message`
        └── adapters.stripe.errors.StripeApiError
                                 Stripe refused the request: its `code` and sentence

Telegram's classes are converted in `adapters.telegram.client.convert_error`, Stripe's in
`adapters.stripe.client`, httpx's (Circle, SNS) in `adapters.circle.http` and `sns`.
"""

from __future__ import annotations


class ItinerabotError(Exception):
    """Root of every error the project raises on purpose."""


class ConfigError(ItinerabotError):
    """Configuration is missing or invalid. `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class StoreError(ItinerabotError):
    """The store could not be opened, migrated or written."""


class StoreConstraintError(StoreError):
    """SQLite refused a write (a UNIQUE, CHECK or foreign key constraint, a trigger's ABORT):
    the data we wrote is wrong, so the same call fails again however often it is retried.
    Busy and I/O errors stay plain StoreError."""


class ServiceError(ItinerabotError):
    """A call to Telegram, Stripe or Circle failed. `service` names which."""

    def __init__(self, service: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.message = message
        self.status = status


class TransientServiceError(ServiceError):
    """A failure worth retrying later (network, timeout, 5xx, 429, unparseable body)."""


class RateLimited(TransientServiceError):
    """The service answered 429; wait `retry_after` seconds before the next call."""

    def __init__(self, service: str, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(service, message, status=429)
        self.retry_after = retry_after


class OutcomeUnknown(TransientServiceError):
    """The request may have reached the service, but its answer was lost (a read timeout or
    a connection broken after the request was sent). Repeating it may act twice."""


class PermanentServiceError(ServiceError):
    """The service refused the request (a 4xx other than 429): retrying will not fix it.
    Only for a service's refusal, never for a bug of ours."""


class InvalidToken(PermanentServiceError):
    """Telegram refused the bot token."""


class Conflict(PermanentServiceError):
    """Telegram answered 409: another getUpdates consumer or a webhook is set."""


class RecipientBlocked(PermanentServiceError):
    """Telegram answered 403: the user blocked the bot or the chat cannot be written to."""
