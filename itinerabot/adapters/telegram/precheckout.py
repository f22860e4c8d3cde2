"""Answer Telegram's pre-checkout queries, each within its 10 seconds, beside every queue.

A query is handed here by the long poll as soon as it arrives, never to a chat's lane: the
check is a read on the store's reader connection (`Store.read`), and the answer goes out on
the client's own connections, so neither a chat busy with slow updates, a queue of store
writes nor a backlog of messages to send can make Telegram cancel the purchase. A check
that cannot finish in time refuses with "try again": only `successful_payment` pays, so a
refusal costs the traveller a tap, never money.
"""

from __future__ import annotations

import logging

import telegram
import trio

from itinerabot.adapters.telegram.client import TelegramClient
from itinerabot.errors import PermanentServiceError, RateLimited, ServiceError, StoreError
from itinerabot.i18n import choose, texts_for
from itinerabot.metrics import DISCARD, Recorder
from itinerabot.payments.stars.checkout import CANNOT_CHECK, refusal
from itinerabot.store import Store

log = logging.getLogger(__name__)

#: seconds the order check may take before the query is refused with "try again"
CHECK_WITHIN = 4.0
#: seconds from the query's arrival within which the answer must be sent (Telegram's 10 s,
#: less the time the query spent reaching us and the answer reaching Telegram)
ANSWER_WITHIN = 8.0
#: pause between attempts to send the answer after a network error
RETRY_AFTER = 0.5


class PreCheckoutDesk:
    """Answers pre-checkout queries: `ok` only for an invoice whose order awaits exactly
    this payment from its own chat."""

    def __init__(self, telegram: TelegramClient, store: Store, metrics: Recorder = DISCARD) -> None:
        self._telegram = telegram
        self._store = store
        self._metrics = metrics

    async def answer(self, query: telegram.PreCheckoutQuery) -> None:
        """Check the query and answer it. Never raises (Telegram, the store and bugs are
        logged, and whether the answer got through): the query is done either way."""
        arrived = trio.current_time()
        error = await self._check(query)
        answered = await self._send(query.id, error, arrived + ANSWER_WITHIN)
        took = trio.current_time() - arrived
        if answered:
            self._metrics.telegram_answered("pre_checkout", took)
        log.info(
            "pre-checkout answered" if answered else "pre-checkout answer failed",
            extra={
                "payload": query.invoice_payload,
                "ok": error is None,
                "error": error,
                "seconds": round(took, 3),
            },
        )

    async def _check(self, query: telegram.PreCheckoutQuery) -> str | None:
        """Why the query is refused (in the payer's language), or None to accept it. A check
        that fails or runs out of time refuses with "try again"."""
        with trio.move_on_after(CHECK_WITHIN) as limit:
            try:
                return await self._store.read(
                    refusal,
                    query.invoice_payload,
                    query.currency,
                    query.total_amount,
                    query.from_user.id,
                    query.from_user.language_code,
                )
            except trio.Cancelled:
                raise
            except StoreError as exc:
                log.error("pre-checkout: the store failed; refused", extra={"error": str(exc)})
            except Exception:  # a bug: refuse this query, keep the bot answering the others
                log.exception("pre-checkout: checking the order failed; refused")
        if limit.cancelled_caught:
            log.warning("pre-checkout: the order could not be checked in time; refused")
        return texts_for(choose(None, query.from_user.language_code)).gettext(CANNOT_CHECK)

    async def _send(self, query_id: str, error: str | None, deadline: float) -> bool:
        """Send the answer, again after network errors (after a 429, when Telegram says),
        until `deadline` (trio time)."""
        with trio.move_on_at(deadline):
            while True:
                pause = RETRY_AFTER
                try:
                    await self._telegram.answer_pre_checkout(query_id, error)
                    return True
                except PermanentServiceError as exc:  # e.g. the query is too old
                    log.error("pre-checkout answer refused", extra={"error": exc.message})
                    return False
                except RateLimited as exc:  # sooner would only meet another 429
                    pause = max(RETRY_AFTER, exc.retry_after)
                    log.warning("pre-checkout answer rate limited", extra={"retry_in": pause})
                except ServiceError as exc:
                    log.warning("pre-checkout answer failed", extra={"error": exc.message})
                except trio.Cancelled:
                    raise
                except Exception:  # a bug: this answer is lost, the bot keeps running
                    log.exception("pre-checkout answer failed")
                    return False
                await trio.sleep(pause)
        return False
