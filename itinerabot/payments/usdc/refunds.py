"""USDC refunds: Circle's crypto refund of a payment intent, asked with the refund's stored
idempotency key, and Circle's answer recorded (`refund_record`). The destination address and
chain are the traveller's own, so the operator gives them (`itinerabot orders refund`);
`refund_checks` looks a pending refund up until Circle concludes it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from functools import partial

from itinerabot.adapters.circle.budget import Lane
from itinerabot.adapters.circle.client import CircleClient
from itinerabot.adapters.circle.errors import CircleApiError
from itinerabot.adapters.circle.status import RefundView
from itinerabot.clock import WallClock
from itinerabot.errors import TransientServiceError
from itinerabot.models import PaymentMethod
from itinerabot.payments.usdc.refund_record import record_answer
from itinerabot.store import Store, money
from itinerabot.store.money import Refund, RefundStatus

log = logging.getLogger(__name__)


def circle_idempotency_key(key: str) -> str:
    """The idempotency key to send Circle, which takes only a UUID, for a stored key.

    Keys are stored as bare UUIDs (`money.begin_refund`) and sent unchanged. A key stored
    in the older form "itinerabot-refund-<uuid>" is sent as the UUID it ends with, and any
    other key as a UUID derived from it: the same each time, so a refund stored before keys
    became UUIDs is asked again with the key it was first asked with.
    """
    if _is_uuid(key):
        return key
    try:
        return str(uuid.UUID(key[-36:]))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


def _is_uuid(key: str) -> bool:
    try:
        return str(uuid.UUID(key)) == key
    except ValueError:
        return False


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
    `address` on `chain`, and record its answer: pending (Circle took it; `refund_checks`
    looks it up until it concludes), succeeded (sent: the traveller's message is queued in
    the same transaction) or failed (refused, with Circle's message). Returns the refund as
    recorded.

    Raises ValueError for a refund that is not a USDC one; TransientServiceError when Circle
    gave no usable answer (the refund stays requested, with the error: ask again, the same
    key makes that safe); StoreError if the store fails.
    """
    if refund.method != PaymentMethod.USDC:
        raise ValueError(f"refund {refund.id} is a {refund.method} refund, not a USDC one")
    ask = partial(
        client.refund_payment_intent,
        refund.provider_ref,
        idempotency_key=circle_idempotency_key(refund.idempotency_key),
        address=address,
        chain=chain,
        amount=refund.amount,
        lane=Lane.TRAVELLER,  # a person asked for it and waits for the answer
    )
    circle_refund, error = await _ask_circle(store, refund, ask, clock)
    recorded = await store.run(money.get_refund, refund.id)
    assert recorded is not None
    log.info(
        "usdc refund asked of circle",
        extra={
            "refund": refund.id,
            "intent": refund.provider_ref,
            "circle_refund": circle_refund,
            "amount": f"{refund.amount} {refund.currency}",
            "status": recorded.status.value,
            "error": error,
        },
    )
    return recorded


async def _ask_circle(
    store: Store, refund: Refund, ask: Callable[[], Awaitable[RefundView]], clock: WallClock
) -> tuple[str | None, str | None]:
    """Ask Circle for the refund (`ask`) and record its answer: (Circle's refund id, the
    error recorded). Raises TransientServiceError (recorded on the refund, still requested)
    and StoreError."""
    try:
        answer = await ask()
    except CircleApiError as exc:
        await store.run(
            money.set_refund_result, refund.id, RefundStatus.FAILED, clock(), error=exc.message
        )
        return None, exc.message
    except TransientServiceError as exc:
        await store.run(
            money.set_refund_result, refund.id, RefundStatus.REQUESTED, clock(), error=str(exc)
        )
        raise
    # a refund Circle sent at once tells the traveller here: the running bot's sender
    # finds the message at its next rescan (this may run in the operator's process)
    recorded = await store.run(record_answer, refund.id, answer, clock())
    return answer.id, recorded.refund.error
