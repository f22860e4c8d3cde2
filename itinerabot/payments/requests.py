"""The payment-requests service: a tap on "Pay" or a return from Checkout, carried out after
the update that asked for it has committed, so a slow provider holds up no update and no chat.

The update commits the request (and "Preparing your payment…") at once; this service asks the
provider (each payment method keeps its own time limit), then queues the answer and marks the
request done in one transaction. One chat's requests are carried out in order. Requests still
open at start-up (the process stopped mid-way) are carried out again: the payment methods
repeat a provider call with its stored idempotency key, so nothing is created twice.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime

import trio

from itinerabot import messages
from itinerabot.clock import WallClock
from itinerabot.errors import StoreError
from itinerabot.i18n import N_, Texts
from itinerabot.lanes import Lanes
from itinerabot.messages import Message, Notify, Text
from itinerabot.payments.methods import PaymentActions
from itinerabot.payments.texts import not_payable
from itinerabot.store import Store, languages
from itinerabot.store import orders as order_rows
from itinerabot.store import payment_requests as requests
from itinerabot.store.payment_requests import Action, Request

log = logging.getLogger(__name__)

#: the most a request may take, whatever the payment method's own limits (a safety net)
REQUEST_TIME_LIMIT = 60.0
#: requests carried out at once (each holds a provider connection)
CONCURRENT_REQUESTS = 64
#: the longest wait between tries to record a request's answer while the store fails
RECORD_BACKOFF_CAP = 30.0

PREPARING = N_("Preparing your payment…")
PREPARE_FAILED = N_("Sorry, I could not prepare the payment. Please tap the button again.")


class PaymentRequests:
    """Carries out payment requests; `submit` after their update commits."""

    def __init__(
        self, store: Store, actions: PaymentActions, notify: Notify, clock: WallClock
    ) -> None:
        self._store = store
        self._actions = actions
        self._notify = notify
        self._clock = clock
        # one chat's requests in the order they were made, many chats at once
        self._lanes: Lanes[int, Request] = Lanes(self._carry_out, CONCURRENT_REQUESTS)

    def submit(self, committed: Sequence[Request]) -> None:
        """Carry out requests whose update has committed (the service runs before the long
        poll starts, so the requests left open by the last run are queued first)."""
        for request in committed:
            self._lanes.submit(request.chat_id, request)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Carry out the requests left open by the last run, then each one submitted, until
        cancelled (an open request stays in the store for the next start). Raises StoreError
        if the open requests cannot be read at start-up."""
        left = await self._store.run(requests.still_open)
        if left:
            log.info("payment requests resumed", extra={"count": len(left)})
        async with trio.open_nursery() as nursery:
            await nursery.start(self._lanes.run)
            self.submit(left)
            task_status.started()

    async def _carry_out(self, request: Request) -> None:
        """One request, start to end: the lane's task boundary, so a bug here never takes
        the service (and with it the bot) down."""
        try:
            answer = await self._answer(request)
            await self._record(request, answer)
        except trio.Cancelled:
            raise
        except Exception:
            log.exception(
                "payment request could not be recorded; closed without an answer",
                extra={"chat": request.chat_id, "request": request.id},
            )
            with contextlib.suppress(StoreError):  # a store that fails: it is retried at start
                await self._store.run(requests.finish, request.id, self._clock())

    async def _answer(self, request: Request) -> list[Message]:
        """What the payment method says; a sentence asking to try again if it failed."""
        texts: Texts | None = None
        try:
            texts = await self._store.run(languages.texts_of, request.chat_id)
            with trio.fail_after(REQUEST_TIME_LIMIT):
                return list(await self._ask(request, texts))
        except trio.Cancelled:
            raise
        except Exception:  # a bug or the store: the traveller is told, never left waiting
            log.exception(
                "payment request failed", extra={"chat": request.chat_id, "request": request.id}
            )
            said = texts.gettext(PREPARE_FAILED) if texts is not None else PREPARE_FAILED
            return [Text(said)]

    async def _ask(self, request: Request, texts: Texts) -> Sequence[Message]:
        chat, argument = request.chat_id, request.argument
        match request.action:
            case Action.PAY_BY_CARD:
                return await self._actions.pay_by_card(chat, argument, texts)
            case Action.PAY_WITH_USDC:
                return await self._actions.pay_with_usdc(chat, argument, texts)
            case Action.CHECKOUT_RETURN:
                return await self._actions.deep_link_return(chat, argument, texts)

    async def _record(self, request: Request, answer: list[Message]) -> None:
        """Queue the answer and mark the request done in one transaction, trying until the
        store takes it (the answer is never queued twice: `finish` is conditional)."""
        delay, fallback = 1.0, False
        while True:
            try:
                done = await self._store.run(_finish, request, answer, self._clock())
                break
            except trio.Cancelled:
                raise
            except StoreError as exc:
                log.error(
                    "cannot record a payment request's answer yet",
                    extra={"request": request.id, "error": str(exc), "retry_in": delay},
                )
            except Exception:
                if fallback:
                    raise  # `_carry_out` closes the request
                log.exception(
                    "cannot record a payment request's answer", extra={"request": request.id}
                )
                answer, fallback = [Text(PREPARE_FAILED)], True
                continue
            await trio.sleep(delay)
            delay = min(delay * 2, RECORD_BACKOFF_CAP)
        if done:
            self._notify(request.chat_id)


def _finish(
    conn: sqlite3.Connection, request: Request, answer: list[Message], now: datetime
) -> bool:
    if not requests.finish(conn, request.id, now):
        return False
    if request.action is not Action.CHECKOUT_RETURN:
        order = order_rows.get_order_by_reference(conn, request.argument)
        # cancelled, or paid another way (Stars, a USDC transfer), while the provider was
        # asked: a payment page now would only invite a payment of nothing, or a second one
        if order is not None and order.chat_id == request.chat_id:
            t = languages.texts_of(conn, request.chat_id)
            refusal = not_payable(t, order.status, request.argument)
            answer = [Text(refusal)] if refusal else answer
    for message in answer:
        messages.queue(conn, request.chat_id, message, now=now)
    return True
