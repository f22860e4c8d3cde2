"""The card refunds' background service, on whenever Stripe is: at start-up and hourly it looks
up at Stripe the refunds still pending there (a lost event must not leave one pending for
ever, whoever asked for it), and with `stripe.refunds: automatic` it refunds every second card
payment of an order already paid and asks again for the refunds that got no answer.

Each refund is stored (with its idempotency key) before Stripe is asked, so a crash between
the two is repaired by asking again: `refund_card` sends the same key while Stripe still keeps
it and looks the refund up after that. Transient failures are retried with capped backoff for
as long as the process runs; a refusal is recorded as failed, for the operator.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import trio

from itinerabot.adapters.stripe.client import StripeApi
from itinerabot.clock import WallClock
from itinerabot.errors import ServiceError, StoreError, TransientServiceError
from itinerabot.messages import Notify
from itinerabot.models import PaymentMethod
from itinerabot.payments.card.refunds import check_refund, refund_card
from itinerabot.payments.rounds import every, retry_delay, until_stored, wake_chat_of
from itinerabot.store import Store, money
from itinerabot.store.money import RefundStatus

log = logging.getLogger(__name__)

#: seconds between two rounds of looking up refunds at Stripe (the first is at start-up)
CHECK_INTERVAL = 3600.0
#: longest one look-up may take (the client retries inside it), and how many run at once
CHECK_TIME_LIMIT = 30.0
CHECK_CONCURRENCY = 4
#: why a second card payment cannot be refunded by the bot (an anomaly, for the operator)
NO_PAYMENT_INTENT = "no_payment_intent"


@dataclass(frozen=True, slots=True)
class _Round:
    """What one round finds in the store."""

    to_ask: list[money.Refund]  # requested, never answered (automatic only)
    to_check: list[money.Refund]  # known to Stripe, not concluded
    unrefunded: list[int]  # card extra payments with no refund (automatic only)


class CardRefunds:
    """The service; `extra_payment` is fulfilment's extra listener when refunds are
    automatic (`automatic=False`: only look-ups, refunding is the operator's)."""

    def __init__(
        self,
        store: Store,
        client: StripeApi,
        notify: Notify,
        clock: WallClock,
        *,
        automatic: bool,
    ) -> None:
        self._store = store
        self._client = client
        self._notify = notify
        self._clock = clock
        self._automatic = automatic
        self._wake, self._woken = trio.open_memory_channel[int](math.inf)
        #: refunds being asked of Stripe by a task of this service
        self._asking: set[int] = set()
        self._checks = trio.CapacityLimiter(CHECK_CONCURRENCY)

    def extra_payment(self, extra_payment_id: int, method: PaymentMethod) -> None:
        """A payment arrived for an order already paid: refund it if it came by card."""
        if self._automatic and method == PaymentMethod.CARD:
            self._wake.send_nowait(extra_payment_id)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """A round at once and every CHECK_INTERVAL, and each new card extra payment refunded
        (automatic), until cancelled. A round that cannot read the store is logged and
        tried again at the next one."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._refund_new, nursery)
            task_status.started()
            await every(CHECK_INTERVAL, partial(self._round, nursery))

    async def _refund_new(self, nursery: trio.Nursery) -> None:
        async for extra_id in self._woken:
            nursery.start_soon(self._refund, extra_id, name=f"refund extra {extra_id}")

    async def _round(self, nursery: trio.Nursery) -> None:
        try:
            found = await self._store.run(_round_of, self._automatic)
        except trio.Cancelled:
            raise
        except Exception as exc:
            log.warning("card refunds: could not read the store", extra={"error": str(exc)})
            return
        for refund in found.to_ask:
            if refund.id not in self._asking:
                log.info("asking Stripe again for a stored refund", extra={"refund": refund.id})
                nursery.start_soon(self._ask_until_answered, refund, name=f"refund {refund.id}")
        for extra_id in found.unrefunded:
            nursery.start_soon(self._refund, extra_id, name=f"refund extra {extra_id}")
        async with trio.open_nursery() as checks:
            for refund in found.to_check:
                checks.start_soon(self._check, refund, name=f"check refund {refund.id}")

    async def _check(self, refund: money.Refund) -> None:
        """Look one refund up at Stripe; a failure is logged and tried again next round."""
        async with self._checks:
            try:
                with trio.fail_after(CHECK_TIME_LIMIT):
                    done = await check_refund(self._store, self._client, refund, self._clock)
            except trio.Cancelled:
                raise
            except (ServiceError, StoreError, trio.TooSlowError) as exc:
                log.warning(
                    "could not look a card refund up at Stripe; trying again in an hour",
                    extra={"refund": refund.id, "error": str(exc) or "timed out"},
                )
                return
            except Exception:  # one refund's bug must not end the service
                log.exception("looking a card refund up failed", extra={"refund": refund.id})
                return
        if done.status == RefundStatus.FAILED and refund.status != RefundStatus.FAILED:
            log.error(
                "card refund failed at Stripe",
                extra={"refund": refund.id, "order_id": refund.order_id, "error": done.error},
            )
        elif done.status != refund.status:
            log.info(
                "card refund concluded by a look-up at Stripe",
                extra={"refund": refund.id, "status": done.status.value},
            )
        if done.status == RefundStatus.SUCCEEDED:
            await self._wake_chat(done.order_id)

    async def _refund(self, extra_id: int) -> None:
        """Store a refund of one card extra payment (unless it has one), then ask Stripe."""
        try:
            refund = await until_stored(self._store, _begin_for_extra, extra_id, self._clock())
        except trio.Cancelled:
            raise
        except Exception:  # a bug: this one is the operator's, never a crash loop
            log.exception("storing a card refund failed", extra={"extra_payment": extra_id})
            return
        if refund is not None:
            await self._ask_until_answered(refund)

    async def _ask_until_answered(self, refund: money.Refund) -> None:
        """Ask Stripe, retrying transient failures, until the refund has an answer."""
        if refund.id in self._asking:
            return
        self._asking.add(refund.id)
        try:
            failures = 0
            while True:
                try:
                    done = await refund_card(self._store, self._client, refund, self._clock)
                    break
                except trio.Cancelled:
                    raise
                except (TransientServiceError, StoreError) as exc:
                    failures += 1
                    delay = retry_delay(failures)
                    log.warning(
                        "card refund not answered; retrying",
                        extra={"refund": refund.id, "error": str(exc), "retry_in": delay},
                    )
                    await trio.sleep(delay)
                except Exception:  # one refund's bug must not end the service
                    log.exception("card refund failed", extra={"refund": refund.id})
                    return
            if done.status == RefundStatus.SUCCEEDED:
                await self._wake_chat(done.order_id)
        finally:
            self._asking.discard(refund.id)

    async def _wake_chat(self, order_id: int) -> None:
        """The sender sends what the refund queued for the chat ("We refunded …")."""
        await wake_chat_of(self._store, self._notify, order_id)


def _round_of(conn: sqlite3.Connection, automatic: bool) -> _Round:
    """Card refunds to ask again (no Stripe id yet), to look up at Stripe (it has one), and
    card extra payments still without a refund; only look-ups unless `automatic`."""
    open_refunds = [
        r
        for r in money.refunds_in(conn, (RefundStatus.REQUESTED, RefundStatus.PENDING))
        if r.method == PaymentMethod.CARD
    ]
    to_check = [r for r in open_refunds if r.provider_refund_id is not None]
    if not automatic:
        return _Round([], to_check, [])
    to_ask = [
        r
        for r in open_refunds
        if r.status == RefundStatus.REQUESTED and r.provider_refund_id is None
    ]
    unrefunded = [
        e.id
        for e in money.unrefunded_extra_payments(conn)
        if e.method == PaymentMethod.CARD and not _has_refund(conn, e)
    ]
    return _Round(to_ask, to_check, unrefunded)


def _has_refund(conn: sqlite3.Connection, extra: money.ExtraPayment) -> bool:
    """Any refund of this extra payment, even a failed one: a refusal is the operator's now."""
    return any(r.extra_payment_id == extra.id for r in money.refunds(conn, extra.order_id))


def _begin_for_extra(conn: sqlite3.Connection, extra_id: int, now: datetime) -> money.Refund | None:
    """A new stored refund of a card extra payment; None if it has one or cannot have one
    (with no PaymentIntent to refund: recorded once as an anomaly, for the operator)."""
    extra = money.get_extra_payment(conn, extra_id)
    if extra is None or extra.method != PaymentMethod.CARD or _has_refund(conn, extra):
        return None
    if extra.provider_payment_id is None:
        first_time = money.record_anomaly(
            conn,
            source="stripe",
            provider_ref=extra.provider_ref,
            reason=NO_PAYMENT_INTENT,
            detail={
                "why": f"second card payment #{extra.id} has no PaymentIntent recorded: refund "
                f"Checkout Session {extra.provider_ref} in the Stripe dashboard",
                "extra_payment": extra.id,
            },
            now=now,
            order_id=extra.order_id,
        )
        if first_time:
            log.error(
                "a second card payment has no PaymentIntent: refund it by hand",
                extra={"extra_payment": extra.id, "session": extra.provider_ref},
            )
        return None
    return money.begin_extra_refund(conn, extra, extra.provider_payment_id, now)
