"""Wiring of the payment methods into a running `serve`: webhook routes, chat actions, and
the pollers resumed at start-up. Each payment module stays unaware of the others.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx

from itinerabot.bot.handler import NoPayments, OutboxMessage
from itinerabot.bot.sender import Sender
from itinerabot.clock import WallClock
from itinerabot.config import Settings
from itinerabot.fulfilment import Fulfilment
from itinerabot.pollers import PollerNursery
from itinerabot.store import Store
from itinerabot.web.app import WebApp

if TYPE_CHECKING:
    from itinerabot.card.checkout import CardPayments
    from itinerabot.circle.usdc import UsdcPayments
    from itinerabot.runtime import Transports

log = logging.getLogger(__name__)

#: a long-running task of a payment method: `await nursery.start(service)`, reports started()
Service = Callable[..., Awaitable[None]]


@dataclass
class Payments:
    """The enabled payment methods, as the chat sees them."""

    card: CardPayments | None
    usdc: UsdcPayments | None
    #: (name, task) of each background service the methods need, started in the root nursery
    services: list[tuple[str, Service]] = field(default_factory=list)

    async def pay_by_card(self, chat_id: int, reference: str) -> Sequence[OutboxMessage]:
        if self.card is None:
            return await NoPayments().pay_by_card(chat_id, reference)
        return await self.card.pay_by_card(chat_id, reference)

    async def pay_with_usdc(self, chat_id: int, reference: str) -> Sequence[OutboxMessage]:
        if self.usdc is None:
            return await NoPayments().pay_with_usdc(chat_id, reference)
        return await self.usdc.pay_with_usdc(chat_id, reference)

    async def deep_link_return(self, chat_id: int, payload: str) -> Sequence[OutboxMessage]:
        if self.card is None:
            return await NoPayments().deep_link_return(chat_id, payload)
        return await self.card.deep_link_return(chat_id, payload)

    async def resume(self) -> None:
        """Bring back the pollers of intents still in their window when the process last
        stopped (the late watcher, a service, takes the others in its first round)."""
        if self.usdc is not None:
            await self.usdc.resume()


async def wire(
    stack: AsyncExitStack,
    *,
    settings: Settings,
    store: Store,
    app: WebApp,
    pollers: PollerNursery,
    fulfilment: Fulfilment,
    sender: Sender,
    clock: WallClock,
    transports: Transports,
    bot_username: str,
) -> Payments:
    """Build the enabled payment methods, register their routes; clients close with `stack`."""
    card = usdc = None
    services: list[tuple[str, Service]] = []
    if settings.stripe.enabled:
        from itinerabot.card.checkout import CardPayments
        from itinerabot.card.client import build_stripe_client
        from itinerabot.card.reconcile import SessionReconciler
        from itinerabot.card.refund_service import CardRefunds
        from itinerabot.card.webhook import StripeWebhook

        assert settings.stripe.webhook_secret is not None
        client, http = build_stripe_client(settings.stripe, transport=transports.stripe)
        stack.push_async_callback(http.close_async)
        card = CardPayments(store, client, fulfilment, settings.stripe, clock, bot_username)
        webhook = StripeWebhook(
            store,
            fulfilment,
            sender,
            settings.stripe.webhook_secret.get_secret_value(),
            clock,
            livemode=settings.stripe.livemode,
        )
        app.route("/webhooks/stripe", {"POST"}, webhook)
        # both always run: refunds pending at Stripe are looked up whoever asked for them
        automatic = settings.stripe.refunds == "automatic"
        refunder = CardRefunds(store, client, sender, clock, automatic=automatic)
        if automatic:
            fulfilment.extra_listeners.append(refunder.extra_payment)
        services.append(("card refunds", refunder.run))
        reconciler = SessionReconciler(
            store, client, fulfilment, sender, clock, livemode=settings.stripe.livemode
        )
        services.append(("card reconciler", reconciler.run))
    if settings.circle.enabled:
        from itinerabot.circle.client import CircleClient
        from itinerabot.circle.late import LateWatcher
        from itinerabot.circle.poller import UsdcPoller
        from itinerabot.circle.refund_checks import UsdcRefundChecks
        from itinerabot.circle.sns import CertificateCache
        from itinerabot.circle.tracker import IntentTracker
        from itinerabot.circle.usdc import UsdcPayments
        from itinerabot.circle.webhook import CircleWebhook

        circle = await stack.enter_async_context(
            CircleClient(settings.circle, transport=transports.circle, wall_clock=clock)
        )
        sns_http = await stack.enter_async_context(
            httpx.AsyncClient(transport=transports.sns, follow_redirects=False)
        )
        certs = CertificateCache(sns_http, now=clock)
        for url, path in settings.circle.sns_pinned_certificates.items():
            certs.pin(url, path.read_bytes())
        tracker = IntentTracker(
            store, circle, fulfilment, sender, clock, card_enabled=settings.stripe.enabled
        )
        poller = UsdcPoller(tracker, settings.circle.poll_interval)
        late = LateWatcher(tracker, settings.circle)
        usdc = UsdcPayments(tracker, poller, late, pollers, settings.circle)
        fulfilment.paid_listeners.append(usdc.order_paid)
        services.append(("circle late watcher", late.run))
        # refunds pending at Circle are looked up whoever asked for them (the operator's CLI)
        refund_checks = UsdcRefundChecks(store, circle, sender, clock)
        services.append(("circle refund checks", refund_checks.run))
        app.route(
            "/webhooks/circle",
            {"POST", "HEAD"},
            CircleWebhook(
                tracker,
                pollers,
                certs,
                sns_http,
                settings.circle.environment,
                # a day short of the time ids are remembered: no replay once one is pruned
                max_age=timedelta(days=settings.store.webhook_ids_retention_days - 1),
            ),
        )
    return Payments(card, usdc, services)
