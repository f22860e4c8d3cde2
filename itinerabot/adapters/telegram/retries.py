"""When the sender tries a failed send again, and when it stops trying: pure rules, no I/O.

Transient failures are retried with capped exponential backoff until `give_up_after` seconds
have passed since the row's first failure; a refusal ends the row at once; a second send
without an answer ends it as unconfirmed (so a PDF goes out at most twice); a text caught in
flight by a stop goes out again up to MAX_INTERRUPTED_TEXT sends without an answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from itinerabot.errors import InvalidToken, PermanentServiceError, ServiceError
from itinerabot.store.outbox import Failures

#: sends without an answer after which a row is not sent again: one repeat at most
MAX_UNKNOWN_OUTCOMES = 2
#: for a message other than a PDF caught in flight by a stop: a bot killed twice in a row must
#: not leave a traveller without an answer, and a crash loop must not repeat it for ever
MAX_INTERRUPTED_TEXT = 4


@dataclass(frozen=True, slots=True)
class Ending:
    """How a row ends unsent: `failed` or `unconfirmed`, and the error the operator reads."""

    status: str
    error: str


def backoff(attempts: int, cap: float) -> float:
    """Seconds to wait after a row's `attempts`-th failed send: 1, 2, 4 … at most `cap`."""
    return min(cap, 2.0 ** min(max(attempts - 1, 0), 32))


def ending_after(
    exc: ServiceError,
    failures: Failures,
    now: datetime,
    give_up_after: float,
    max_unknown: int = MAX_UNKNOWN_OUTCOMES,
) -> Ending | None:
    """How a row ends after a failed send (`failures` includes it), or None to send again;
    `max_unknown` sends without an answer end it as unconfirmed."""
    # a refused token is the bot's problem, not the message's: keep the row until it is fixed
    if isinstance(exc, PermanentServiceError) and not isinstance(exc, InvalidToken):
        return Ending("failed", exc.message)
    if failures.unknown_outcomes >= max_unknown:
        return Ending(
            "unconfirmed",
            f"sent {failures.unknown_outcomes} times without an answer from Telegram, so it may"
            " have arrived (even twice) and is not sent again; check the chat and resend it"
            f" if it is missing (last: {exc.message})",
        )
    failing_for = (now - failures.first_failed_at).total_seconds()
    if failing_for >= give_up_after:
        return Ending(
            "failed",
            f"gave up after {failures.attempts} attempts in {failing_for:.0f} s: {exc.message}",
        )
    return None
