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
    from itinerabot.payments.card.checkout import CardPayments, ReturnLink
    from itinerabot.payments.usdc.tracker import IntentTracker
    from itinerabot.payments.usdc.usdc import UsdcPayments

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
    return_link: ReturnLink,
) -> Payments:
    """Build the enabled payment methods, register their routes; clients close with `stack`."""
    parts = _Parts(stack, settings, store, app, fulfilment, notify, clock, transports)
    payments = Payments()
    if settings.stripe.enabled:
        payments.card = _wire_card(parts, payments.services, return_link)
    if settings.circle.enabled:
        payments.usdc = await _wire_usdc(parts, payments.services, pollers)
    return payments


@dataclass(frozen=True)
class _Parts:
    """What every payment method is built from."""

    stack: AsyncExitStack
    settings: Settings
    store: Store
    app: WebApp
    fulfilment: Fulfilment
    notify: Notify
    clock: WallClock
    transports: Transports


def _wire_card(
    parts: _Parts, services: list[tuple[str, Service]], return_link: ReturnLink
) -> CardPayments:
    """Card payments: the Stripe client, the webhook route, refunds and the reconciler."""
    from itinerabot.adapters.stripe.client import StripeApi, build_stripe_client
    from itinerabot.payments.card.checkout import CardPayments
    from itinerabot.payments.card.reconcile import SessionReconciler
    from itinerabot.payments.card.refund_service import CardRefunds
    from itinerabot.payments.card.webhook import StripeWebhook

    settings, store, clock = parts.settings.stripe, parts.store, parts.clock
    assert settings.webhook_secret is not None
    sdk, http = build_stripe_client(settings, transport=parts.transports.stripe)
    parts.stack.push_async_callback(http.close_async)
    client = StripeApi(sdk)
    webhook = StripeWebhook(
        store,
        parts.fulfilment,
        parts.notify,
        settings.webhook_secret.get_secret_value(),
        clock,
        livemode=settings.livemode,
    )
    parts.app.route("/webhooks/stripe", {"POST"}, webhook)
    # both always run: refunds pending at Stripe are looked up whoever asked for them
    automatic = settings.refunds == "automatic"
    refunder = CardRefunds(store, client, parts.notify, clock, automatic=automatic)
    if automatic:
        parts.fulfilment.extra_listeners.append(refunder.extra_payment)
    services.append(("card refunds", refunder.run))
    reconciler = SessionReconciler(
        store, client, parts.fulfilment, parts.notify, clock, livemode=settings.livemode
    )
    services.append(("card reconciler", reconciler.run))
    return CardPayments(store, client, parts.fulfilment, settings, clock, return_link)


async def _wire_usdc(
    parts: _Parts, services: list[tuple[str, Service]], pollers: PollerNursery
) -> UsdcPayments:
    """USDC payments: the Circle client, the pollers' parts, the late watcher, refund
    checks and the SNS webhook route."""
    from itinerabot.adapters.circle.client import CircleClient
    from itinerabot.payments.usdc.late import LateWatcher
    from itinerabot.payments.usdc.poller import UsdcPoller
    from itinerabot.payments.usdc.refund_checks import UsdcRefundChecks
    from itinerabot.payments.usdc.tracker import IntentTracker
    from itinerabot.payments.usdc.usdc import UsdcPayments

    settings, store, clock = parts.settings.circle, parts.store, parts.clock
    circle = await parts.stack.enter_async_context(
        CircleClient(settings, transport=parts.transports.circle, wall_clock=clock)
    )
    tracker = IntentTracker(
        store,
        circle,
        parts.fulfilment,
        parts.notify,
        clock,
        card_enabled=parts.settings.stripe.enabled,
    )
    poller = UsdcPoller(
        tracker, circle, settings.poll_interval, address_interval=settings.address_check_interval
    )
    late = LateWatcher(tracker, store, circle, clock, settings)
    usdc = UsdcPayments(store, circle, clock, poller, late, pollers, settings)
    parts.fulfilment.paid_listeners.append(usdc.order_paid)
    services.append(("circle late watcher", late.run))
    # refunds pending at Circle are looked up whoever asked for them (the operator's CLI)
    refund_checks = UsdcRefundChecks(store, circle, parts.notify, clock)
    services.append(("circle refund checks", refund_checks.run))
    await _route_circle_webhook(parts, tracker, pollers)
    return usdc


async def _route_circle_webhook(
    parts: _Parts, tracker: IntentTracker, pollers: PollerNursery
) -> None:
    """`/webhooks/circle`, with its own HTTP client for SNS certificates and subscriptions."""
    from itinerabot.adapters.circle.sns import CertificateCache
    from itinerabot.payments.usdc.webhook import CircleWebhook

    settings = parts.settings
    sns_http = await parts.stack.enter_async_context(
        httpx.AsyncClient(transport=parts.transports.sns, follow_redirects=False)
    )
    certs = CertificateCache(sns_http, now=parts.clock)
    for url, path in settings.circle.sns_pinned_certificates.items():
        certs.pin(url, path.read_bytes())
    webhook = CircleWebhook(
        tracker,
        parts.store,
        parts.clock,
        pollers,
        certs,
        sns_http,
        settings.circle.environment,
        # a day short of the time ids are remembered: no replay once one is pruned
        max_age=timedelta(days=settings.store.webhook_ids_retention_days - 1),
    )
    parts.app.route("/webhooks/circle", {"POST", "HEAD"}, webhook)
