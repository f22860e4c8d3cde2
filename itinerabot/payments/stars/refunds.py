"""Stars refunds: `refundStarPayment` gives one whole charge back to the user who paid it, and
Telegram's answer is recorded on the stored refund; the traveller is told when it succeeds.

Telegram takes no idempotency key, but it refunds a charge at most once and answers a repeat
with CHARGE_ALREADY_REFUNDED: so a refund whose answer was lost is simply asked again, and
that answer means it is done.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from itinerabot.clock import WallClock
from itinerabot.errors import PermanentServiceError, TransientServiceError
from itinerabot.i18n import Texts
from itinerabot.models import PaymentMethod
from itinerabot.payments.refund_result import record_result
from itinerabot.store import Store, money, stars
from itinerabot.store.money import Refund, RefundStatus

log = logging.getLogger(__name__)

#: Telegram's refusal of a charge refunded before (python-telegram-bot capitalises it)
ALREADY_REFUNDED = "charge_already_refunded"


class StarRefunds(Protocol):
    """The one Bot API call a Stars refund makes (the Telegram adapter's client has it)."""

    async def refund_star_payment(self, user_id: int, charge_id: str) -> None:
        """Give charge `charge_id` back to user `user_id`; raises ServiceError."""


#: opens a client that can refund Stars (and closes it after): the Telegram adapter's
#: `open_telegram` with the bot's settings, given by whoever may reach the channel
OpenStarRefunds = Callable[[], AbstractAsyncContextManager[StarRefunds]]


async def refund_stars(
    store: Store, client: StarRefunds, refund: Refund, clock: WallClock
) -> Refund:
    """Ask Telegram to give back the Stars charge `refund.provider_ref` (its
    telegram_payment_charge_id) to the user who paid it, and record the answer: succeeded
    (also when Telegram says the charge was refunded before), or failed with Telegram's
    reason. A refund no longer `requested` (answered meanwhile) is returned as it is.

    Returns the refund as recorded. Raises ValueError for a refund that is not a Stars one;
    TransientServiceError when Telegram gave no usable answer (the refund stays requested,
    with the error: ask again, Telegram refunds a charge once at most); StoreError if the
    store fails.
    """
    if refund.method != PaymentMethod.STARS:
        raise ValueError(f"refund {refund.id} is a {refund.method} refund, not a Stars one")
    current = await store.run(money.current_refund, refund.id)
    assert current is not None, refund.id
    if current.status != RefundStatus.REQUESTED:
        return current
    paid = await store.run(stars.get_payment, current.provider_ref)
    if paid is None:  # every Stars payment is recorded before it can be owed back
        why = f"no Stars payment with charge id {current.provider_ref} is recorded"
        return await store.run(record, current.id, RefundStatus.FAILED, clock(), why)
    try:
        await client.refund_star_payment(paid.payer_id, current.provider_ref)
    except TransientServiceError as exc:
        await store.run(
            money.set_refund_result, current.id, RefundStatus.REQUESTED, clock(), error=str(exc)
        )
        raise
    except PermanentServiceError as exc:
        if ALREADY_REFUNDED not in exc.message.lower():
            log.error(
                "stars refund refused by Telegram",
                extra={"refund": current.id, "charge": current.provider_ref, "error": str(exc)},
            )
            return await store.run(record, current.id, RefundStatus.FAILED, clock(), str(exc))
        # an earlier ask reached Telegram and its answer was lost: the Stars are back
        log.info("stars charge was refunded before", extra={"refund": current.id})
    recorded = await store.run(record, current.id, RefundStatus.SUCCEEDED, clock(), None)
    log.info(
        "stars refund asked of Telegram",
        extra={
            "refund": current.id,
            "charge": current.provider_ref,
            "amount": f"{current.amount} {current.currency}",
            "status": recorded.status.value,
        },
    )
    return recorded


def record(
    conn: sqlite3.Connection,
    refund_id: int,
    status: RefundStatus,
    now: datetime,
    error: str | None,
) -> Refund:
    """Record Telegram's answer inside the caller's transaction; the first time the refund
    succeeds, queue "your Stars are back" for the order's chat (the running bot's sender
    finds it at its next rescan: this may run in the operator's process). The refund as now
    recorded."""
    return record_result(conn, refund_id, status, now, _stars_back, error=error).refund


def _stars_back(t: Texts, refund: Refund, reference: str) -> str:
    return t.gettext(
        "We refunded {amount} ⭐ for order {reference}: the Stars are back in your "
        "Telegram account.",
        amount=f"{refund.amount:.0f}",
        reference=reference,
    )
