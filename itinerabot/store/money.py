"""Money that needs a person: anomalies, extra payments (partial or second) and refunds.

An *anomaly* is a genuine provider event that pays nothing (a session the bot never made, a
wrong amount or currency). An *extra payment* is money that arrived but did not pay its order;
it is owed back, by a *refund* whose idempotency key is stored before the provider is asked.
Functions run inside the caller's transaction (`Store.run`).
"""

from __future__ import annotations

import enum
import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from itinerabot.models import Payment, PaymentMethod
from itinerabot.store.sql import marks


class ExtraKind(enum.StrEnum):
    """Why money did not pay its order."""

    PARTIAL = "partial"  # an intent ended underpaid: what arrived is owed back
    SECOND = "second"  # the order was already paid another way (or by another session)
    OVERPAID = "overpaid"  # the part of a payment above the price (USDC: any amount may arrive)


class RefundStatus(enum.StrEnum):
    REQUESTED = "requested"  # stored, the provider not yet (or not surely) asked
    PENDING = "pending"  # the provider took it and is still processing
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Anomaly:
    id: int
    source: str
    provider_ref: str
    order_id: int | None
    reason: str
    detail: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ExtraPayment:
    id: int
    order_id: int
    method: PaymentMethod
    kind: ExtraKind
    amount: Decimal
    currency: str
    provider_ref: str
    provider_payment_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Refund:
    id: int
    order_id: int
    extra_payment_id: int | None
    method: PaymentMethod
    provider_ref: str
    amount: Decimal
    currency: str
    idempotency_key: str
    status: RefundStatus
    provider_refund_id: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime


def record_anomaly(
    conn: sqlite3.Connection,
    *,
    source: str,
    provider_ref: str,
    reason: str,
    detail: dict[str, Any],
    now: datetime,
    order_id: int | None = None,
) -> bool:
    """Remember a genuine event that paid nothing; False if the same one was recorded before."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO anomalies (source, provider_ref, order_id, reason, detail,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (source, provider_ref, order_id, reason, json.dumps(detail, default=str), now.isoformat()),
    )
    return cur.rowcount == 1


def resolve_anomaly(conn: sqlite3.Connection, anomaly_id: int, now: datetime) -> bool:
    """Mark an anomaly settled (its money given back); False if it was before."""
    cur = conn.execute(
        "UPDATE anomalies SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL",
        (now.isoformat(), anomaly_id),
    )
    return cur.rowcount == 1


def record_extra_payment(
    conn: sqlite3.Connection, order_id: int, payment: Payment, kind: ExtraKind, now: datetime
) -> int | None:
    """Record money owed back; its id, or None if this payment was recorded before."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO extra_payments (order_id, method, kind, amount, currency,"
        " provider_ref, provider_payment_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            order_id,
            payment.method.value,
            kind.value,
            str(payment.amount),
            payment.currency,
            payment.provider_ref,
            payment.provider_payment_id,
            now.isoformat(),
        ),
    )
    return cur.lastrowid if cur.rowcount == 1 else None


def raise_extra_payment(
    conn: sqlite3.Connection, extra_id: int, amount: Decimal, provider_payment_id: str | None
) -> bool:
    """Raise an extra payment's amount to `amount` (more arrived on the same intent); True if
    it grew. Amounts are compared as decimals, never as text."""
    row = conn.execute("SELECT amount FROM extra_payments WHERE id = ?", (extra_id,)).fetchone()
    if row is None or Decimal(row[0]) >= amount:
        return False
    conn.execute(
        "UPDATE extra_payments SET amount = ?,"
        " provider_payment_id = COALESCE(?, provider_payment_id) WHERE id = ?",
        (str(amount), provider_payment_id, extra_id),
    )
    return True


def raise_owed(conn: sqlite3.Connection, owed: Payment, kind: ExtraKind) -> ExtraPayment | None:
    """Raise the extra payment of `kind` recorded for `owed`'s payment (its method and
    provider reference) to `owed.amount`: more arrived on it since. The extra payment as it
    was before, or None if none is recorded or it did not grow."""
    known = find_extra_payment(conn, owed.method, owed.provider_ref, kind)
    if known is None or not raise_extra_payment(
        conn, known.id, owed.amount, owed.provider_payment_id
    ):
        return None
    return known


def find_extra_payment(
    conn: sqlite3.Connection, method: PaymentMethod, provider_ref: str, kind: ExtraKind
) -> ExtraPayment | None:
    row = conn.execute(
        "SELECT * FROM extra_payments WHERE method = ? AND provider_ref = ? AND kind = ?",
        (method.value, provider_ref, kind.value),
    ).fetchone()
    return _extra(row) if row else None


