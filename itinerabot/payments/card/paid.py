"""A Stripe Checkout Session that claims to pay: judged, then recorded in one transaction
(the payment, or the anomalies), for the webhook and the deep-link return alike.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from itinerabot.payments.card.verify import METADATA_MISMATCH, Verdict, judge_session
from itinerabot.payments.fulfilment import Fulfilment, Recorded, record_payment
from itinerabot.store import card_sessions as sessions
from itinerabot.store import money
from itinerabot.store import orders as order_rows

log = logging.getLogger(__name__)

SOURCE = "stripe"


@dataclass(frozen=True, slots=True)
class TakenSession:
    """What taking a session did: its verdict, and the payment recorded if it paid."""

    session_id: str
    verdict: Verdict
    recorded: Recorded | None


def take_paid_session(
    conn: sqlite3.Connection,
    session: Mapping[str, Any],
    *,
    livemode: bool,
    event_livemode: bool | None,
    source: str,
    now: datetime,
) -> TakenSession:
    """Inside the caller's transaction: find the order the bot stored this session for, judge
    the session, record its anomalies and, if it pays, the payment (`record_payment`).

    Safe to find done: anomalies and payments are recorded once however often it runs.
    """
    session_id = str(session["id"])
    stored = sessions.by_session_id(conn, session_id)
    order = order_rows.get_order_head(conn, stored.order_id) if stored is not None else None
    verdict = judge_session(
        session, order, livemode=livemode, event_livemode=event_livemode, paid_at=now
    )
    # A session the bot never made pays nothing, but the order it names is where the operator
    # will look for it (`itinerabot orders show REF`): file the anomaly there.
    filed_under = verdict.order_id if stored is not None else _named_order(conn, session)
    for problem in verdict.problems:
        money.record_anomaly(
            conn,
            source=SOURCE,
            provider_ref=session_id,
            reason=problem.reason,
            detail=problem.detail,
            now=now,
            order_id=filed_under,
        )
    if stored is not None and (
        verdict.payment is not None or (session.get("status") == "complete" and not verdict.waiting)
    ):
        # ended at Stripe, paid or not: nothing more to look up (the reconciler skips it)
        sessions.set_status(conn, session_id, sessions.SessionStatus.COMPLETE)
    recorded = None
    if verdict.payment is not None and verdict.order_id is not None:
        recorded = record_payment(conn, verdict.order_id, verdict.payment, source, now)
    return TakenSession(session_id, verdict, recorded)


def _named_order(conn: sqlite3.Connection, session: Mapping[str, Any]) -> int | None:
    """The order a session names in its metadata or reference (unverified: a hint only)."""
    for ref in (
        (session.get("metadata") or {}).get("order_reference"),
        session.get("client_reference_id"),
    ):
        if ref:
            found = order_rows.order_id_by_reference(conn, str(ref))
            if found is not None:
                return found
    return None


def settle_taken(taken: TakenSession, fulfilment: Fulfilment) -> bool:
    """After `take_paid_session` committed: log each anomaly at WARNING and hand a recorded
    payment to fulfilment. True if this call made the order paid."""
    for problem in taken.verdict.problems:
        what = (
            "stripe session names another order: its own order is paid"
            if problem.reason == METADATA_MISMATCH
            else "stripe session claims a payment that pays nothing"
        )
        log.warning(
            what,
            extra={
                "session": taken.session_id,
                "reason": problem.reason,
                "order": problem.detail.get("order"),
                "amount_total": problem.detail.get("amount_total"),
                "currency": problem.detail.get("currency"),
                "payment_status": problem.detail.get("payment_status"),
            },
        )
    if taken.recorded is None:
        return False
    return fulfilment.settle(taken.recorded)
