"""What needs a person: anomalies, money owed back, refunds that failed, got no answer or
stay pending, PDFs and messages of paid orders that did not reach the chat. One item per
problem; each leaves the list once what it asks is done (or, for a message that nothing can
clear, after a while).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from itinerabot.messages import DOCUMENT_KINDS
from itinerabot.models import PaymentMethod
from itinerabot.operator.refund import order_money
from itinerabot.operator.refundable import OrderMoney
from itinerabot.operator.words import money_text, provider_name, refund_command
from itinerabot.store import history, money
from itinerabot.store import orders as order_rows
from itinerabot.store.history import MessageRecord
from itinerabot.store.money import Anomaly, ExtraPayment, Refund, RefundStatus

#: a refund still `requested` this long after its last try got no answer (the command or the
#: bot stopped mid-call; the bot's own retries come at most 10 minutes apart): running the
#: refund again asks for it without refunding twice
STUCK_AFTER = timedelta(minutes=15)
#: a USDC refund Circle answered `pending` and still pending this long after it was asked
#: (nothing may be looking it up): the operator checks it at Circle
PENDING_TOO_LONG = timedelta(hours=24)
#: how long a text that did not reach the chat of a delivered order stays listed: nothing can
#: clear it (the traveller has the PDF; a chat that blocked the bot stays blocked), so it is
#: left to `orders show` after this
TEXT_LISTED_FOR = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Attention:
    """One problem: when it arose, the order (if known), what it is and what to do."""

    at: datetime
    # anomaly | owed_back | refund_failed | refund_unanswered | refund_pending | undelivered
    # | message
    kind: str
    reference: str | None
    what: str
    action: str


def needs_attention(
    conn: sqlite3.Connection, now: datetime, *, stuck_after: timedelta = STUCK_AFTER
) -> list[Attention]:
    """Every open problem in the store, oldest first (run it in one read transaction)."""
    anomalies = money.anomalies(conn)
    failed = money.refunds_in(conn, (RefundStatus.FAILED,))
    unanswered = [
        r
        for r in money.refunds_in(conn, (RefundStatus.REQUESTED,))
        if r.updated_at <= now - stuck_after
    ]
    pending = [
        r
        for r in money.refunds_in(conn, (RefundStatus.PENDING,))
        if r.method == PaymentMethod.USDC and r.created_at <= now - PENDING_TOO_LONG
    ]
    held = _OrdersMoney(conn)
    # owed back while its pot has money left: a refund of the whole payment returns the
    # overpaid part too
    owed = [e for e in money.unrefunded_extra_payments(conn) if held.left_of_extra(e) > 0]
    failed = [r for r in failed if not _made_good(r, held)]
    undelivered = history.undelivered_orders(conn)
    messages = history.undelivered_messages(conn, texts_since=now - TEXT_LISTED_FOR)
    order_ids = {a.order_id for a in anomalies if a.order_id is not None}
    order_ids |= {e.order_id for e in owed} | {r.order_id for r in failed + unanswered + pending}
    order_ids |= {m.order_id for m in messages if m.order_id is not None}
    refs = history.references(conn, order_ids)

    items = [_anomaly(a, refs.get(a.order_id or 0)) for a in anomalies]
    last_failure = {r.extra_payment_id: r for r in failed if r.extra_payment_id is not None}
    items += [_owed(e, refs[e.order_id], last_failure.get(e.id)) for e in owed]
    owed_ids = {e.id for e in owed}
    items += [
        _refund_failed(r, refs[r.order_id]) for r in failed if r.extra_payment_id not in owed_ids
    ]
    items += [_refund_unanswered(r, refs[r.order_id]) for r in unanswered]
    items += [_refund_pending(r, refs[r.order_id], now) for r in pending]
    items += [_undelivered(o) for o in undelivered]
    failed_orders = {o.id for o in undelivered}
    items += [
        _message(m, refs[m.order_id])
        for m in messages
        if m.order_id is not None and not (m.kind in DOCUMENT_KINDS and m.order_id in failed_orders)
    ]
    return sorted(items, key=lambda item: item.at)


class _OrdersMoney:
    """Each order's money (`refund.order_money`), read once per order as it is asked for."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._held: dict[int, OrderMoney] = {}

    def of(self, order_id: int) -> OrderMoney:
        if order_id not in self._held:
            head = order_rows.get_order_head(self._conn, order_id)
            price = head.price if head is not None else Decimal(0)
            self._held[order_id] = order_money(self._conn, order_id, price)
        return self._held[order_id]

    def left_of_extra(self, extra: ExtraPayment) -> Decimal:
        return self.of(extra.order_id).left_of_extra(extra)


def _made_good(failed: Refund, held: _OrdersMoney) -> bool:
    """A failed refund needs nobody once a later refund of the same payment did not fail, or
    nothing is left to refund of that payment (other refunds on its reference took it)."""
    order = held.of(failed.order_id)
    if any(
        other.id > failed.id
        and other.extra_payment_id == failed.extra_payment_id
        and other.status != RefundStatus.FAILED
        for other in order.refunds
    ):
        return True
    if failed.extra_payment_id is None:
        return order.payment is not None and order.left_of_payment() <= 0
    extra = next((e for e in order.extras if e.id == failed.extra_payment_id), None)
    return extra is not None and order.left_of_extra(extra) <= 0


