"""Ask Stripe, Circle or Telegram for a stored refund, with clients built from the config as
`serve` builds them (Telegram's is opened by the caller: the operator's layer knows no
channel).
"""

from __future__ import annotations

from itinerabot.adapters.circle.client import CircleClient
from itinerabot.adapters.stripe.client import StripeApi, build_stripe_client
from itinerabot.clock import WallClock
from itinerabot.config import Settings
from itinerabot.models import PaymentMethod
from itinerabot.payments.card.refunds import refund_card
from itinerabot.payments.stars.refunds import OpenStarRefunds, refund_stars
from itinerabot.payments.usdc.refunds import refund_usdc
from itinerabot.store import Store
from itinerabot.store.money import Refund


async def ask_provider(
    store: Store,
    settings: Settings,
    refund: Refund,
    *,
    address: str | None,
    chain: str | None,
    clock: WallClock,
    telegram: OpenStarRefunds | None = None,
) -> Refund:
    """Ask the refund's provider, record its answer and return the refund as recorded.

    `address` and `chain` (the traveller's) are required for a USDC refund, `telegram` (it
    opens a Telegram client) for a Stars one. Raises TransientServiceError when the provider
    gave no usable answer (the refund stays requested: ask again), StoreError if the store
    fails.
    """
    if refund.method == PaymentMethod.CARD:
        client, http = build_stripe_client(settings.stripe)
        try:
            return await refund_card(store, StripeApi(client), refund, clock)
        finally:
            await http.close_async()  # type: ignore[no-untyped-call]
    if refund.method == PaymentMethod.STARS:
        if telegram is None:
            raise ValueError("a Stars refund needs a Telegram client")
        async with telegram() as bot_api:
            return await refund_stars(store, bot_api, refund, clock)
    if address is None or chain is None:
        raise ValueError("a USDC refund needs the traveller's address and chain")
    async with CircleClient(settings.circle) as circle:
        return await refund_usdc(store, circle, refund, address=address, chain=chain, clock=clock)
