"""`/webhooks/circle`: Circle's notifications, delivered by Amazon SNS.

HEAD answers 200 (Circle checks the endpoint). A POST is acted on only when its SNS signature
verifies against an Amazon-hosted certificate and its TopicArn is Circle's; repeated
MessageIds are ignored. A paid intent cancels its poller at once and is fulfilled.
"""

from __future__ import annotations

import logging
import sqlite3

import httpx

from itinerabot.circle.errors import MalformedResponse, SnsVerificationError
from itinerabot.circle.sns import CertificateCache, verify_sns_message
from itinerabot.circle.status import parse_payment_intent_notification
from itinerabot.circle.tracker import IntentTracker
from itinerabot.pollers import PollerNursery
from itinerabot.store import circle_intents as intents
from itinerabot.store import misc
from itinerabot.web.app import Request, Response

log = logging.getLogger(__name__)

SOURCE = "circle-sns"


def _seen(conn: sqlite3.Connection, message_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM webhook_events WHERE source = ? AND event_id = ?", (SOURCE, message_id)
    ).fetchone()
    return row is not None


class CircleWebhook:
    """The route handler; `http` fetches SubscribeURLs (and certificates, via `certs`)."""

    def __init__(
        self,
        tracker: IntentTracker,
        pollers: PollerNursery,
        certs: CertificateCache,
        http: httpx.AsyncClient,
        environment: str,
    ) -> None:
        self._tracker = tracker
        self._pollers = pollers
        self._certs = certs
        self._http = http
        self._environment = environment

    async def __call__(self, request: Request) -> Response:
        if request.method == "HEAD":
            return Response(200)
        try:
            msg = await verify_sns_message(
                request.body, environment=self._environment, certs=self._certs
            )
        except SnsVerificationError as exc:
            log.warning("circle webhook refused", extra={"reason": exc.reason})
            if exc.retryable:
                return Response.text(503, "cannot verify now; deliver again")
            return Response.text(400, "not a genuine notification")
        store = self._tracker.store
        if await store.run(_seen, msg.message_id):
            return Response.text(200, "already processed")
        if msg.type == "SubscriptionConfirmation":
            assert msg.subscribe_url is not None
            try:
                answer = await self._http.get(msg.subscribe_url, timeout=10.0)
            except httpx.HTTPError as exc:
                log.error(
                    "confirming the SNS subscription failed",
                    extra={"error": exc.__class__.__name__},
                )
                return Response.text(502, "confirmation failed; deliver again")
            if answer.status_code != 200:
                log.error(
                    "confirming the SNS subscription failed", extra={"status": answer.status_code}
                )
                return Response.text(502, "confirmation failed; deliver again")
            log.info("circle notifications subscription confirmed", extra={"topic": msg.topic_arn})
        elif msg.type == "Notification":
            try:
                view = parse_payment_intent_notification(msg.message)
            except MalformedResponse as exc:
                log.warning("circle notification not understood", extra={"error": exc.message})
                return Response.text(400, "malformed notification")
            if view is not None:
                row = await store.run(intents.by_intent_id, view.id)
                if row is None:
                    log.info(
                        "notification for an unknown payment intent", extra={"intent": view.id}
                    )
                else:
                    if view.outcome.is_final:
                        self._pollers.cancel(row.order_id)  # no further GETs for this intent
                    await self._tracker.observe(row.order_id, view, source="circle-webhook")
        await store.run(misc.record_event, SOURCE, msg.message_id, self._tracker.clock())
        return Response.text(200, "ok")
