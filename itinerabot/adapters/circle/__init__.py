"""Circle: USDC payment intents over Circle's v1 API, and Amazon SNS-delivered webhooks.

`status` parses Circle's JSON (pure), `budget` paces requests, `client` talks HTTP, `sns` verifies
webhook messages. `usdc` creates intents; `poller` (the 30 s window), `late` (after it) and
`webhook` watch them; `tracker` acts on what they see, `record` writes it; `refunds` sends
USDC back, `refund_checks` looks a pending refund up until Circle concludes it and
`refund_record` writes what Circle says of it. Errors raised here belong to the project tree
in `itinerabot.errors`:

    ServiceError
    ├── TransientServiceError
    │   ├── RateLimited
    │   └── MalformedResponse       Circle answered 2xx with a body that is not the expected JSON
    └── PermanentServiceError
        └── CircleApiError          Circle refused the request (4xx): Circle's `code`, `message`
    SnsVerificationError            (an ItinerabotError) an SNS message is refused: `reason`
"""

from __future__ import annotations

from itinerabot.adapters.circle.errors import (
    CircleApiError,
    MalformedResponse,
    SnsVerificationError,
)

__all__ = ["CircleApiError", "MalformedResponse", "SnsVerificationError"]
