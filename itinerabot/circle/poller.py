"""`poll_usdc_payment`: check one payment intent every `poll_interval` seconds until it is
paid, ends, or the window closes, on trio's clock with no drift (checks at t0, t0+30, …).

A failed check (429, 5xx, timeout, garbage) is logged and the next tick comes as usual. On
a paid intent the poller leaves its scope first, then hands the order to fulfilment.
"""

from __future__ import annotations

import logging
import math
from functools import partial

import trio

from itinerabot.circle.status import Outcome, PaymentIntentView
from itinerabot.circle.tracker import IntentTracker
from itinerabot.errors import ServiceError, StoreError
from itinerabot.pollers import FollowUp

log = logging.getLogger(__name__)

NOT_CONFIRMED = (
    "We have not seen a confirmed USDC payment for order {reference} in time. If you have sent "
    "it, it will still be picked up once it is confirmed. Otherwise you can pay again:"
)


#: what a pending intent without an address shows: nothing to tell the chat yet
_NOTHING_TOLD = hash((None, Outcome.PENDING, None))


class UsdcPoller:
    """Runs the checks of one intent; started under the poller nursery."""

    def __init__(self, tracker: IntentTracker, interval: float) -> None:
        self._tracker = tracker
        self._interval = interval
        self.checks = 0  # across all intents, for tests and benchmarks

    async def check(self, intent_id: str) -> PaymentIntentView | None:
        """One GET of the intent; None (logged) if the check failed."""
        self.checks += 1
        try:
            return await self._tracker.client.get_payment_intent(intent_id)
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
        nursery (the window's end is `window_ended`).

        Checks at `first_check` (default: now) and every interval after it. Returns the
        hand-off to fulfilment when the intent is paid: the poller nursery runs it once this
        poller is finished, so no check of this intent can follow it.
        """
        tracker = self._tracker
        told = _NOTHING_TOLD
        tick = trio.current_time() if first_check is None else first_check
        await trio.sleep_until(tick)
        while True:
            view = await self.check(intent_id)
            if view is not None:
                if view.outcome == Outcome.PAID:
                    return partial(tracker.observe, order_id, view, source="circle-poller")
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
            tick = _next_tick(tick, self._interval, trio.current_time())
            await trio.sleep_until(tick)

    async def window_ended(self, order_id: int, intent_id: str) -> None:
        """The window closed unpaid: say so; the intent stays open to a late webhook."""
        log.warning(
            "USDC payment not confirmed in time",
            extra={"order_id": order_id, "intent": intent_id},
        )
        await self._tracker.tell(intent_id, "timed_out", order_id, NOT_CONFIRMED)

    async def final_check(self, order_id: int, intent_id: str) -> FollowUp:
        """One last check for an intent whose window passed while the bot was down."""
        view = await self.check(intent_id)
        if view is not None:
            await self._tracker.observe(order_id, view, source="circle-startup-check")
        return None


def _next_tick(tick: float, interval: float, now: float) -> float:
    """The next point of the grid tick + k·interval after `now` (ticks missed are skipped)."""
    tick += interval
    if tick < now:
        tick += math.ceil((now - tick) / interval) * interval
    return tick