def anomaly_facts(a: Anomaly, *, brief: bool) -> str:
    """What an anomaly's detail says: its `why`, or else the amount and status it carried
    (`brief`) or every fact but the provider reference already shown."""
    detail = a.detail
    if detail.get("why"):
        return str(detail["why"])
    if brief:
        amount = detail.get("amount_total", detail.get("amount"))
        facts = [f"{amount} {detail.get('currency') or ''}".strip()] if amount is not None else []
        if detail.get("payment_status"):
            facts.append(f"payment_status {detail['payment_status']}")
        return ", ".join(facts)
    return ", ".join(f"{k} {v}" for k, v in detail.items() if v != a.provider_ref)


def _anomaly(a: Anomaly, reference: str | None) -> Attention:
    facts = anomaly_facts(a, brief=True)
    return Attention(
        at=a.created_at,
        kind="anomaly",
        reference=reference,
        what=f"anomaly #{a.id} from {a.source}: {a.reason}, {a.provider_ref}"
        + (f" ({facts})" if facts else "")
        + "; it paid nothing",
        action=_anomaly_action(a),
    )


def _anomaly_action(a: Anomaly) -> str:
    provider = provider_name(a.source)
    if provider == "Telegram":  # Stars go back only through the bot's refundStarPayment
        return (
            "the bot gives the Stars back within a minute; still listed later means Telegram"
            " refused refundStarPayment (the log says why)"
        )
    return f"look it up in {provider} and refund it there if money was taken"


def _owed(e: ExtraPayment, reference: str, failure: Refund | None) -> Attention:
    what = (
        f"{e.kind} payment #{e.id} of {money_text(e.amount, e.currency)} by {e.method}"
        f" ({e.provider_ref}) is owed back"
    )
    if failure is not None:
        what += f"; refund #{failure.id} failed: {failure.error or 'no reason given'}"
    return Attention(
        at=e.created_at,
        kind="owed_back",
        reference=reference,
        what=what,
        action=refund_command(reference, e.id, e.method),
    )


def _refund_failed(r: Refund, reference: str) -> Attention:
    return Attention(
        at=r.updated_at,
        kind="refund_failed",
        reference=reference,
        what=f"refund #{r.id} of {money_text(r.amount, r.currency)} by {r.method} failed:"
        f" {r.error or 'no reason given'}",
        action=refund_command(reference, r.extra_payment_id, r.method),
    )


def _refund_unanswered(r: Refund, reference: str) -> Attention:
    if r.method == PaymentMethod.CARD:
        # refund_card: the same key while Stripe keeps it, else a look-up, then a new key
        how = (
            " (asks Stripe again without refunding twice: the same key within 23 h,"
            " after that a look-up at Stripe first)"
        )
    elif r.method == PaymentMethod.STARS:
        how = " (asks Telegram again: it refunds a charge once at most)"
    else:
        how = " (asks Circle again with the same key)"
    return Attention(
        at=r.updated_at,
        kind="refund_unanswered",
        reference=reference,
        what=f"refund #{r.id} of {money_text(r.amount, r.currency)} was asked of"
        f" {provider_name(r.method)} with no answer recorded",
        action=refund_command(reference, r.extra_payment_id, r.method) + how,
    )


def _refund_pending(r: Refund, reference: str, now: datetime) -> Attention:
    hours = int((now - r.created_at).total_seconds() // 3600)
    circle_id = f"refund {r.provider_refund_id}" if r.provider_refund_id else "the refund"
    return Attention(
        at=r.created_at,
        kind="refund_pending",
        reference=reference,
        what=f"refund #{r.id} of {money_text(r.amount, r.currency)} by {r.method}"
        f" pending at {provider_name(r.method)} for {hours} h: check it",
        action=f"look up {circle_id} of intent {r.provider_ref} in Circle's dashboard",
    )


def _undelivered(o: history.OrderRecord) -> Attention:
    return Attention(
        at=o.paid_at or o.created_at,
        kind="undelivered",
        reference=o.reference,
        what=f"paid, PDF not delivered: {o.delivery_error or 'no reason recorded'}",
        action=f"itinerabot orders resend {o.reference}",
    )


def _message(m: MessageRecord, reference: str) -> Attention:
    if m.status == "unconfirmed":
        how = f"sent {m.unknown_outcomes} times with no answer"
    else:
        how = f"failed after {m.attempts} attempt" + ("" if m.attempts == 1 else "s")
    if m.kind in DOCUMENT_KINDS:
        action = f"itinerabot orders resend {reference}"
    else:
        action = f"itinerabot orders show {reference} (the chat may have blocked the bot)"
    return Attention(
        at=m.first_failed_at or m.created_at,
        kind="message",
        reference=reference,
        what=f"{m.kind} message #{m.id} to chat {m.chat_id} {how}: {m.error or 'no error'}",
        action=action,
    )
