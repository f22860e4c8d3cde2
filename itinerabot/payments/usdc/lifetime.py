"""How long an open payment intent is watched: until Circle's `expiresOn` plus a margin.

Pure: no I/O, no clock. When Circle has not shown `expiresOn` yet, the intent's creation plus
Circle's default lifetime (8 hours) stands in for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from itinerabot.config import CircleSettings


@dataclass(frozen=True, slots=True)
class Lifetime:
    """`intent_lifetime` and `expiry_margin` in seconds (see CircleSettings)."""

    intent_lifetime: float
    expiry_margin: float

    @classmethod
    def of(cls, settings: CircleSettings) -> Lifetime:
        return cls(settings.intent_lifetime, settings.expiry_margin)

    def expires(self, expires_on: datetime | None, created_at: datetime) -> datetime:
        """When Circle stops taking payments on the intent."""
        if expires_on is not None:
            return expires_on
        return created_at + timedelta(seconds=self.intent_lifetime)

    def watch_until(self, expires_on: datetime | None, created_at: datetime) -> datetime:
        """The last moment the intent is still checked (a payment confirmed just in time
        shows up a little after `expiresOn`, hence the margin)."""
        return self.expires(expires_on, created_at) + timedelta(seconds=self.expiry_margin)
