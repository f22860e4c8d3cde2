"""The bot's Prometheus metrics: counters and histograms recorded where things happen, and
gauges of state (outbox, pollers, getUpdates) read from the live runtime at scrape time.

Each `serve` owns one `Metrics` with its own `CollectorRegistry` (not prometheus_client's
global one: tests run many bots in one process). The two Circle series are module-level
collectors, added to every registry: the Circle client builds its HTTP port and its request
budget itself, so they record here rather than through an object passed in. In one `serve`
process that is the same figure; several bots in one process (tests) share them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: what `/metrics` answers with (the Prometheus text format, 0.0.4)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: outbox statuses shown as `itinerabot_outbox_messages{status=…}` (sent rows are history)
OUTBOX_STATUSES = ("pending", "failed", "unconfirmed")

#: Circle requests by HTTP status ("200", "429", "503" …) or error class ("timeout",
#: "network") when no answer came
CIRCLE_REQUESTS = Counter(
    "itinerabot_circle_requests",
    "Requests to Circle by HTTP status, or by error class when no answer came.",
    ["status"],
    registry=None,
)
#: seconds each Circle request waited in the shared request budget (rate, concurrency and
#: the pause after a 429) before it started
BUDGET_WAITS = Histogram(
    "itinerabot_circle_budget_wait_seconds",
    "Time a Circle request waited in the shared request budget before it started.",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600),
    registry=None,
)


class Recorder(Protocol):
    """What the services record into; `DISCARD` is the one that records nothing."""

    def update_handled(self) -> None: ...

    def telegram_answered(self, kind: str, seconds: float) -> None: ...

    def webhook_answered(self, webhook: str, outcome: str) -> None: ...


class _Discard:
    def update_handled(self) -> None:
        pass

    def telegram_answered(self, kind: str, seconds: float) -> None:
        pass

    def webhook_answered(self, webhook: str, outcome: str) -> None:
        pass


#: the default recorder of a service built without metrics (tests, the CLI, benchmarks)
DISCARD: Recorder = _Discard()


@dataclass(frozen=True, slots=True)
class Live:
    """The state gauges, read from the running pieces just before a scrape."""

    #: outbox rows by status; None when the store did not answer (the gauge is left out)
    outbox: Mapping[str, int] | None
    pollers_running: int
    #: seconds since the last getUpdates that succeeded; None before the first one
    since_get_updates: float | None


class _LiveCollector(Collector):
    """Turns the `Live` of the scrape under way into gauge families."""

    def __init__(self) -> None:
        self.live: Live | None = None

    def collect(self) -> Iterator[Metric]:
        live = self.live
        if live is None:
            return
        if live.outbox is not None:
            outbox = GaugeMetricFamily(
                "itinerabot_outbox_messages",
                "Outbox messages by status: pending (to send), failed and unconfirmed (ended"
                " unsent; the operator's to look at).",
                labels=["status"],
            )
            for status in OUTBOX_STATUSES:
                outbox.add_metric([status], live.outbox.get(status, 0))
            yield outbox
        yield GaugeMetricFamily(
            "itinerabot_pollers_running",
            "USDC payment pollers running (one per intent in its poll window).",
            value=live.pollers_running,
        )
        if live.since_get_updates is not None:
            yield GaugeMetricFamily(
                "itinerabot_get_updates_age_seconds",
                "Seconds since the last getUpdates that succeeded (since the long poll"
                " started, before the first).",
                value=live.since_get_updates,
            )


class Metrics:
    """One `serve`'s metrics: its registry, the series recorded by the services, and
    `render` for `/metrics`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._updates = Counter(
            "itinerabot_updates_handled",
            "Telegram updates handled (their effects committed with the offset).",
            registry=self.registry,
        )
        self._sends = Histogram(
            "itinerabot_telegram_send_seconds",
            "Time from the start of a Bot API call to Telegram's answer accepting it, by"
            " outbox kind (pacing and retries not included: see the outbox gauge).",
            ["kind"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self._webhooks = Counter(
            "itinerabot_webhook_results",
            "Webhook requests by webhook (stripe, circle) and outcome (accepted, duplicate,"
            " refused-signature, bad-request, retry-later, error).",
            ["webhook", "outcome"],
            registry=self.registry,
        )
        self._live = _LiveCollector()
        for collector in (CIRCLE_REQUESTS, BUDGET_WAITS, self._live):
            self.registry.register(collector)

    def update_handled(self) -> None:
        self._updates.inc()

    def telegram_answered(self, kind: str, seconds: float) -> None:
        self._sends.labels(kind).observe(seconds)

    def webhook_answered(self, webhook: str, outcome: str) -> None:
        self._webhooks.labels(webhook, outcome).inc()

    def render(self, live: Live) -> bytes:
        """The whole registry in the Prometheus text format, with `live` as its gauges."""
        # set and read with no checkpoint between: a concurrent scrape cannot mix them up
        self._live.live = live
        try:
            return generate_latest(self.registry)
        finally:
            self._live.live = None
