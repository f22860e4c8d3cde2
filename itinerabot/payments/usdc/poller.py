"""`poll_usdc_payment`: check one payment intent every `poll_interval` seconds until it is
paid, ends, or the window closes, on trio's clock with no drift (checks at t0, t0+30, …).

A failed check (429, 5xx, timeout, garbage) is logged and the next tick comes as usual. On
a paid intent the poller leaves its scope first, then hands the order to fulfilment, retrying
the hand-off until it commits. When the window closes, the late watcher takes the intent over.
"""

from __future__ import annotations

import logging
from functools import partial

import trio

from itinerabot.adapters.circle.client import CircleClient
from itinerabot.adapters.circle.status import Outcome, PaymentIntentView
from itinerabot.errors import ServiceError, StoreError, TransientServiceError
from itinerabot.payments.rounds import next_tick
from itinerabot.payments.usdc.pollers import FollowUp
from itinerabot.payments.usdc.tracker import IntentTracker

log = logging.getLogger(__name__)

#: the hand-off of a paid intent is retried after 1, 2, 4 … seconds, at most this far apart
HAND_OFF_BACKOFF = 1.0
HAND_OFF_BACKOFF_CAP = 60.0


#: what a pending intent without an address shows: nothing to tell the chat yet
_NOTHING_TOLD = hash((None, Outcome.PENDING, None))


class UsdcPoller:
    """Runs the checks of one intent; started under the poller nursery."""

    def __init__(self, tracker: IntentTracker, client: CircleClient, interval: float) -> None:
        self._tracker = tracker
        self._client = client
        self._interval = interval
        self.checks = 0  # across all intents, for tests and benchmarks

    async def check(self, intent_id: str) -> PaymentIntentView | None:
        """One GET of the intent; None (logged) if the check failed."""
        self.checks += 1
        try:
            return await self._client.get_payment_intent(intent_id)
        except ServiceError as exc:
            log.warning(
                "payment intent check failed; next tick as usual",
                extra={"intent": intent_id, "error": exc.message},
            )
            return None

    async def poll_usdc_payment(
        self, order_id: int, intent_id: str, first_check: float | None = None
    ) -> FollowUp:
        """Poll `intent_id` until it is paid or ends; run inside its window by the poller
        nursery (at the window's end the late watcher's `take_over` runs).

        Checks at `first_check` (default: now) and every interval after it. Returns the
        hand-off to fulfilment when the intent is paid: the poller nursery runs it once this
        poller is finished, so no check of this intent can follow it.
        """
        tracker = self._tracker
        told = _NOTHING_TOLD
        origin, k = trio.current_time() if first_check is None else first_check, 0
        await trio.sleep_until(origin)
        while True:
            view = await self.check(intent_id)
            if view is not None:
                if view.outcome == Outcome.PAID:
                    return partial(self.hand_off, order_id, view)
                # only a change is worth a trip to the store; a sleeping poller keeps just
                # the hash of what it last saw (10 000 of them sleep at once)
                news = hash((view.address, view.outcome, view.amount_paid))
                if news != told:
                    try:
                        seen = await tracker.observe(order_id, view, source="circle-poller")
                    except StoreError as exc:  # this tick is lost, not the poller
                        log.error("store error while polling", extra={"error": str(exc)})
                        seen, news = Outcome.PENDING, told
                    if seen is None or seen.is_final:
                        return None  # paid another way, gone, expired or failed: done
                    told = news
            view = None  # a sleeping poller keeps no answer alive
            k = next_tick(origin, k, self._interval, trio.current_time())
            await trio.sleep_until(origin + k * self._interval)

    async def hand_off(self, order_id: int, view: PaymentIntentView) -> None:
        """Record a paid intent's payment, retried with capped backoff until it commits.

        A store or transient failure is logged and tried again; the intent stays open in the
        store meanwhile, so a shutdown here leaves it to the restart (or the late watcher).
        """
        tracker = self._tracker
        payment = await tracker.payment_of(view)
        delay = HAND_OFF_BACKOFF
        while True:
            try:
                await tracker.record_paid(order_id, view.id, payment, source="circle-poller")
                return
            except (StoreError, TransientServiceError) as exc:
                log.warning(
                    "recording a paid USDC intent failed; retrying",
                    extra={"intent": view.id, "error": str(exc), "retry_in": delay},
                )
            await trio.sleep(delay)
            delay = min(delay * 2, HAND_OFF_BACKOFF_CAP)
