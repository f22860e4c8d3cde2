"""Card payments whose webhook never came (endpoint down, secret mis-rotated past Stripe's
retries) and whose traveller never came back: at start-up and hourly the sessions still open
in the store are retrieved from Stripe; one Stripe reports paid is taken as the webhook would
take it, one it reports expired is marked expired and the traveller offered a new payment.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import trio

from itinerabot.adapters.stripe.client import StripeApi
from itinerabot.clock import WallClock
from itinerabot.errors import ServiceError, StoreError
from itinerabot.messages import Notify
from itinerabot.payments.card.paid import settle_taken, take_paid_session
from itinerabot.payments.card.unpaid import take_unpaid_end
from itinerabot.payments.fulfilment import Fulfilment
from itinerabot.payments.rounds import every
from itinerabot.store import Store
from itinerabot.store.card_sessions import CardSession, SessionStatus, open_since

log = logging.getLogger(__name__)

SOURCE = "stripe-reconcile"
#: seconds between rounds (wanted as a setting: stripe.reconcile_interval)
RECONCILE_INTERVAL = 3600.0
#: how far back open sessions are retrieved: a session lives at most 24 h (Stripe's limit on
#: expires_at) and the margin lets a bot that was down for up to three days catch up
RECONCILE_WINDOW = timedelta(hours=24 + 72)
#: longest one retrieve may take (the client's own retries included), and how many at once
RETRIEVE_TIME_LIMIT = 30.0
CONCURRENCY = 4


class SessionReconciler:
    """The service: `run` it in the root nursery."""

    def __init__(
        self,
        store: Store,
        client: StripeApi,
        fulfilment: Fulfilment,
        notify: Notify,
        clock: WallClock,
        *,
        livemode: bool,
    ) -> None:
        self._store = store
        self._client = client
        self._fulfilment = fulfilment
        self._notify = notify
        self._clock = clock
        self._livemode = livemode
        self._limiter = trio.CapacityLimiter(CONCURRENCY)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """A round at once and then every RECONCILE_INTERVAL, until cancelled."""
        task_status.started()
        await every(RECONCILE_INTERVAL, self.reconcile)

    async def reconcile(self) -> None:
        """One round: every open session of the window retrieved, CONCURRENCY at a time.
        A session that cannot be retrieved is logged and tried again next round."""
        try:
            found = await self._store.run(open_since, self._clock() - RECONCILE_WINDOW)
        except trio.Cancelled:
            raise
        except Exception as exc:
            log.warning("stripe reconcile: could not read the store", extra={"error": str(exc)})
            return
        async with trio.open_nursery() as nursery:
            for stored in found:
                nursery.start_soon(self._one, stored, name=f"reconcile {stored.session_id}")

    async def _one(self, stored: CardSession) -> None:
        assert stored.session_id is not None
        async with self._limiter:
            try:
                with trio.fail_after(RETRIEVE_TIME_LIMIT):
                    found = await self._client.retrieve_checkout_session(stored.session_id)
                await self._take(found)
            except trio.Cancelled:
                raise
            except (ServiceError, StoreError, trio.TooSlowError) as exc:
                log.warning(
                    "stripe reconcile: a session could not be checked; trying again next round",
                    extra={"session": stored.session_id, "error": str(exc) or "timed out"},
                )
            except Exception:  # one session's bug must not end the round
                log.exception("stripe reconcile failed", extra={"session": stored.session_id})

    async def _take(self, session: dict[str, Any]) -> None:
        """What Stripe says of one session: paid (or paying nothing), expired, or still open."""
        status = session.get("status")
        if status == "complete":
            taken = await self._store.run(
                take_paid_session,
                session,
                livemode=self._livemode,
                event_livemode=None,
                source=SOURCE,
                now=self._clock(),
            )
            settle_taken(taken, self._fulfilment)
        elif status == "expired":
            order = await self._store.run(
                take_unpaid_end, str(session["id"]), SessionStatus.EXPIRED, self._clock()
            )
            if order is not None:
                self._notify(order.chat_id)
