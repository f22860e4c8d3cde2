"""The operator's text: lines for the attention list, an order's history and the results of
resend and refund. Pure functions from records to strings; no secret is ever stored, and the
Checkout URL and idempotency keys are left out.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from itinerabot.models import Payment, PaymentMethod
from itinerabot.operator.attention import Attention, anomaly_facts
from itinerabot.operator.history import OrderHistory
from itinerabot.operator.refund import RefundTarget
from itinerabot.operator.resend import Resent
from itinerabot.operator.words import money_text, provider_name
from itinerabot.store.history import IntentRecord, MessageRecord, OrderRecord, SessionRecord
from itinerabot.store.money import Anomaly, ExtraPayment, Refund, RefundStatus


def when(t: datetime | None) -> str:
    """`2026-05-01 10:00:00 UTC`, or `-` for no time."""
    if t is None:
        return "-"
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if t.tzinfo is not None else "")


def price_text(total: Decimal, currency: str, quantity: int) -> str:
    """An order's price: `10.00 USD`, or `20.00 USD (2 × 10.00 USD)` when the total is made of
    several units (travellers, when priced per traveller)."""
    text = money_text(total, currency)
    if quantity > 1:
        text += f" ({quantity} × {money_text(total / quantity, currency)})"
    return text


def attention_lines(items: list[Attention]) -> list[str]:
    """One line per item, oldest first: when, the order, what, and what to do."""
    if not items:
        return ["nothing needs attention"]
    return [f"{when(i.at)}  {i.reference or '-'}  {i.what}  → {i.action}" for i in items]


def attention_json(items: list[Attention]) -> str:
    """The same items as a JSON array of objects (at, kind, reference, what, action)."""
    return json.dumps(
        [
            {
                "at": i.at.isoformat(),
                "kind": i.kind,
                "reference": i.reference,
                "what": i.what,
                "action": i.action,
            }
            for i in items
        ],
        indent=2,
    )


def history_lines(h: OrderHistory) -> list[str]:
    """An order's whole history, section by section; the messages in the order queued."""
    return [
        *_order_lines(h.order),
        *_payment_lines(h.payment),
        *_section("Card sessions (Stripe Checkout)", [_session_line(s) for s in h.card_sessions]),
        *_section("USDC payment intents (Circle)", [_intent_line(c) for c in h.circle_intents]),
        *_section("Extra payments (owed back)", [_extra_line(e) for e in h.extra_payments]),
        *_section("Refunds", [_refund_history_line(r) for r in h.refunds]),
        *_section("Anomalies", [_anomaly_line(a) for a in h.anomalies]),
        "Messages",
        *([_message_line(m) for m in h.messages] or ["  none"]),
    ]


def _section(title: str, rows: list[str]) -> list[str]:
    """`title` over its `rows`; nothing at all when there are none."""
    return [title, *rows] if rows else []


def _order_lines(o: OrderRecord) -> list[str]:
    lines = [
        f"Order {o.reference}: {o.status.value.replace('_', ' ')}",
        f"  chat {o.chat_id}, price {price_text(o.price, o.currency, o.quantity)}",
        f"  created {when(o.created_at)}, paid {when(o.paid_at)}, delivered {when(o.delivered_at)}",
        *(f"  passenger {name}" for name in o.itinerary.passengers),
    ]
    lines += [
        f"  flight {f.flight_number} {f.origin.iata} → {f.destination.iata},"
        f" {f.departure_local:%Y-%m-%d %H:%M} → {f.arrival_local:%Y-%m-%d %H:%M} (local)"
        for f in o.itinerary.flights
    ]
    if o.delivery_error:
        lines.append(f"  delivery error: {o.delivery_error}")
    return lines


def _payment_lines(p: Payment | None) -> list[str]:
    if p is None:
        return ["Payment", "  none"]
    paid = f"{p.method} {money_text(p.amount, p.currency)} at {when(p.paid_at)}"
    lines = ["Payment", f"  {paid}: {_ids(p.method, p.provider_ref, p.provider_payment_id)}"]
    if p.tx_hash:
        lines.append(f"  transaction {p.tx_hash}")
    return lines


def _session_line(s: SessionRecord) -> str:
    return (
        f"  attempt {s.attempt}: {s.session_id or '(not created)'} {s.status},"
        f" created {when(s.created_at)}, expires {when(s.expires_at)}"
    )


def _extra_line(e: ExtraPayment) -> str:
    return (
        f"  #{e.id} {e.kind}: {e.method} {money_text(e.amount, e.currency)}"
        f" at {when(e.created_at)}: {_ids(e.method, e.provider_ref, e.provider_payment_id)}"
    )


def _anomaly_line(a: Anomaly) -> str:
    return f"  #{a.id} {a.source} {a.provider_ref}: {a.reason} at {when(a.created_at)}" + (
        f": {anomaly_facts(a, brief=False)}" if a.detail else ""
    )


