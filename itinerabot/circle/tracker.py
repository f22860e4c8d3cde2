"""What an observed payment intent means for its order: the single place that acts on it.

The poller and Circle's webhook both pass every intent they see to `IntentTracker.observe`:
it tells the chat the deposit address (once), an underpayment (once per new amount), an
expiry or failure, and hands a paid intent to `handle_successful_payment`.
"""

from __future__ import annotations

import html
import logging
import sqlite3
from datetime import datetime
from decimal import Decimal

import trio

from itinerabot.bot.sender import Sender, keyboard_to_json
from itinerabot.circle.client import CircleClient
from itinerabot.circle.status import Outcome, PaymentIntentView
from itinerabot.clock import WallClock
from itinerabot.dialogue.types import InlineButton, Keyboard
from itinerabot.errors import ServiceError
from itinerabot.fulfilment import Fulfilment
from itinerabot.models import Order, Payment, PaymentMethod
from itinerabot.store import Store, outbox
from itinerabot.store import circle_intents as intents
from itinerabot.store import orders as order_rows

log = logging.getLogger(__name__)

CHAINS = {
    "ETH": "Ethereum",
    "SOL": "Solana",
    "POLY": "Polygon PoS",
    "BASE": "Base",
    "ARB": "Arbitrum",
    "AVAX": "Avalanche C-Chain",
    "OP": "OP Mainnet",
    "ALGO": "Algorand",
    "XLM": "Stellar",
    "HBAR": "Hedera",
    "NOBLE": "Noble",
    "SUI": "Sui",
    "BTC": "Bitcoin",
}


def chain_name(chain: str) -> str:
    return f"{CHAINS.get(chain, chain)} ({chain})"


def retry_keyboard(reference: str, *, card: bool) -> Keyboard:
    row = [InlineButton("Pay with USDC again", data=f"pay:usdc:{reference}")]
    if card:
        row.append(InlineButton("Pay by card", data=f"pay:card:{reference}"))
    return (tuple(row),)


