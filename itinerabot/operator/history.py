"""One order's whole history, gathered in one read: the order, its payment, every card
session and USDC intent, money owed back, refunds, anomalies and messages.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from itinerabot.models import Payment
from itinerabot.operator.errors import UnknownOrder
from itinerabot.store import history, money
from itinerabot.store import orders as order_rows
from itinerabot.store.history import IntentRecord, MessageRecord, OrderRecord, SessionRecord
from itinerabot.store.money import Anomaly, ExtraPayment, Refund


@dataclass(frozen=True, slots=True)
class OrderHistory:
    order: OrderRecord
    payment: Payment | None
    card_sessions: list[SessionRecord]
    circle_intents: list[IntentRecord]
    extra_payments: list[ExtraPayment]
    refunds: list[Refund]
    anomalies: list[Anomaly]
    messages: list[MessageRecord]


def normalise_reference(text: str) -> str:
    """A reference as typed (`ib-7k3q9p `) in its stored form (`IB-7K3Q9P`)."""
    return text.strip().upper()


def order_history(conn: sqlite3.Connection, reference: str) -> OrderHistory:
    """Everything stored about the order (run it in one read transaction).

    Raises UnknownOrder if no order has that reference.
    """
    order = history.order_by_reference(conn, reference)
    if order is None:
        raise UnknownOrder(reference)
    return OrderHistory(
        order=order,
        payment=order_rows.get_payment(conn, order.id),
        card_sessions=history.card_sessions(conn, order.id),
        circle_intents=history.circle_intents(conn, order.id),
        extra_payments=money.extra_payments(conn, order.id),
        refunds=money.refunds(conn, order.id),
        anomalies=money.anomalies(conn, order.id),
        messages=history.messages(conn, order.id),
    )
