"""Automatic Stars refunds (`stars.refunds: automatic`): a second Stars payment of an order
already paid goes back to the payer at once, and a refund left unanswered is asked again; a
Stars charge that paid nothing (an anomaly: no invoice of ours, another amount) goes back at
the next round.

Each refund is stored before Telegram is asked; Telegram refunds a charge once at most and
answers a repeat with CHARGE_ALREADY_REFUNDED (`refund_stars` counts that as done), so a crash
between the two is repaired by asking again, at the next start. Transient failures are retried
with capped backoff while the process runs; a refusal is recorded as failed, for the operator.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from datetime import datetime

import trio

from itinerabot import messages
from itinerabot.clock import WallClock
from itinerabot.errors import PermanentServiceError, ServiceError, StoreError, TransientServiceError
from itinerabot.messages import Notify, Text
from itinerabot.models import PaymentMethod
from itinerabot.payments.rounds import every, retry_delay, until_stored, wake_chat_of
from itinerabot.payments.stars.refunds import ALREADY_REFUNDED, StarRefunds, refund_stars
from itinerabot.store import Store, languages, money, stars
from itinerabot.store.money import ExtraKind, Refund, RefundStatus
from itinerabot.store.stars import StarPayment

log = logging.getLogger(__name__)

#: seconds between rounds giving back Stars charges that paid nothing (the first at start-up)
ANOMALY_ROUND = 60.0


class StarsRefunder:
    """The service; `extra_payment` is fulfilment's extra listener."""

    def __init__(
        self,
        store: Store,
        client: StarRefunds,
        notify: Notify,
        clock: WallClock,
        *,
        automatic: bool = True,
    ) -> None:
        self._store = store
        #: second payments refunded at once (`stars.refunds: automatic`); charges that paid
        #: nothing are given back either way: no one may decide to keep them
        self._automatic = automatic
        self._client = client
        self._notify = notify
        self._clock = clock
        self._wake, self._woken = trio.open_memory_channel[int](math.inf)
        #: anomalies Telegram refused to refund: left for the operator
        self._given_up: set[int] = set()

    def extra_payment(self, extra_payment_id: int, method: PaymentMethod) -> None:
        """Money arrived for an order already paid: refund it if it came in Stars (and
        refunds are automatic)."""
        if method == PaymentMethod.STARS and self._automatic:
            self._wake.send_nowait(extra_payment_id)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Give back charges that paid nothing every minute; when automatic, also refund what
        the last run left (second Stars payments with no refund, refunds still requested),
        then each new one, until cancelled."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            extras: list[int] = []
            stuck: list[Refund] = []
            try:
                if self._automatic:
                    extras, stuck = await self._store.run(_left_over)
            except StoreError as exc:
                log.warning("stars refunds: could not read the store", extra={"error": str(exc)})
            for extra_id in extras:
                self._wake.send_nowait(extra_id)
            for refund in stuck:
                nursery.start_soon(self._ask_until_answered, refund)
            nursery.start_soon(every, ANOMALY_ROUND, self._give_back_anomalies)
            async for extra_id in self._woken:
                nursery.start_soon(self._refund, extra_id, name=f"stars refund {extra_id}")

    async def _refund(self, extra_id: int) -> None:
        """Store a refund of one second Stars payment (unless it has one), then ask."""
        try:
            refund = await until_stored(self._store, _begin_for_extra, extra_id, self._clock())
        except trio.Cancelled:
            raise
        except Exception:  # a bug: this one is the operator's, never a crash loop
            log.exception("storing a stars refund failed", extra={"extra_payment": extra_id})
            return
        if refund is not None:
            await self._ask_until_answered(refund)

    async def _ask_until_answered(self, refund: Refund) -> None:
        """Ask Telegram until it answers (or refuses); wake the sender for the message."""
        failures = 0
        while True:
            try:
                done = await refund_stars(self._store, self._client, refund, self._clock)
                break
            except trio.Cancelled:
                raise
            except (TransientServiceError, StoreError) as exc:
                failures += 1
                log.warning(
                    "stars refund got no answer; asking again",
                    extra={
                        "refund": refund.id,
                        "error": str(exc),
                        "retry_in": retry_delay(failures),
                    },
                )
                await trio.sleep(retry_delay(failures))
            except ServiceError as exc:  # refund_stars records refusals itself
                log.error("stars refund failed", extra={"refund": refund.id, "error": str(exc)})
                return
            except Exception:  # a bug: this refund is the operator's, never a crash loop
                log.exception(
                    "stars refund failed; left for the operator", extra={"refund": refund.id}
                )
                return
        await wake_chat_of(self._store, self._notify, done.order_id)

    async def _give_back_anomalies(self) -> None:
        """Give back every recorded Stars charge that paid nothing, and tell its chat."""
        try:
            found = await self._store.run(stars.unsettled_anomalies)
        except StoreError as exc:
            log.warning("stars refunds: could not read the store", extra={"error": str(exc)})
            return
        for anomaly_id, paid in found:
            if anomaly_id in self._given_up:
                continue
            try:
                await self._client.refund_star_payment(paid.payer_id, paid.charge_id)
            except trio.Cancelled:
                raise
            except PermanentServiceError as exc:
                if ALREADY_REFUNDED not in exc.message.lower():
                    log.error(
                        "a Stars charge that paid nothing could not be given back",
                        extra={"charge": paid.charge_id, "error": exc.message},
                    )
                    self._given_up.add(anomaly_id)  # the operator's, from the anomaly list
                    continue
            except Exception as exc:  # transient, or a bug: the next round asks again
                log.warning(
                    "a Stars charge that paid nothing: no answer; asking again next round",
                    extra={"charge": paid.charge_id, "error": str(exc)},
                )
                continue
            try:
                await self._store.run(_given_back, anomaly_id, paid, self._clock())
            except StoreError as exc:  # the next round asks again: Telegram says it is done
                log.warning(
                    "a Stars charge given back could not be recorded; next round",
                    extra={"charge": paid.charge_id, "error": str(exc)},
                )
                continue
            self._notify(paid.chat_id)


