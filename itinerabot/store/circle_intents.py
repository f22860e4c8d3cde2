"""Circle payment intents per order and attempt: written before the create call, then the
intent id, the poller's absolute deadline and Circle's `expiresOn`, so watching resumes
after a restart and the operator's CLI reads the same state as `serve`.
"""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from itinerabot.models import OrderStatus
from itinerabot.store.attempts import insert_attempt
from itinerabot.store.sql import marks


class IntentStatus(enum.StrEnum):
    """An intent's life in the store:

    creating → polling        the 30 s poller watches it, until its window's `deadline_epoch`
    polling → timed_out       the window ended unpaid: the late watcher checks it until expiry
    polling | timed_out → superseded
                              the order was paid another way: Circle was asked to expire it,
                              and the late watcher checks it until Circle says it is final
    → paid | expired | failed | refunded   what Circle said last (final)
    → lapsed                  checked until `expiresOn` + margin, never final at Circle
    """

    CREATING = "creating"
    POLLING = "polling"
    TIMED_OUT = "timed_out"
    SUPERSEDED = "superseded"
    PAID = "paid"
    EXPIRED = "expired"
    FAILED = "failed"
    REFUNDED = "refunded"
    LAPSED = "lapsed"


OPEN = (
    IntentStatus.CREATING,
    IntentStatus.POLLING,
    IntentStatus.TIMED_OUT,
    IntentStatus.SUPERSEDED,
)
#: order statuses of an order that has been paid
_PAID_ORDER = tuple(status for status in OrderStatus if status.is_paid)


@dataclass(frozen=True, slots=True)
class IntentRow:
    order_id: int
    attempt: int
    idempotency_key: str
    intent_id: str | None
    status: IntentStatus
    deadline_epoch: float | None
    address: str | None
    chain: str | None
    notified_paid: str | None
    expires_on: datetime | None
    created_at: datetime


