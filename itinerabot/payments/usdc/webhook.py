"""`/webhooks/circle`: Circle's notifications, delivered by Amazon SNS.

HEAD answers 200 (Circle checks the endpoint). A POST is acted on only when its SNS signature
verifies against an Amazon-hosted certificate and its TopicArn is Circle's; repeated
MessageIds are ignored. What the intent shows is recorded first; only then is its poller
stopped. A failure to record answers 503, so SNS delivers the message again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx

from itinerabot.adapters.circle.errors import MalformedResponse, SnsVerificationError
from itinerabot.adapters.circle.sns import CertificateCache, SnsMessage, verify_sns_message
from itinerabot.adapters.circle.status import parse_payment_intent_notification
from itinerabot.clock import WallClock
from itinerabot.errors import StoreError, TransientServiceError
from itinerabot.payments.usdc.pollers import PollerNursery
from itinerabot.payments.usdc.tracker import IntentTracker
from itinerabot.store import Store, misc
from itinerabot.store import circle_intents as intents
from itinerabot.store.circle_intents import IntentStatus
from itinerabot.web.app import Outcome, Request, Response

log = logging.getLogger(__name__)

SOURCE = "circle-sns"


class CircleWebhook:
    """The route handler; `http` fetches SubscribeURLs (and certificates, via `certs`)."""

    def __init__(
        self,
        tracker: IntentTracker,
        store: Store,
        clock: WallClock,
        pollers: PollerNursery,
        certs: CertificateCache,
        http: httpx.AsyncClient,
        environment: str,
        *,
        max_age: timedelta | None = None,
    ) -> None:
        """`max_age`: messages signed longer ago are refused (set it below the time MessageIds
        are remembered, so a captured message cannot be replayed once its id is pruned)."""
        self._tracker = tracker
        self._store = store
        self._clock = clock
        self._pollers = pollers
        self._certs = certs
        self._http = http
        self._environment = environment
        self._max_age = max_age

    async def __call__(self, request: Request) -> Response:
        if request.method == "HEAD":
            return Response(200)
        try:
            msg = await verify_sns_message(
                request.body,
                environment=self._environment,
                certs=self._certs,
                max_age=self._max_age,
            )
        except SnsVerificationError as exc:
            log.warning("circle webhook refused", extra={"reason": exc.reason})
            if exc.retryable:
                return Response.text(503, "cannot verify now; deliver again")
            return Response.text(
                400, "not a genuine notification", outcome=Outcome.REFUSED_SIGNATURE
            )
        try:
            return await self._take(msg)
        except (StoreError, TransientServiceError) as exc:
            log.error(
                "circle notification not recorded; SNS will deliver it again",
                extra={"message_id": msg.message_id, "error": str(exc)},
            )
            return Response.text(503, "cannot record now; deliver again")

    async def _take(self, msg: SnsMessage) -> Response:
        """Act on a genuine message once. Raises StoreError or TransientServiceError when it
        could not be recorded (its MessageId is then not remembered either)."""
        if await self._store.run(intents.event_seen, SOURCE, msg.message_id):
            return Response.text(200, "already processed", outcome=Outcome.DUPLICATE)
        refused = None
        if msg.type == "SubscriptionConfirmation":
            refused = await self._confirm_subscription(msg)
        elif msg.type == "Notification":
            refused = await self._notification(msg)
        if refused is not None:
            return refused
        await self._store.run(misc.record_event, SOURCE, msg.message_id, self._clock())
        return Response.text(200, "ok")

    async def _confirm_subscription(self, msg: SnsMessage) -> Response | None:
        """GET the SubscribeURL; None when confirmed, else 502 (SNS delivers it again)."""
        assert msg.subscribe_url is not None
        try:
            answer = await self._http.get(msg.subscribe_url, timeout=10.0)
        except httpx.HTTPError as exc:
            log.error(
                "confirming the SNS subscription failed", extra={"error": exc.__class__.__name__}
            )
            return Response.text(502, "confirmation failed; deliver again")
        if answer.status_code != 200:
            log.error(
                "confirming the SNS subscription failed", extra={"status": answer.status_code}
            )
            return Response.text(502, "confirmation failed; deliver again")
        log.info("circle notifications subscription confirmed", extra={"topic": msg.topic_arn})
        return None

    async def _notification(self, msg: SnsMessage) -> Response | None:
        """Record what a notification shows of one of our intents (then its poller stops if
        it ended); None when taken (also: not an intent, or not ours), 400 if malformed.
        Raises StoreError or TransientServiceError."""
        try:
            view = parse_payment_intent_notification(msg.message)
        except MalformedResponse as exc:
            log.warning("circle notification not understood", extra={"error": exc.message})
            return Response.text(400, "malformed notification")
        if view is None:
            return None
        row = await self._store.run(intents.by_intent_id, view.id)
        if row is None:
            log.info("notification for an unknown payment intent", extra={"intent": view.id})
            return None
        await self._tracker.observe(row.order_id, view, source="circle-webhook")
        if view.outcome.is_final and row.status == IntentStatus.POLLING:
            # recorded: this intent's poller has nothing left to find
            self._pollers.cancel(row.order_id)
        return None