def _anomaly(row: sqlite3.Row) -> Anomaly:
    return Anomaly(
        id=row["id"],
        source=row["source"],
        provider_ref=row["provider_ref"],
        order_id=row["order_id"],
        reason=row["reason"],
        detail=json.loads(row["detail"]),
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def _extra(row: sqlite3.Row) -> ExtraPayment:
    return ExtraPayment(
        id=row["id"],
        order_id=row["order_id"],
        method=PaymentMethod(row["method"]),
        kind=ExtraKind(row["kind"]),
        amount=Decimal(row["amount"]),
        currency=row["currency"],
        provider_ref=row["provider_ref"],
        provider_payment_id=row["provider_payment_id"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def _refund(row: sqlite3.Row) -> Refund:
    return Refund(
        id=row["id"],
        order_id=row["order_id"],
        extra_payment_id=row["extra_payment_id"],
        method=PaymentMethod(row["method"]),
        provider_ref=row["provider_ref"],
        amount=Decimal(row["amount"]),
        currency=row["currency"],
        idempotency_key=row["idempotency_key"],
        status=RefundStatus(row["status"]),
        provider_refund_id=row["provider_refund_id"],
        error=row["error"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


def anomalies(conn: sqlite3.Connection, order_id: int | None = None) -> list[Anomaly]:
    """Unresolved anomalies, oldest first; only those of `order_id` if given."""
    if order_id is None:
        rows = conn.execute(
            "SELECT * FROM anomalies WHERE resolved_at IS NULL ORDER BY id"
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT * FROM anomalies WHERE order_id = ? ORDER BY id", (order_id,)
        ).fetchall()
    return [_anomaly(r) for r in rows]


def extra_payments(conn: sqlite3.Connection, order_id: int) -> list[ExtraPayment]:
    rows = conn.execute(
        "SELECT * FROM extra_payments WHERE order_id = ? ORDER BY id", (order_id,)
    ).fetchall()
    return [_extra(r) for r in rows]


def get_extra_payment(conn: sqlite3.Connection, extra_id: int) -> ExtraPayment | None:
    row = conn.execute("SELECT * FROM extra_payments WHERE id = ?", (extra_id,)).fetchone()
    return _extra(row) if row else None


def unrefunded_extra_payments(conn: sqlite3.Connection) -> list[ExtraPayment]:
    """Extra payments with no refund that succeeded or is under way, oldest first."""
    rows = conn.execute(
        "SELECT * FROM extra_payments e WHERE NOT EXISTS (SELECT 1 FROM refunds r"
        " WHERE r.extra_payment_id = e.id AND r.status IN ('requested', 'pending', 'succeeded'))"
        " ORDER BY e.id"
    ).fetchall()
    return [_extra(r) for r in rows]


def begin_refund(
    conn: sqlite3.Connection,
    *,
    order_id: int,
    method: PaymentMethod,
    provider_ref: str,
    amount: Decimal,
    currency: str,
    now: datetime,
    extra_payment_id: int | None = None,
) -> Refund:
    """Store a refund (status requested) with a fresh idempotency key, before the API call.

    The key is a bare UUID4 string: Circle takes only a UUID, Stripe any string."""
    cur = conn.execute(
        "INSERT INTO refunds (order_id, extra_payment_id, method, provider_ref, amount, currency,"
        " idempotency_key, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            order_id,
            extra_payment_id,
            method.value,
            provider_ref,
            str(amount),
            currency,
            str(uuid.uuid4()),
            RefundStatus.REQUESTED.value,
            now.isoformat(),
            now.isoformat(),
        ),
    )
    found = get_refund(conn, int(cur.lastrowid or 0))
    assert found is not None
    return found


def begin_extra_refund(
    conn: sqlite3.Connection, extra: ExtraPayment, provider_ref: str, now: datetime
) -> Refund:
    """A refund of all of `extra`, stored (requested) before the provider is asked, naming
    `provider_ref` (what the provider refunds: Stripe's PaymentIntent, Telegram's charge)."""
    return begin_refund(
        conn,
        order_id=extra.order_id,
        method=extra.method,
        provider_ref=provider_ref,
        amount=extra.amount,
        currency=extra.currency,
        now=now,
        extra_payment_id=extra.id,
    )


def get_refund(conn: sqlite3.Connection, refund_id: int) -> Refund | None:
    row = conn.execute("SELECT * FROM refunds WHERE id = ?", (refund_id,)).fetchone()
    return _refund(row) if row else None


def refunds(conn: sqlite3.Connection, order_id: int) -> list[Refund]:
    rows = conn.execute("SELECT * FROM refunds WHERE order_id = ? ORDER BY id", (order_id,))
    return [_refund(r) for r in rows.fetchall()]


def refunds_in(conn: sqlite3.Connection, statuses: tuple[RefundStatus, ...]) -> list[Refund]:
    rows = conn.execute(
        f"SELECT * FROM refunds WHERE status IN ({marks(statuses)}) ORDER BY id",
        tuple(s.value for s in statuses),
    )
    return [_refund(r) for r in rows.fetchall()]


#: the statuses a refund may be in when it moves to each status: forward only. A refund
#: never goes back to requested or pending, and failed is final (Stripe's is; a late
#: `refund.updated` must not undo a `refund.failed`). Succeeded moves on only to failed, and
#: only when the provider reports it failed after all (`returned`).
_MAY_COME_FROM: dict[RefundStatus, tuple[RefundStatus, ...]] = {
    RefundStatus.REQUESTED: (RefundStatus.REQUESTED,),
    RefundStatus.PENDING: (RefundStatus.REQUESTED, RefundStatus.PENDING),
    RefundStatus.SUCCEEDED: (RefundStatus.REQUESTED, RefundStatus.PENDING),
    RefundStatus.FAILED: (RefundStatus.REQUESTED, RefundStatus.PENDING),
}


def set_refund_result(
    conn: sqlite3.Connection,
    refund_id: int,
    status: RefundStatus,
    now: datetime,
    *,
    provider_refund_id: str | None = None,
    error: str | None = None,
    returned: bool = False,
) -> RefundStatus | None:
    """Record what the provider answered, in the state order above: requested → pending →
    succeeded or failed, never backwards. `returned` (a provider event whose status is
    failed) also lets a succeeded refund become failed: a card refund the bank sent back.

    The provider's refund id is stored whenever it was missing, even if the status may not
    change. Returns the status the refund had if this call changed it, else None.
    """
    row = conn.execute("SELECT status FROM refunds WHERE id = ?", (refund_id,)).fetchone()
    if row is None:
        return None
    before = RefundStatus(row["status"])
    allowed = _MAY_COME_FROM[status]
    if returned and status == RefundStatus.FAILED:
        allowed = (*allowed, RefundStatus.SUCCEEDED)
    if before not in allowed:
        if provider_refund_id is not None:
            conn.execute(
                "UPDATE refunds SET provider_refund_id = ? WHERE id = ?"
                " AND provider_refund_id IS NULL",
                (provider_refund_id, refund_id),
            )
        return None
    conn.execute(
        "UPDATE refunds SET status = ?, provider_refund_id = COALESCE(?, provider_refund_id),"
        " error = ?, updated_at = ? WHERE id = ? AND status = ?",
        (status.value, provider_refund_id, error, now.isoformat(), refund_id, before.value),
    )
    return before


#: the error of a refund replaced by a new one: "superseded by refund #<id>: <why>"
_SUPERSEDED = "superseded by refund #"


def supersede_refund(
    conn: sqlite3.Connection, refund_id: int, now: datetime, why: str
) -> Refund | None:
    """Replace a refund still `requested` whose idempotency key is too old to send again:
    mark it failed ("superseded by refund #N: why") and store refund N, for the same payment
    and amount, with a fresh key. The new refund; None if the old one is no longer requested.
    """
    old = get_refund(conn, refund_id)
    if old is None or old.status != RefundStatus.REQUESTED:
        return None
    # failed first: an extra payment has at most one refund under way (a unique index)
    conn.execute(
        "UPDATE refunds SET status = 'failed', updated_at = ? WHERE id = ?",
        (now.isoformat(), refund_id),
    )
    new = begin_refund(
        conn,
        order_id=old.order_id,
        method=old.method,
        provider_ref=old.provider_ref,
        amount=old.amount,
        currency=old.currency,
        now=now,
        extra_payment_id=old.extra_payment_id,
    )
    conn.execute(
        "UPDATE refunds SET error = ? WHERE id = ?", (f"{_SUPERSEDED}{new.id}: {why}", refund_id)
    )
    return new


def current_refund(conn: sqlite3.Connection, refund_id: int) -> Refund | None:
    """The refund that stands for `refund_id` now: itself, or the newest refund that
    superseded it (`supersede_refund`)."""
    refund = get_refund(conn, refund_id)
    while refund is not None and refund.status == RefundStatus.FAILED:
        head, _, _ = (refund.error or "").removeprefix(_SUPERSEDED).partition(":")
        if not (refund.error or "").startswith(_SUPERSEDED) or not (
            head.isascii() and head.isdigit()
        ):
            break
        newer = get_refund(conn, int(head))
        if newer is None or newer.id <= refund.id:  # ids grow: no loop
            break
        refund = newer
    return refund


def refunds_to_look_up(conn: sqlite3.Connection, method: PaymentMethod) -> list[Refund]:
    """Refunds of `method` that the provider knows (it gave their id) and has not concluded:
    pending, or still requested with the provider's id. Oldest first."""
    rows = conn.execute(
        "SELECT * FROM refunds WHERE method = ? AND provider_refund_id IS NOT NULL"
        " AND status IN ('requested', 'pending') ORDER BY id",
        (method.value,),
    )
    return [_refund(r) for r in rows.fetchall()]