def _row(row: sqlite3.Row) -> IntentRow:
    return IntentRow(
        order_id=row["order_id"],
        attempt=row["attempt"],
        idempotency_key=row["idempotency_key"],
        intent_id=row["intent_id"],
        status=IntentStatus(row["status"]),
        deadline_epoch=row["deadline_epoch"],
        address=row["address"],
        chain=row["chain"],
        notified_paid=row["notified_paid"],
        expires_on=_when(row["expires_on"]),
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def latest(conn: sqlite3.Connection, order_id: int) -> IntentRow | None:
    row = conn.execute(
        "SELECT * FROM circle_intents WHERE order_id = ? ORDER BY attempt DESC LIMIT 1",
        (order_id,),
    ).fetchone()
    return _row(row) if row else None


def by_intent_id(conn: sqlite3.Connection, intent_id: str) -> IntentRow | None:
    row = conn.execute("SELECT * FROM circle_intents WHERE intent_id = ?", (intent_id,)).fetchone()
    return _row(row) if row else None


def begin_attempt(
    conn: sqlite3.Connection, order_id: int, idempotency_key: str, chain: str, now: datetime
) -> IntentRow:
    """Store a new attempt (status `creating`) with its key, before Circle is asked."""
    insert_attempt(
        conn, "circle_intents", order_id, now, idempotency_key=idempotency_key, chain=chain
    )
    found = latest(conn, order_id)
    assert found is not None
    return found


def set_created(
    conn: sqlite3.Connection, order_id: int, attempt: int, intent_id: str, deadline_epoch: float
) -> bool:
    """Record the created intent (polling until `deadline_epoch`); True if its order was
    paid meanwhile (another way, while Circle was creating it): then nobody polls it, and
    it is to be expired like any intent of a paid order."""
    conn.execute(
        "UPDATE circle_intents SET intent_id = ?, status = 'polling', deadline_epoch = ?"
        " WHERE order_id = ? AND attempt = ? AND status = 'creating'",
        (intent_id, deadline_epoch, order_id, attempt),
    )
    row = conn.execute(
        f"SELECT status IN ({marks(_PAID_ORDER)}) FROM orders WHERE id = ?",
        (*_PAID_ORDER, order_id),
    ).fetchone()
    return bool(row and row[0])


def set_status(conn: sqlite3.Connection, intent_id: str, status: IntentStatus) -> bool:
    """Move an open intent to `status`; False if it had already ended."""
    cur = conn.execute(
        f"UPDATE circle_intents SET status = ? WHERE intent_id = ? AND status IN ({marks(OPEN)})",
        (status, intent_id, *OPEN),
    )
    return cur.rowcount == 1


def end_window(conn: sqlite3.Connection, intent_id: str) -> bool:
    """polling → timed_out; True only for the call that moved it (so the chat is told once)."""
    cur = conn.execute(
        "UPDATE circle_intents SET status = 'timed_out' WHERE intent_id = ? AND status = 'polling'",
        (intent_id,),
    )
    return cur.rowcount == 1


def supersede(conn: sqlite3.Connection, intent_id: str) -> bool:
    """polling | timed_out → superseded (Circle has answered the request to expire it)."""
    cur = conn.execute(
        "UPDATE circle_intents SET status = 'superseded'"
        " WHERE intent_id = ? AND status IN ('polling', 'timed_out')",
        (intent_id,),
    )
    return cur.rowcount == 1


def set_address(conn: sqlite3.Connection, intent_id: str, address: str, chain: str) -> bool:
    """Record the deposit address once; True the first time (so it is told to the chat once)."""
    cur = conn.execute(
        "UPDATE circle_intents SET address = ?, chain = ? WHERE intent_id = ? AND address IS NULL",
        (address, chain, intent_id),
    )
    return cur.rowcount == 1


def set_expires_on(conn: sqlite3.Connection, intent_id: str, expires_on: datetime) -> None:
    """Record Circle's `expiresOn` (kept up to date: it is when the late watcher stops)."""
    value = expires_on.isoformat()
    conn.execute(
        "UPDATE circle_intents SET expires_on = ? WHERE intent_id = ?"
        " AND (expires_on IS NULL OR expires_on != ?)",
        (value, intent_id, value),
    )


def set_notified_paid(conn: sqlite3.Connection, intent_id: str, amount: str) -> bool:
    """Remember the partial amount last seen on the intent; True if it is a new amount (so
    the chat is told once per amount). It is also what a lapsed intent owes back."""
    cur = conn.execute(
        "UPDATE circle_intents SET notified_paid = ? WHERE intent_id = ?"
        " AND (notified_paid IS NULL OR notified_paid != ?)",
        (amount, intent_id, amount),
    )
    return cur.rowcount == 1


def windowed_intents(conn: sqlite3.Connection) -> list[tuple[int, str, float]]:
    """(order id, intent id, deadline) of each intent in the 30 s poller's care: polling, its
    order still awaiting payment. Those whose window has passed by now are the late
    watcher's; the caller sorts them out by one clock reading (a filter here would read
    another, and an intent whose window ends between the two would be nobody's). Plain
    tuples: a restart may bring back tens of thousands."""
    rows = conn.execute(
        "SELECT ci.order_id, ci.intent_id, ci.deadline_epoch"
        " FROM circle_intents ci JOIN orders o ON o.id = ci.order_id"
        " WHERE ci.status = 'polling' AND ci.intent_id IS NOT NULL"
        " AND ci.deadline_epoch IS NOT NULL AND o.status IN ('awaiting_payment', 'cancelled')",
    ).fetchall()
    return [(int(r[0]), str(r[1]), float(r[2])) for r in rows]


def next_window_end(conn: sqlite3.Connection, after_epoch: float) -> float | None:
    """The earliest window end (epoch seconds) after `after_epoch` of a polling intent, or
    None: when the late watcher, idle, must look again even if no poller hands over."""
    (end,) = conn.execute(
        "SELECT MIN(deadline_epoch) FROM circle_intents"
        " WHERE status = 'polling' AND intent_id IS NOT NULL AND deadline_epoch > ?",
        (after_epoch,),
    ).fetchone()
    return float(end) if end is not None else None


@dataclass(frozen=True, slots=True)
class LateIntent:
    """An open intent the late watcher looks after (see `late_intents`)."""

    order_id: int
    intent_id: str
    status: IntentStatus
    address: str | None
    expires_on: datetime | None
    created_at: datetime
    notified_paid: str | None
    #: the order was paid by another payment (card, another intent): expire this one
    superseded: bool


def late_intents(conn: sqlite3.Connection, now_epoch: float) -> list[LateIntent]:
    """Open intents no 30 s poller watches: window over (timed_out, or polling past its
    deadline because the bot was down), superseded, or of an order paid another way."""
    rows = conn.execute(
        "SELECT ci.order_id, ci.intent_id, ci.status, ci.address, ci.expires_on, ci.created_at,"
        f" ci.notified_paid, o.status IN ({marks(_PAID_ORDER)}) AND COALESCE(p.provider_ref, '') !="
        " ci.intent_id AS superseded"
        " FROM circle_intents ci JOIN orders o ON o.id = ci.order_id"
        " LEFT JOIN payments p ON p.order_id = ci.order_id"
        " WHERE ci.status IN ('polling', 'timed_out', 'superseded') AND ci.intent_id IS NOT NULL"
        " AND (ci.status != 'polling' OR COALESCE(ci.deadline_epoch, 0) <= ?"
        f" OR o.status IN ({marks(_PAID_ORDER)}))"
        " ORDER BY ci.order_id, ci.attempt",
        (*_PAID_ORDER, now_epoch, *_PAID_ORDER),
    ).fetchall()
    return [
        LateIntent(
            order_id=r["order_id"],
            intent_id=r["intent_id"],
            status=IntentStatus(r["status"]),
            address=r["address"],
            expires_on=_when(r["expires_on"]),
            created_at=datetime.fromisoformat(r["created_at"]),
            notified_paid=r["notified_paid"],
            superseded=bool(r["superseded"]),
        )
        for r in rows
    ]


def superseded_of(conn: sqlite3.Connection, order_id: int) -> list[str]:
    """Ids of the order's intents still open in the store, now that the order is paid by
    some other payment (an intent that paid the order itself is not among them)."""
    rows = conn.execute(
        "SELECT ci.intent_id FROM circle_intents ci JOIN payments p ON p.order_id = ci.order_id"
        " WHERE ci.order_id = ? AND ci.intent_id IS NOT NULL AND ci.intent_id != p.provider_ref"
        " AND ci.status IN ('polling', 'timed_out')",
        (order_id,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def drop_partial_owed(conn: sqlite3.Connection, order_id: int, intent_id: str) -> bool:
    """The intent's whole amount was recorded at last (it paid the order, or is owed back as
    a second payment) after a part of it was recorded owed back (it lapsed, then Circle
    confirmed it): that part is not owed on top. Dropped unless a refund of it was begun
    (then it stays, for the operator). True if one was dropped."""
    cur = conn.execute(
        "DELETE FROM extra_payments WHERE order_id = ? AND method = 'usdc' AND provider_ref = ?"
        " AND kind = 'partial'"
        " AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.extra_payment_id = extra_payments.id)"
        " AND (EXISTS (SELECT 1 FROM payments p WHERE p.order_id = ? AND p.provider_ref = ?)"
        " OR EXISTS (SELECT 1 FROM extra_payments s WHERE s.method = 'usdc'"
        " AND s.provider_ref = ? AND s.kind = 'second'))",
        (order_id, intent_id, order_id, intent_id, intent_id),
    )
    return cur.rowcount > 0


def event_seen(conn: sqlite3.Connection, source: str, event_id: str) -> bool:
    """True if the webhook event `event_id` of `source` was taken before (see
    misc.record_event, which records it once it has been acted on)."""
    row = conn.execute(
        "SELECT 1 FROM webhook_events WHERE source = ? AND event_id = ?", (source, event_id)
    ).fetchone()
    return row is not None
