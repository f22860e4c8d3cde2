"""`poll_usdc_payment`: check one payment intent until it is paid, ends, or the window closes:
first quickly, ahead of routine checks, until its deposit address shows, then on a drift-free
grid of trio's clock every `check_interval` (30 s, stretched evenly for every intent when the
request budget cannot keep them all on it).

A failed check (429, 5xx, timeout, garbage) is logged and the next tick comes as usual. On
a paid intent the poller leaves its scope first, then hands the order to fulfilment, retrying
the hand-off until it commits. When the window closes, the late watcher takes the intent over.
"""

from __future__ import annotations

import logging
from functools import partial

import trio

from itinerabot.adapters.circle.budget import Lane
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


class _Watch:
    """What one poller has told its chat so far (a sleeping poller keeps just this: 10 000
    of them sleep at once); `done` is set once the poller has nothing left to do."""

    __slots__ = ("address_shown", "done", "follow_up", "told")

    def __init__(self) -> None:
        self.told = _NOTHING_TOLD
        self.address_shown = False
        self.done = False
        self.follow_up: FollowUp = None


class UsdcPoller:
    """Runs the checks of every polled intent; each runs under the poller nursery.

    `check_interval` is the same for every intent: `interval`, or, when the live pollers would
    need more than the budget's `routine_rate` at that interval, pollers / routine_rate, so
    every intent is checked equally less often instead of some on time and others seldom.
    """

    def __init__(
        self,
        tracker: IntentTracker,
        client: CircleClient,
        interval: float,
        *,
        address_interval: float | None = None,
    ) -> None:
        """`address_interval`: how often a new intent is checked until its address shows (for
        at most one `interval`); None: on the `interval` grid from its first check."""
        self._tracker = tracker
        self._client = client
        self._interval = interval
        self._address_interval = min(address_interval or interval, interval)
        self._active = 0  # pollers running now
        self.checks = 0  # across all intents, for tests and benchmarks

    @property
    def check_interval(self) -> float:
        """Seconds between two routine checks of one intent now (read-only; for /healthz)."""
        return self.interval_for(self._active)

    def interval_for(self, pollers: int) -> float:
        """The check interval that keeps `pollers` intents within the budget's routine rate."""
        return max(self._interval, pollers / self._client.budget.routine_rate)

    async def check(self, intent_id: str, lane: Lane) -> PaymentIntentView | None:
        """One GET of the intent in `lane`; None (logged) if the check failed."""
        self.checks += 1
        try:
            return await self._client.get_payment_intent(intent_id, lane=lane)
        except ServiceError as exc:
            log.warning(
                "payment intent check failed; next tick as usual",
                extra={"intent": intent_id, "error": exc.message},
            )
            return None

    async def poll_usdc_payment(
        self,
        order_id: int,
        intent_id: str,
        first_check: float | None = None,
        awaiting_address: bool = True,
    ) -> FollowUp:
        """Poll `intent_id` until it is paid or ends; run inside its window by the poller
        nursery (at the window's end the late watcher's `take_over` runs).

        Checks at `first_check` (default: now); while `awaiting_address` (a traveller has just
        tapped and waits for it) in the TRAVELLER lane every `address_interval` until the
        address shows or one interval has passed, then in the ROUTINE lane every
        `check_interval` on the grid from the first check. Returns the hand-off to fulfilment
        when the intent is paid: the poller nursery runs it once this poller is finished, so
        no check of this intent can follow it.
        """
        self._active += 1
        try:
            watch = _Watch()
            origin = trio.current_time() if first_check is None else first_check
            await trio.sleep_until(origin)
            if awaiting_address:
                await self._until_address(watch, order_id, intent_id, origin)
            else:
                await self._look(watch, order_id, intent_id, Lane.ROUTINE)
            if not watch.done:
                await self._routine(watch, order_id, intent_id, origin)
            return watch.follow_up
        finally:
            self._active -= 1

    async def _until_address(
        self, watch: _Watch, order_id: int, intent_id: str, origin: float
    ) -> None:
        """Traveller-lane checks from `origin`, every address interval, until the address is
        shown, the poller is done, or the next check would fall one interval after origin."""
        j, every = 0, self._address_interval
        while True:
            await self._look(watch, order_id, intent_id, Lane.TRAVELLER)
            if watch.done or watch.address_shown:
                return
            j = next_tick(origin, j, every, trio.current_time())
            if j * every >= self._interval:
                return
            await trio.sleep_until(origin + j * every)

    async def _routine(self, watch: _Watch, order_id: int, intent_id: str, origin: float) -> None:
        """Routine checks on the grid from `origin` until the poller is done. The grid's
        spacing follows `check_interval`; when it changes, the grid restarts at its last
        point, so an unchanged spacing never drifts."""
        k, spacing = 0, self._interval
        while True:
            wanted = self.check_interval
            if wanted != spacing:
                origin, k, spacing = origin + k * spacing, 0, wanted
            k = next_tick(origin, k, spacing, trio.current_time())
            await trio.sleep_until(origin + k * spacing)
            await self._look(watch, order_id, intent_id, Lane.ROUTINE)
            if watch.done:
                return

    async def _look(self, watch: _Watch, order_id: int, intent_id: str, lane: Lane) -> None:
        """One check, and what it means: the chat told of news, `watch.done` at an end."""
        view = await self.check(intent_id, lane)
        if view is None:
            return
        if view.outcome == Outcome.PAID:
            watch.done, watch.follow_up = True, partial(self.hand_off, order_id, view)
            return
        # only a change is worth a trip to the store
        news = hash((view.address, view.outcome, view.amount_paid))
        if news == watch.told:
            return
        try:
            seen = await self._tracker.observe(order_id, view, source="circle-poller")
        except StoreError as exc:  # this tick is lost, not the poller
            log.error("store error while polling", extra={"error": str(exc)})
            return
        if seen is None or seen.is_final:
            watch.done = True  # paid another way, gone, expired or failed: done
            return
        watch.told = news
        watch.address_shown = watch.address_shown or view.address is not None

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
