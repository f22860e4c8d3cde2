"""Card refunds through Stripe's Refund API: one stored refund asked of Stripe with its own
idempotency key while Stripe still keeps that key, looked up at Stripe after that (never sent
again blindly), and looked up by its Stripe id while it is pending. `refund_record` records
each answer.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import timedelta
from typing import Any

from itinerabot.adapters.stripe.client import StripeApi
from itinerabot.clock import WallClock
from itinerabot.errors import PermanentServiceError, TransientServiceError
from itinerabot.payments.card.refund_record import REFUND_ID_KEY, is_made_for, record, record_found
from itinerabot.payments.card.verify import minor_units
from itinerabot.store import Store, money
from itinerabot.store import orders as order_rows
from itinerabot.store.money import RefundStatus

log = logging.getLogger(__name__)

#: Stripe keeps an idempotency key about 24 h and then runs the same key as a new request
#: (a second refund); a stored refund older than this is looked up instead of sent again
KEY_SAFE_AGE = timedelta(hours=23)
#: refunds a page of `GET /v1/refunds` holds (Stripe's maximum)
_PAGE = 100


async def refund_card(
    store: Store, client: StripeApi, refund: money.Refund, clock: WallClock
) -> money.Refund:
    """Ask Stripe to refund `refund` (stored by `money.begin_refund`) and record the answer.

    `refund.provider_ref` is the PaymentIntent id. Asking again is safe: within
    KEY_SAFE_AGE of its creation the stored idempotency key makes Stripe answer with the
    refund it already made; after that the refund is looked up by its metadata
    (`GET /v1/refunds?payment_intent=`) and, only if Stripe has none, replaced by a new stored
    refund with a fresh key (`money.supersede_refund`) which is asked instead. A refund that
    is no longer `requested` (answered meanwhile) is returned as it is.

    Returns the refund as now recorded (perhaps the one that replaced `refund`): succeeded
    (the chat is told), pending, or failed when Stripe refused it. Raises
    TransientServiceError when Stripe could not be reached or answered 5xx/409/429 (the
    refund stays requested, the error noted: call again), StoreError if the store fails.
    """
    current = await store.run(money.current_refund, refund.id)
    assert current is not None, refund.id
    if current.status != RefundStatus.REQUESTED:
        return current
    if clock() - current.created_at > KEY_SAFE_AGE:
        try:
            found = await find_at_stripe(client, current)
        except PermanentServiceError as exc:  # the PaymentIntent is not refundable here
            return await _refused(store, current, clock, exc)
        if found is not None:
            log.info(
                "card refund found at Stripe after its answer was lost",
                extra={"refund": current.id, "stripe_refund": found.get("id")},
            )
            return await store.run(record_found, current.id, found, clock())
        why = f"Stripe had no refund for it {KEY_SAFE_AGE} after it was stored"
        replacement = await store.run(money.supersede_refund, current.id, clock(), why)
        if replacement is None:  # answered meanwhile
            answered = await store.run(money.get_refund, current.id)
            assert answered is not None
            return answered
        log.warning(
            "card refund asked again with a new key: Stripe has no refund for the old one",
            extra={"refund": current.id, "replaced_by": replacement.id},
        )
        current = replacement
    return await _ask(store, client, current, clock)


async def _ask(
    store: Store, client: StripeApi, refund: money.Refund, clock: WallClock
) -> money.Refund:
    """POST the refund with its stored idempotency key and record the answer."""
    reference = await store.run(_reference_of, refund.order_id)
    params: dict[str, Any] = {
        "payment_intent": refund.provider_ref,
        "amount": minor_units(refund.amount),
        "metadata": {
            "order_reference": reference or "",
            REFUND_ID_KEY: str(refund.id),
            "extra_payment_id": str(refund.extra_payment_id or ""),
        },
    }
    try:
        answer = await client.create_refund(params, idempotency_key=refund.idempotency_key)
    except TransientServiceError as exc:
        # only a refund still requested notes the error: an event may have answered meanwhile
        await store.run(
            money.set_refund_result, refund.id, RefundStatus.REQUESTED, clock(), error=str(exc)
        )
        raise
    except PermanentServiceError as exc:
        return await _refused(store, refund, clock, exc)
    recorded = await store.run(record_found, refund.id, answer, clock())
    log.info(
        "card refund asked of Stripe",
        extra={
            "order": reference,
            "refund": refund.id,
            "stripe_refund": answer.get("id"),
            "status": recorded.status.value,
            "amount": f"{refund.amount:.2f} {refund.currency}",
        },
    )
    return recorded


async def _refused(
    store: Store, refund: money.Refund, clock: WallClock, exc: PermanentServiceError
) -> money.Refund:
    log.error(
        "card refund refused by Stripe",
        extra={"order_id": refund.order_id, "refund": refund.id, "error": str(exc)},
    )
    return await store.run(record, refund.id, RefundStatus.FAILED, clock(), None, str(exc))


async def find_at_stripe(client: StripeApi, refund: money.Refund) -> dict[str, Any] | None:
    """The Stripe refund made for `refund` (Stripe's JSON), found among the refunds of its
    PaymentIntent by the stored refund id in its metadata; None if Stripe has none.

    Raises TransientServiceError if Stripe could not be asked, PermanentServiceError if it
    refused (no such PaymentIntent).
    """
    after = None
    while True:
        page, has_more = await client.list_refunds(
            refund.provider_ref, limit=_PAGE, starting_after=after
        )
        for found in page:
            if is_made_for(found, refund):
                return found
        if not has_more or not page:
            return None
        after = str(page[-1]["id"])


async def check_refund(
    store: Store, client: StripeApi, refund: money.Refund, clock: WallClock
) -> money.Refund:
    """Ask Stripe how a refund it knows (`provider_refund_id`) stands now, and record it: a
    pending refund whose event was lost is concluded this way.

    Raises TransientServiceError or PermanentServiceError (from Stripe), StoreError.
    """
    assert refund.provider_refund_id is not None
    found = await client.retrieve_refund(refund.provider_refund_id)
    return await store.run(record_found, refund.id, found, clock())


def _reference_of(conn: sqlite3.Connection, order_id: int) -> str | None:
    order = order_rows.get_order_head(conn, order_id)
    return order.reference if order else None