def _given_back(
    conn: sqlite3.Connection, anomaly_id: int, paid: StarPayment, now: datetime
) -> None:
    """The charge is refunded: the anomaly is settled and the chat told (once)."""
    if not money.resolve_anomaly(conn, anomaly_id, now):
        return
    text = languages.texts_of(conn, paid.chat_id).gettext(
        "We gave back your payment of {amount} ⭐: it did not pay for any order.",
        amount=paid.amount,
    )
    messages.queue(conn, paid.chat_id, Text(text), now=now)


def _left_over(conn: sqlite3.Connection) -> tuple[list[int], list[Refund]]:
    """Second Stars payments with no refund at all (a failed one is the operator's), and
    Stars refunds still requested."""
    refunded = {r.extra_payment_id for r in money.refunds_in(conn, tuple(RefundStatus))}
    extras = [
        e.id
        for e in money.unrefunded_extra_payments(conn)
        if e.method == PaymentMethod.STARS and e.kind == ExtraKind.SECOND and e.id not in refunded
    ]
    stuck = [
        r
        for r in money.refunds_in(conn, (RefundStatus.REQUESTED,))
        if r.method == PaymentMethod.STARS
    ]
    return extras, stuck


def _begin_for_extra(conn: sqlite3.Connection, extra_id: int, now: datetime) -> Refund | None:
    """A new stored refund of a whole second Stars payment; None if it has any refund."""
    extra = money.get_extra_payment(conn, extra_id)
    if extra is None or extra.method != PaymentMethod.STARS or extra.kind != ExtraKind.SECOND:
        return None
    if any(r.extra_payment_id == extra.id for r in money.refunds(conn, extra.order_id)):
        return None
    return money.begin_extra_refund(conn, extra, extra.provider_ref, now)
