"""The late watcher: one task that keeps checking the payment intents no 30 s poller watches,
every `late_check_interval` seconds, until each is final or past `expiresOn` plus a margin.

Its work is read from the store each round, so a restart or the operator's CLI sees the same
truth: intents whose window ended (also while the bot was down), and intents of orders paid
another way, which it first asks Circle to expire. Every check goes through the shared
request budget. A failed check is tried again next round; a payment found is fulfilled like
any other.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import trio

from itinerabot.adapters.circle.budget import Lane
from itinerabot.adapters.circle.client import CircleClient
from itinerabot.adapters.circle.errors import CircleApiError
from itinerabot.adapters.circle.status import Outcome, PaymentIntentView
from itinerabot.clock import WallClock
from itinerabot.config import CircleSettings
from itinerabot.errors import ServiceError, StoreError
from itinerabot.payments.rounds import next_tick
from itinerabot.payments.usdc.lifetime import Lifetime
from itinerabot.payments.usdc.tracker import IntentTracker
from itinerabot.store import Store
from itinerabot.store import circle_intents as intents
from itinerabot.store.circle_intents import IntentStatus, LateIntent

log = logging.getLogger(__name__)

SOURCE = "circle-late-check"


class LateWatcher:
    """Owns the intents after their window; `run` is its one long-running task."""

    def __init__(
        self,
        tracker: IntentTracker,
        store: Store,
        client: CircleClient,
        clock: WallClock,
        settings: CircleSettings,
    ) -> None:
        self._tracker = tracker
        self._store = store
        self._client = client
        self._clock = clock
        self._interval = settings.late_check_interval
        self.lifetime = Lifetime.of(settings)
        # checks of a round run side by side, as many as the budget lets through at once
        self._workers = client.budget.max_concurrent
        self._nudged = False
        #: set by a nudge or a new poll window: wakes an idle watcher
        self._wake = trio.Event()
        #: when each open intent was last checked successfully (wall clock, taken before
        #: the request): only a check at or after its watch ended lets it go unchecked
        self._checked_at: dict[str, datetime] = {}
        #: whether a 30 s poller runs for (order id, intent id): set by the owner of the
        #: pollers; such an intent is not late yet, whatever the wall clock says
        self.poller_watches: Callable[[int, object], bool] = lambda order_id, intent_id: False
        self.rounds = 0  # for tests and the operator
        self.checks = 0

    def nudge(self) -> None:
        """Work was stored (a window ended, an order was paid another way): an idle watcher
        runs its next round one interval from now."""
        self._nudged = True
        self._wake.set()

    def window_opened(self) -> None:
        """A poller started: an idle watcher learns when its window ends (no round for it)."""
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run rounds until cancelled: the first at once (it takes the intents whose window
        passed while the bot was down), then one every interval on a drift-free grid while
        there is work. With none, it sleeps until nudged or the next poll window ends, then
        runs a round one interval later."""
        task_status.started()
        origin, k = trio.current_time(), 0
        while True:
            self._nudged = False  # a nudge from here on is not lost
            if await self.round():
                k = next_tick(origin, k, self._interval, trio.current_time())
            else:
                await self._idle()
                origin, k = trio.current_time(), 1
            await trio.sleep_until(origin + k * self._interval)

    async def _idle(self) -> None:
        """Wait until nudged or the next poll window ends (looked up again when a window
        opens)."""
        while not self._nudged:
            self._wake = trio.Event()
            with trio.move_on_after(await self._until_next_window_end()) as timer:
                await self._wake.wait()
            if timer.cancelled_caught:
                return

    async def _until_next_window_end(self) -> float:
        """Seconds until the next poll window ends: an idle watcher looks then even if no
        poller hands the intent over (one that crashed, or was never started). Never raises
        (a store it cannot read: it looks again in one interval)."""
        now = self._clock().timestamp()
        try:
            end = await self._store.run(intents.next_window_end, now)
        except trio.Cancelled:
            raise
        except Exception:
            log.exception("late watcher cannot read when the next window ends")
            return self._interval
        return math.inf if end is None else end - now

    async def round(self) -> bool:
        """Check every late intent once; True if any was checked (or the store could not
        say), so another round follows. Never raises.

        An intent past its watch is let go without a check if it was last checked at or
        after its watch ended (nothing Circle still takes can have changed since); otherwise
        (checked only before, the first round after a restart, or its last check failed) it
        gets a last check first, so a payment confirmed inside the margin or while the bot was
        down is never skipped.
        """
        self.rounds += 1
        now = self._clock()
        rows = await self._late_intents(now)
        if rows is None:
            return True
        # forget the intents that left the store's open set (final, lapsed)
        checked_at = self._checked_at
        self._checked_at = {
            row.intent_id: checked_at[row.intent_id] for row in rows if row.intent_id in checked_at
        }
        due: list[tuple[LateIntent, bool]] = []
        for row in rows:
            if row.status == IntentStatus.POLLING and self.poller_watches(
                row.order_id, row.intent_id
            ):
                continue  # its poller hands it over (with a nudge) when its window ends
            watch_until = self.lifetime.watch_until(row.expires_on, row.created_at)
            last = watch_until < now
            checked = self._checked_at.get(row.intent_id)
            if not last or checked is None or checked < watch_until:
                due.append((row, last))
            else:
                await self._let_go(row)
        if due:
            await self._check_all(due)
        return bool(due)

    async def _late_intents(self, now: datetime) -> list[LateIntent] | None:
        """The intents to look at this round; None if the store cannot say (logged)."""
        try:
            return await self._store.run(intents.late_intents, now.timestamp())
        except trio.Cancelled:
            raise
        except StoreError as exc:
            log.error("late watcher cannot read its work; next round", extra={"error": str(exc)})
        except Exception:
            # a root service: what escapes here would stop the whole bot
            log.exception("late watcher cannot read its work; next round")
        return None

    async def _let_go(self, row: LateIntent) -> None:
        """Stop watching an intent checked after its watch ended. Never raises."""
        try:
            await self._tracker.lapse(row.order_id, row.intent_id)
        except trio.Cancelled:
            raise
        except StoreError as exc:
            log.error("late watcher: store error", extra={"error": str(exc)})
        except Exception:
            log.exception("letting a payment intent go crashed", extra={"intent": row.intent_id})

    async def _check_all(self, due: list[tuple[LateIntent, bool]]) -> None:
        """Check each (intent, last) of `due`, as many at once as the budget lets through."""
        send, receive = trio.open_memory_channel[tuple[LateIntent, bool]](0)
        async with trio.open_nursery() as nursery:
            async with receive:
                for _ in range(min(self._workers, len(due))):
                    nursery.start_soon(self._worker, receive.clone())
            async with send:
                for item in due:
                    await send.send(item)

    async def take_over(self, order_id: int, intent_id: str) -> None:
        """The 30 s window of `intent_id` closed unpaid: the chat is told until when it is
        still checked, and the intent is watched from now on. Raises StoreError (the intent
        stays polling in the store; the next round takes it over all the same)."""
        try:
            await self._tracker.window_over(order_id, intent_id, self.lifetime)
        finally:
            self.nudge()

    async def expire_superseded(self, order_id: int) -> None:
        """`order_id` was just paid: ask Circle at once to expire its other open intents, so
        no payment lands on them, and watch them until they are final. What fails here is
        done by the next round (they are open intents of a paid order in the store)."""
        tracker = self._tracker
        try:
            ids = await self._store.run(intents.superseded_of, order_id)
            if not ids:
                return  # the order had no other intent open
            for intent_id in ids:
                # money could still land on it: ahead of the routine checks
                view = await tracker.supersede(intent_id, lane=Lane.TRAVELLER)
                await tracker.observe(order_id, view, source=SOURCE)
        except (ServiceError, StoreError) as exc:
            log.warning(
                "expiring a superseded payment intent failed; next late round",
                extra={"order_id": order_id, "error": str(exc)},
            )
        finally:
            self.nudge()  # also when it found none: one may be stored by now

    async def _worker(self, items: trio.MemoryReceiveChannel[tuple[LateIntent, bool]]) -> None:
        async with items:
            async for row, last in items:
                await self._check(row, last=last)

    async def _check(self, row: LateIntent, *, last: bool) -> None:
        """Check one intent (expire it first if its order was paid another way); act on what
        is new; with `last`, let it go afterwards unless it ended."""
        tracker = self._tracker
        self.checks += 1
        asked_at = self._clock()
        try:
            if row.superseded and row.status != IntentStatus.SUPERSEDED:
                view = await tracker.supersede(row.intent_id, lane=Lane.ROUTINE)
            else:
                view = await self._client.get_payment_intent(row.intent_id, lane=Lane.ROUTINE)
            seen: Outcome | None = view.outcome
            # what the store holds already needs no trip to it (thousands per round)
            if _news(row, view):
                seen = await tracker.observe(row.order_id, view, source=SOURCE)
            if seen is not None and seen.is_final:
                return
            self._checked_at[row.intent_id] = asked_at
            if last:
                await tracker.lapse(row.order_id, row.intent_id)
            elif row.status == IntentStatus.POLLING and seen is not None:
                # its window ended while the bot was down: the chat hears of it now
                await tracker.window_over(row.order_id, row.intent_id, self.lifetime)
        except trio.Cancelled:
            raise
        except CircleApiError as exc:
            if last:
                # a 404 (another environment or key, data Circle dropped) never changes
                await self._give_up(row, exc)
            else:
                log.warning(
                    "circle refused the late check of a payment intent; next round",
                    extra={"intent": row.intent_id, "status": exc.status, "error": exc.message},
                )
        except (ServiceError, StoreError) as exc:
            log.warning(
                "late check of a payment intent failed; next round",
                extra={"intent": row.intent_id, "error": str(exc)},
            )
        except Exception:
            log.exception("late check of a payment intent crashed", extra={"intent": row.intent_id})

    async def _give_up(self, row: LateIntent, exc: CircleApiError) -> None:
        """Circle refuses to show an intent past its watch: it is let go (lapsed) for the
        operator to look into, rather than asked about every round for ever. Never raises."""
        log.error(
            "circle refuses to show a payment intent past its watch; no longer watched",
            extra={"intent": row.intent_id, "status": exc.status, "error": exc.message},
        )
        try:
            await self._tracker.lapse(row.order_id, row.intent_id)
        except trio.Cancelled:
            raise
        except Exception:
            log.exception(
                "letting a payment intent go failed; next round", extra={"intent": row.intent_id}
            )


def _news(row: LateIntent, view: PaymentIntentView) -> bool:
    """Whether `view` shows anything the store does not hold for `row` yet."""
    if row.status == IntentStatus.POLLING or view.outcome not in (
        Outcome.PENDING,
        Outcome.UNDERPAID,
    ):
        return True  # a window to close, an end, a payment
    if view.address is not None and row.address is None:
        return True
    if view.expires_on is not None and view.expires_on != row.expires_on:
        return True
    paid = view.amount_paid or Decimal(0)
    return view.outcome == Outcome.UNDERPAID and row.notified_paid != f"{paid:.2f}"
