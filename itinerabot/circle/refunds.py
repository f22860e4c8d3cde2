"""USDC refunds: Circle's crypto refund of a payment intent, asked with the refund's stored
idempotency key, and Circle's answer recorded. The destination address and chain are the
traveller's own, so the operator gives them (`itinerabot orders refund`).
"""

from __future__ import annotations

import logging
import uuid

from itinerabot.circle.client import CircleClient
from itinerabot.circle.errors import CircleApiError
from itinerabot.clock import WallClock
from itinerabot.errors import TransientServiceError
from itinerabot.models import PaymentMethod
from itinerabot.store import Store, money
from itinerabot.store.money import Refund, RefundStatus

log = logging.getLogger(__name__)

#: Circle's payment statuses (PaymentStatus in its spec) as a refund's; others are pending
_STATUS = {"paid": RefundStatus.SUCCEEDED, "failed": RefundStatus.FAILED}


def circle_idempotency_key(key: str) -> str:
    """Circle takes only a UUID: the UUID the stored key ends with, or else one derived from
    the key (the same each time, so a retry is still recognised)."""
    try:
        return str(uuid.UUID(key[-36:]))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


async def refund_usdc(
    store: Store,
    client: CircleClient,
    refund: Refund,
    *,
    address: str,
    chain: str,
    clock: WallClock,
) -> Refund:
    """Ask Circle to send `refund.amount` USDC paid on intent `refund.provider_ref` back to
    `address` on `chain`, and record its answer: pending (Circle took it), succeeded (sent)
    or failed (refused, with Circle's message). Returns the refund as recorded.

    Raises ValueError for a refund that is not a USDC one; TransientServiceError when Circle
    gave no usable answer (the refund stays requested, with the error: ask again, the same
    key makes that safe); StoreError if the store fails.
    """
    if refund.method != PaymentMethod.USDC:
        raise ValueError(f"refund {refund.id} is a {refund.method} refund, not a USDC one")
    provider_refund_id = None
    error = None
    try:
        answer = await client.refund_payment_intent(
            refund.provider_ref,
            idempotency_key=circle_idempotency_key(refund.idempotency_key),
            address=address,
            chain=chain,
            amount=refund.amount,
        )
    except CircleApiError as exc:
        status, error = RefundStatus.FAILED, exc.message
    except TransientServiceError as exc:
        await store.run(
            money.set_refund_result, refund.id, RefundStatus.REQUESTED, clock(), error=str(exc)
        )
        raise
    else:
        status = _STATUS.get(answer.status, RefundStatus.PENDING)
        provider_refund_id = answer.id
    await store.run(
        money.set_refund_result,
        refund.id,
        status,
        clock(),
        provider_refund_id=provider_refund_id,
        error=error,
    )
    log.info(
        "usdc refund asked of circle",
        extra={
            "refund": refund.id,
            "intent": refund.provider_ref,
            "amount": f"{refund.amount} {refund.currency}",
            "status": status.value,
            "error": error,
        },
    )
    recorded = await store.run(money.get_refund, refund.id)
    assert recorded is not None
    return recorded