def _fmt(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _address_message(
    conn: sqlite3.Connection, order: Order, view: PaymentIntentView, now: datetime
) -> bool:
    assert view.address is not None
    if not intents.set_address(conn, view.id, view.address, view.chain):
        return False
    ends = (
        f"\nThis offer ends at {view.expires_on:%Y-%m-%d %H:%M} UTC."
        if view.expires_on is not None
        else ""
    )
    text = (
        f"Order {html.escape(order.reference)}: send exactly <b>{_fmt(view.amount)} USDC</b> on "
        f"<b>{html.escape(chain_name(view.chain))}</b> to this address (tap to copy):\n\n"
        f"<code>{html.escape(view.address)}</code>\n{ends}\n"
        f"Send USDC on {html.escape(CHAINS.get(view.chain, view.chain))} only: other tokens or "
        "networks cannot be recovered. Your PDF arrives here as soon as the payment is confirmed."
    )
    outbox.enqueue(
        conn, order.chat_id, "text", {"text": text, "html": True}, created_at=now, order_id=order.id
    )
    outbox.enqueue(
        conn,
        order.chat_id,
        "photo_qr",
        {"data": view.address, "caption": f"Deposit address for {order.reference}"},
        created_at=now,
        order_id=order.id,
    )
    return True


def _apply(
    conn: sqlite3.Connection, order_id: int, view: PaymentIntentView, card: bool, now: datetime
) -> tuple[Order | None, bool]:
    """Record what `view` shows; returns the order and whether the chat has new messages."""
    order = order_rows.get_order(conn, order_id)
    if order is None or order.status.is_paid:
        return order, False
    told = False
    if view.address:
        told |= _address_message(conn, order, view, now)
    outcome = view.outcome
    if outcome == Outcome.UNDERPAID:
        paid = _fmt(view.amount_paid or Decimal(0))
        if intents.set_notified_paid(conn, view.id, paid):
            outbox.enqueue(
                conn,
                order.chat_id,
                "text",
                {
                    "text": f"Order {order.reference}: {paid} USDC of {_fmt(view.amount)} arrived. "
                    f"{_fmt(view.missing_amount)} USDC is still missing: send it to the "
                    "same address to complete the payment."
                },
                created_at=now,
                order_id=order.id,
            )
            told = True
    elif outcome in (Outcome.EXPIRED, Outcome.FAILED, Outcome.REFUNDED) and intents.set_status(
        conn, view.id, outcome.value
    ):
        what = {
            "expired": "expired before a full payment arrived",
            "failed": "failed",
            "refunded": "was refunded",
        }[outcome.value]
        outbox.enqueue(
            conn,
            order.chat_id,
            "text",
            {
                "text": f"The USDC payment for order {order.reference} {what}. "
                "You can start a new payment:",
                "keyboard": keyboard_to_json(retry_keyboard(order.reference, card=card)),
            },
            created_at=now,
            order_id=order.id,
        )
        told = True
    return order, told


def _mark(conn: sqlite3.Connection, intent_id: str, status: str) -> bool:
    return intents.set_status(conn, intent_id, status)


class IntentTracker:
    """Acts on observed payment intents; shared by the poller and the webhook."""

    def __init__(
        self,
        store: Store,
        client: CircleClient,
        fulfilment: Fulfilment,
        sender: Sender,
        clock: WallClock,
        *,
        card_enabled: bool,
    ) -> None:
        self.store = store
        self.client = client
        self.fulfilment = fulfilment
        self.sender = sender
        self.clock = clock
        self.card_enabled = card_enabled

    async def observe(
        self, order_id: int, view: PaymentIntentView, *, source: str
    ) -> Outcome | None:
        """Act on one observation of the intent of `order_id`; returns its outcome, or None
        when the order needs this intent no more (paid another way, or unknown)."""
        outcome = view.outcome
        if outcome == Outcome.PAID:
            # The order's own transition is the only record that counts: until it commits
            # the intent stays open, so a crash or shutdown in between is picked up again.
            payment = await self._payment(view)
            await self.fulfilment.handle_successful_payment(order_id, payment, source=source)
            await self.store.run(_mark, view.id, "paid")
            return outcome
        order, told = await self.store.run(_apply, order_id, view, self.card_enabled, self.clock())
        if order is None or order.status.is_paid:
            return None
        if told:
            self.sender.notify(order.chat_id)
        return outcome

    async def tell(self, intent_id: str, status: str, order_id: int, text: str) -> None:
        """Mark the intent `status` and, if it was still open, send `text` with retry buttons."""
        now = self.clock()  # here, not in the worker thread: the clock may read trio's

        def apply(conn: sqlite3.Connection) -> Order | None:
            order = order_rows.get_order(conn, order_id)
            if not intents.set_status(conn, intent_id, status) or order is None:
                return None
            if order.status.is_paid:
                return None
            outbox.enqueue(
                conn,
                order.chat_id,
                "text",
                {
                    "text": text.format(reference=order.reference),
                    "keyboard": keyboard_to_json(
                        retry_keyboard(order.reference, card=self.card_enabled)
                    ),
                },
                created_at=now,
                order_id=order_id,
            )
            return order

        order = await self.store.run(apply)
        if order is not None:
            self.sender.notify(order.chat_id)

    async def _payment(self, view: PaymentIntentView) -> Payment:
        tx_hash = None
        payment_id = view.payment_ids[0] if view.payment_ids else None
        if payment_id:
            with trio.move_on_after(5):
                try:
                    tx_hash = (await self.client.get_payment(payment_id)).transaction_hash
                except ServiceError as exc:
                    log.info("no transaction hash for the receipt", extra={"error": exc.message})
        return Payment(
            method=PaymentMethod.USDC,
            amount=view.amount_paid if view.amount_paid is not None else view.amount,
            currency="USDC",
            provider_ref=view.id,
            provider_payment_id=payment_id,
            tx_hash=tx_hash,
            paid_at=view.latest.time if view.latest is not None else self.clock(),
        )
