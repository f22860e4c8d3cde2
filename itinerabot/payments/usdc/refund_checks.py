"""The USDC refund look-ups: Circle answers a crypto refund `pending` and tells nothing more
(its notifications here are about payment intents), so at start-up and every CHECK_INTERVAL
each refund Circle knows and has not concluded is looked up (`GET /v1/payments/{id}`) through
the shared request budget, until Circle shows it sent (the traveller is told) or failed (an
ERROR for the operator, whose list shows failed refunds). A failed look-up waits for the next
round.
"""

from __future__ import annotations

import logging

import trio

from itinerabot.adapters.circle.budget import Lane
from itinerabot.adapters.circle.client import CircleClient
from itinerabot.clock import WallClock
from itinerabot.errors import ServiceError, StoreError
from itinerabot.messages import Notify
from itinerabot.models import PaymentMethod
from itinerabot.payments.rounds import every
from itinerabot.payments.usdc.refund_record import record_answer
from itinerabot.store import Store, money
from itinerabot.store.money import RefundStatus

log = logging.getLogger(__name__)

#: seconds between two rounds of look-ups (the first is at start-up). A crypto refund is
#: sent within minutes; an hour bounds both the wait for the traveller's message and the
#: requests it costs (one per refund under way per round).
CHECK_INTERVAL = 3600.0
#: look-ups of one round in flight at once (the budget paces them as well)
CHECK_CONCURRENCY = 4


class UsdcRefundChecks:
    """The service; `run` is its one long-running task, `round` one pass (for tests)."""

    def __init__(
        self,
        store: Store,
        client: CircleClient,
        notify: Notify,
        clock: WallClock,
        *,
        interval: float = CHECK_INTERVAL,
    ) -> None:
        self._store = store
        self._client = client
        self._notify = notify
        self._clock = clock
        self._interval = interval
        self._limit = trio.CapacityLimiter(CHECK_CONCURRENCY)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """A round at once, then one every interval on a drift-free grid (a round that
        overran skips the points it missed), until cancelled."""
        task_status.started()
        await every(self._interval, self.round)

    async def round(self) -> None:
        """Look up every USDC refund under way at Circle once. Never raises: what fails is
        logged and looked up again next round."""
        try:
            due = await self._store.run(money.refunds_to_look_up, PaymentMethod.USDC)
        except StoreError as exc:
            log.error(
                "usdc refund look-ups cannot read the store; next round", extra={"error": str(exc)}
            )
            return
        async with trio.open_nursery() as nursery:
            for refund in due:
                nursery.start_soon(self._check, refund, name=f"usdc refund {refund.id}")

    async def _check(self, refund: money.Refund) -> None:
        """Look one refund up and record what Circle shows now."""
        assert refund.provider_refund_id is not None
        try:
            async with self._limit:
                view = await self._client.get_refund(refund.provider_refund_id, lane=Lane.ROUTINE)
            done = await self._store.run(record_answer, refund.id, view, self._clock())
        except trio.Cancelled:
            raise
        except (ServiceError, StoreError) as exc:
            log.warning(
                "could not look a usdc refund up at circle; next round",
                extra={"refund": refund.id, "error": str(exc)},
            )
            return
        except Exception:  # one refund's bug must not end the service
            log.exception("looking a usdc refund up crashed", extra={"refund": refund.id})
            return
        if done.was is None or done.was == done.refund.status:
            return  # nothing new
        extra = {
            "refund": refund.id,
            "order_id": refund.order_id,
            "circle_refund": view.id,
            "amount": f"{refund.amount:.2f} {refund.currency}",
        }
        if done.refund.status == RefundStatus.FAILED:
            log.error(
                "usdc refund failed at circle: the money is still owed back",
                extra={**extra, "error": done.refund.error},
            )
        elif done.refund.status == RefundStatus.SUCCEEDED:
            log.info("usdc refund sent by circle", extra={**extra, "tx": view.transaction_hash})
        if done.told_chat is not None:
            self._notify(done.told_chat)
