"""`/healthz` and `/metrics`: what a supervisor and Prometheus ask of a running bot.

/healthz is 200 while the store answers and getUpdates has succeeded within
`telegram.healthy_within` seconds, else 503 with the reason; /metrics is Prometheus' text.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import trio

from itinerabot.errors import StoreError
from itinerabot.metrics import CONTENT_TYPE, OUTBOX_STATUSES, Live, Metrics
from itinerabot.store import Store
from itinerabot.store.gauges import outbox_counts
from itinerabot.web.app import Request, Response, WebApp

log = logging.getLogger(__name__)


class Polling(Protocol):
    """The long-poll loop, as health sees it."""

    def seconds_without_updates(self) -> float | None: ...

    @property
    def waiting(self) -> int: ...

    @property
    def parked(self) -> int: ...


class Pollers(Protocol):
    @property
    def running(self) -> int: ...


class UsdcChecks(Protocol):
    """USDC payments, as health sees them."""

    @property
    def check_interval(self) -> float: ...


#: seconds /healthz waits for the store to answer before it reports it unhealthy
STORE_PING_LIMIT = 2.0


class Sending(Protocol):
    @property
    def busy(self) -> int: ...

    @property
    def paced_chats(self) -> int: ...


class OpsRoutes:
    """The handlers of /healthz and /metrics over the live pieces of one `serve`."""

    def __init__(
        self,
        store: Store,
        longpoll: Polling,
        pollers: Pollers,
        sender: Sending,
        metrics: Metrics,
        *,
        healthy_within: float,
        usdc: UsdcChecks | None = None,
    ) -> None:
        self._store = store
        self._longpoll = longpoll
        self._pollers = pollers
        self._sender = sender
        self._metrics = metrics
        self._healthy_within = healthy_within
        self._usdc = usdc

    def register(self, app: WebApp) -> None:
        app.route("/healthz", {"GET", "HEAD"}, self.healthz)
        app.route("/metrics", {"GET"}, self.metrics)

    async def healthz(self, request: Request) -> Response:
        """200 when healthy; 503 with `reason` when the store does not answer or getUpdates
        has not succeeded for `healthy_within` seconds."""
        store_ok = False
        with trio.move_on_after(STORE_PING_LIMIT):  # a stalled store is unhealthy, not a hang
            store_ok = await self._store.ping()
        silent = self._longpoll.seconds_without_updates()
        reasons = [] if store_ok else ["the store does not answer"]
        if silent is not None and silent > self._healthy_within:
            reasons.append(
                f"getUpdates has not succeeded for {silent:.0f} s"
                f" (telegram.healthy_within: {self._healthy_within:g} s)"
            )
        body: dict[str, Any] = {
            "status": "unhealthy" if reasons else "ok",
            "store": store_ok,
            "seconds_since_get_updates": None if silent is None else round(silent, 3),
            "updates_waiting": self._longpoll.waiting,
            # kept in the update inbox while the store was slow, handed out as room frees up
            "updates_parked": self._longpoll.parked,
            "pollers": self._pollers.running,
            "sending_chats": self._sender.busy,
            "paced_chats": self._sender.paced_chats,
            # seconds between two checks of an open USDC intent (stretched when over budget)
            "usdc_check_interval": None
            if self._usdc is None
            else round(self._usdc.check_interval, 3),
        }
        if reasons:
            body["reason"] = "; ".join(reasons)
        return Response.json(503 if reasons else 200, body)

    async def metrics(self, request: Request) -> Response:
        """Every series in the Prometheus text format; the outbox gauge is left out (and the
        error logged) when the store does not answer."""
        outbox: dict[str, int] | None
        try:
            outbox = await self._store.run(outbox_counts, OUTBOX_STATUSES)
        except StoreError as exc:
            log.error("metrics: cannot count the outbox", extra={"error": str(exc)})
            outbox = None
        live = Live(outbox, self._pollers.running, self._longpoll.seconds_without_updates())
        return Response(200, self._metrics.render(live), CONTENT_TYPE)