#: what each provider calls a payment's reference and its second id (the default: Circle's)
_ID_NAMES = {
    PaymentMethod.CARD: ("session", "payment intent"),
    PaymentMethod.STARS: ("Telegram charge", "provider charge"),
}


def _ids(method: PaymentMethod, provider_ref: str, payment_id: str | None) -> str:
    """A payment's provider ids, named as the provider's dashboard names them."""
    names = _ID_NAMES.get(method, ("intent", "payment"))
    ids = [f"{names[0]} {provider_ref}"]
    if payment_id:
        ids.append(f"{names[1]} {payment_id}")
    return ", ".join(ids)


def _intent_line(c: IntentRecord) -> str:
    line = (
        f"  attempt {c.attempt}: {c.intent_id or '(not created)'} {c.status},"
        f" {c.chain or '-'} address {c.address or '(not yet shown)'}, created {when(c.created_at)}"
    )
    if c.expires_on:
        try:
            line += f", expires {when(datetime.fromisoformat(c.expires_on))}"
        except ValueError:  # shown as Circle wrote it
            line += f", expires {c.expires_on}"
    return line


def _refund_history_line(r: Refund) -> str:
    target = f"extra payment #{r.extra_payment_id}" if r.extra_payment_id else "the payment"
    line = (
        f"  #{r.id} {money_text(r.amount, r.currency)} of {target} by {r.method}"
        f" ({r.provider_ref}): {r.status}"
    )
    if r.provider_refund_id:
        line += f" {r.provider_refund_id}"
    line += f", asked {when(r.created_at)}, updated {when(r.updated_at)}"
    if r.error:
        line += f", error: {r.error}"
    return line


def _message_line(m: MessageRecord) -> str:
    attempts = f"{m.attempts} attempt" + ("" if m.attempts == 1 else "s")
    if m.unknown_outcomes:
        attempts += f", {m.unknown_outcomes} unknown outcome" + (
            "" if m.unknown_outcomes == 1 else "s"
        )
    line = f"  #{m.id} {m.kind} {m.status} ({attempts}), queued {when(m.created_at)}"
    if m.first_failed_at is not None:
        line += f", first failure {when(m.first_failed_at)}"
    if m.sent_at is not None:
        line += f", sent {when(m.sent_at)}"
    if m.in_flight:
        line += ", being sent"
    if m.error and m.status != "sent":
        line += f", error: {m.error}"
    if m.text:
        line += f": {_preview(m.text)!r}"
    return line


def _preview(message: str, width: int = 64) -> str:
    flat = " ".join(message.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def resent_line(r: Resent) -> str:
    if not r.queued:
        return (
            f"the PDF of {r.reference} is already waiting to be sent (message #{r.message_id});"
            " the running bot sends it, nothing added"
        )
    what = "a copy of the PDF" if r.kind == "document_copy" else "the PDF"
    again = " (the order is back to paid until it is delivered)" if r.reopened else ""
    return (
        f"queued {what} of {r.reference} for chat {r.chat_id} as message #{r.message_id}{again};"
        " the running bot sends it within a minute"
    )


def refund_plan_line(t: RefundTarget) -> str:
    """What the refund will do, for the operator to confirm."""
    again = f" (asking again for refund #{t.retry.id})" if t.retry is not None else ""
    return (
        f"refund {money_text(t.amount, t.currency)} of the {t.label} of {t.reference}"
        f" ({money_text(t.paid, t.currency)} by {t.method}, {t.provider_ref})"
        f" through {provider_name(t.method)}{again}"
    )


def refund_result_line(r: Refund, *, asked: Refund | None = None) -> str:
    """How refund `r` stands; `asked` is the refund the command asked for, if `r` is the one
    that superseded it meanwhile (a new key after Stripe forgot the old one)."""
    provider = provider_name(r.method)
    head = f"refund #{r.id} of {money_text(r.amount, r.currency)}"
    if asked is not None and asked.id != r.id:
        head += f" (in place of refund #{asked.id})"
    refund_id = f" ({provider} refund {r.provider_refund_id})" if r.provider_refund_id else ""
    match r.status:
        case RefundStatus.SUCCEEDED:
            return f"{head}: succeeded{refund_id}"
        case RefundStatus.PENDING:
            return f"{head}: pending{refund_id}; {provider} completes it on its own"
        case RefundStatus.FAILED:
            return f"{head}: failed{refund_id}: {r.error or 'no reason given'}"
    if asked is not None and asked.id != r.id:
        return f"{head}: not answered yet; run the same command again to ask {provider} for it"
    if r.method == PaymentMethod.STARS:
        return (
            f"{head}: still requested, Telegram gave no answer; run the same command again"
            " (Telegram refunds a charge once at most)"
        )
    return (
        f"{head}: still requested, {provider} gave no answer; run the same command again to"
        " ask with the same key"
    )
