"""Wiring of the payment methods into a running `serve`: their clients, webhook routes and
services. Each payment module stays unaware of the others and of the channel that carries
their messages: they get a `Notify` to wake it.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx

from itinerabot.clock import WallClock
from itinerabot.config import Settings
from itinerabot.messages import Notify
from itinerabot.payments.fulfilment import Fulfilment
from itinerabot.payments.methods import Payments, Service
from itinerabot.payments.usdc.pollers import PollerNursery
from itinerabot.store import Store
from itinerabot.web.app import WebApp

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


@dataclass
class Transports:
    """HTTP transports for the outside services; None means the real network (tests inject)."""

    telegram: httpx.AsyncBaseTransport | None = None
    circle: httpx.AsyncBaseTransport | None = None
    stripe: httpx.AsyncBaseTransport | None = None
    sns: httpx.AsyncBaseTransport | None = None


async def wire(
    stack: AsyncExitStack,
    *,
    settings: Settings,
    store: Store,
    app: WebApp,
    pollers: PollerNursery,
    fulfilment: Fulfilment,
    notify: Notify,
    clock: WallClock,
    transports: Transports,
    bot_username: str,
) -> Payments:
    """Build the enabled payment methods, register their routes; clients close with `stack`."""
    card = usdc = None
    services: list[tuple[str, Service]] = []
    if settings.stripe.enabled:
        from itinerabot.adapters.stripe.client import build_stripe_client
        from itinerabot.payments.card.checkout import CardPayments
        from itinerabot.payments.card.reconcile import SessionReconciler
        from itinerabot.payments.card.refund_service import CardRefunds
        from itinerabot.payments.card.webhook import StripeWebhook

        assert settings.stripe.webhook_secret is not None
        client, http = build_stripe_client(settings.stripe, transport=transports.stripe)
        stack.push_async_callback(http.close_async)
        card = CardPayments(store, client, fulfilment, settings.stripe, clock, bot_username)
        webhook = StripeWebhook(
            store,
            fulfilment,
            notify,
            settings.stripe.webhook_secret.get_secret_value(),
            clock,
            livemode=settings.stripe.livemode,
        )
        app.route("/webhooks/stripe", {"POST"}, webhook)
        # both always run: refunds pending at Stripe are looked up whoever asked for them
        automatic = settings.stripe.refunds == "automatic"
        refunder = CardRefunds(store, client, notify, clock, automatic=automatic)
        if automatic:
            fulfilment.extra_listeners.append(refunder.extra_payment)
        services.append(("card refunds", refunder.run))
        reconciler = SessionReconciler(
            store, client, fulfilment, notify, clock, livemode=settings.stripe.livemode
        )
        services.append(("card reconciler", reconciler.run))
    if settings.circle.enabled:
        from itinerabot.adapters.circle.client import CircleClient
        from itinerabot.adapters.circle.sns import CertificateCache
        from itinerabot.payments.usdc.late import LateWatcher
        from itinerabot.payments.usdc.poller import UsdcPoller
        from itinerabot.payments.usdc.refund_checks import UsdcRefundChecks
        from itinerabot.payments.usdc.tracker import IntentTracker
        from itinerabot.payments.usdc.usdc import UsdcPayments
        from itinerabot.payments.usdc.webhook import CircleWebhook

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
            store, circle, fulfilment, notify, clock, card_enabled=settings.stripe.enabled
        )
        poller = UsdcPoller(tracker, settings.circle.poll_interval)
        late = LateWatcher(tracker, settings.circle)
        usdc = UsdcPayments(tracker, poller, late, pollers, settings.circle)
        fulfilment.paid_listeners.append(usdc.order_paid)
        services.append(("circle late watcher", late.run))
        # refunds pending at Circle are looked up whoever asked for them (the operator's CLI)
        refund_checks = UsdcRefundChecks(store, circle, notify, clock)
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
