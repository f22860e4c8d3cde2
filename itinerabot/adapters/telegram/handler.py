"""Handle one update: run the pure dialogue, commit its effects all at once.

The new dialogue state, the outgoing messages (outbox), new or cancelled orders, payment
requests, the update's id and the offset are written in one transaction, so a restart neither
loses nor re-handles an update. No provider is called here: a tap on "Pay" commits a payment
request and "Preparing your payment…", and the payment-requests service asks the provider
once the update has committed.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import telegram
import trio

from itinerabot import messages as out
from itinerabot.adapters.telegram.updates import Incoming, translate
from itinerabot.clock import WallClock
from itinerabot.config import Settings
from itinerabot.dialogue import step
from itinerabot.dialogue.commands import MAX_ORDERS_LISTED
from itinerabot.dialogue.types import (
    AnswerCallback,
    ButtonPress,
    CancelOrder,
    ChooseLanguage,
    CommandMessage,
    Context,
    CreateOrder,
    DeepLinkReturn,
    Outcome,
    PayByCard,
    PayWithStars,
    PayWithUsdc,
    RemoveButtons,
    Reply,
    ResendDocument,
    SendText,
    TextMessage,
    TripRules,
)
from itinerabot.errors import StoreConstraintError, StoreError
from itinerabot.i18n import N_, Texts, choose, texts_for
from itinerabot.messages import DocumentCopy, Message, Notify, Text
from itinerabot.models import Order, PaymentMethod
from itinerabot.payments.fulfilment import Recorded
from itinerabot.payments.requests import PREPARING
from itinerabot.payments.stars.invoice import issue_invoice
from itinerabot.payments.stars.paid import record_star_payment
from itinerabot.store import Store, languages, misc, money, outbox, payment_requests, stars
from itinerabot.store import orders as order_rows
from itinerabot.store.payment_requests import Action, Request
from itinerabot.store.stars import StarPayment

log = logging.getLogger(__name__)

_REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L
GROUP_REPLY = N_("I work in private chats only. Open a private chat with me to make an itinerary.")
NOT_PAID_NO_PDF = N_("Order {reference} is not paid yet, so there is no PDF to send.")
SOMETHING_WENT_WRONG = N_("Sorry, something went wrong on our side. Please try again.")


def new_reference() -> str:
    """A short, human-friendly order reference like `IB-7K3Q9P`."""
    return "IB-" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(6))


def reply_to_message(reply: Reply) -> Message:
    match reply:
        case SendText(text=text, keyboard=keyboard):
            return Text(text, keyboard)
        case RemoveButtons() | AnswerCallback():
            return reply


@dataclass(frozen=True, slots=True)
class _ChatView:
    """What handling an update needs to know of its chat, read in one transaction."""

    state: str | None
    orders: list[Order]
    new_reference: str
    live_keyboard: int | None  # message id of a question whose buttons are still shown
    texts: Texts  # the chat's language: its pick, else what its app reports now or last


def _load(conn: sqlite3.Connection, chat_id: int, language_code: str | None) -> _ChatView:
    reference = new_reference()
    while order_rows.get_order_by_reference(conn, reference) is not None:
        reference = new_reference()
    chosen, seen = languages.get(conn, chat_id)
    return _ChatView(
        misc.get_chat_state(conn, chat_id),
        # one more than /orders lists, so it can tell there are more
        order_rows.chat_orders(conn, chat_id, MAX_ORDERS_LISTED + 1),
        reference,
        outbox.live_step_keyboard(conn, chat_id),
        texts_for(choose(chosen, language_code or seen)),
    )


def _commit(
    conn: sqlite3.Connection,
    incoming: Incoming,
    outcome: Outcome | None,
    messages: Sequence[Message],
    settings: Settings,
    now: datetime,
    offset: int,
) -> list[Request]:
    """Commit the update's effects; returns the payment requests it made (carried out once
    this transaction commits)."""
    if misc.already_handled(conn, incoming.update_id):
        return []  # committed before (by a call that was cancelled, or another process)
    chat_id = incoming.chat_id
    queued = list(messages)
    asked: list[Request] = []
    if incoming.private and incoming.language_code:
        languages.set_seen(conn, chat_id, incoming.language_code, now)
    if outcome is not None:
        for action in outcome.actions:
            match action:
                case CreateOrder(reference=reference, itinerary=itinerary, quantity=quantity):
                    order_rows.insert_order(
                        conn,
                        reference=reference,
                        chat_id=chat_id,
                        itinerary=itinerary,
                        price=settings.pricing.price * quantity,
                        currency=settings.pricing.currency,
                        created_at=now,
                        quantity=quantity,
                    )
                case CancelOrder(reference=reference):
                    order_rows.cancel_if_unpaid(conn, chat_id, reference)
                case ResendDocument(reference=reference):
                    order = order_rows.get_order_by_reference(conn, reference)
                    if order is not None and order.chat_id == chat_id and order.status.is_paid:
                        out.queue(conn, chat_id, DocumentCopy(), now=now, order_id=order.id)
                    else:
                        t = languages.texts_of(conn, chat_id)
                        queued.append(Text(t.gettext(NOT_PAID_NO_PDF, reference=reference)))
                case ChooseLanguage(code=code):
                    languages.set_chosen(conn, chat_id, code, now)
                case PayByCard(reference=ref) | PayWithUsdc(reference=ref):
                    # the provider is asked once this commits: the tap is answered at once
                    card = isinstance(action, PayByCard)
                    what = Action.PAY_BY_CARD if card else Action.PAY_WITH_USDC
                    asked.append(payment_requests.add(conn, chat_id, what, ref, now))
                    t = languages.texts_of(conn, chat_id)
                    queued.append(Text(t.gettext(PREPARING)))
                case PayWithStars(reference=ref):
                    t = languages.texts_of(conn, chat_id)
                    price = settings.stars.price
                    queued.append(issue_invoice(conn, t, chat_id, ref, price, now))
                case DeepLinkReturn(payload=payload):
                    asked.append(
                        payment_requests.add(conn, chat_id, Action.CHECKOUT_RETURN, payload, now)
                    )
        misc.set_chat_state(conn, chat_id, outcome.state, now)
        replies = [reply_to_message(r) for r in outcome.replies]
        # answer the button press first, then what the dialogue says, then payment messages
        queued = replies + queued
    for message in queued:
        out.queue(conn, chat_id, message, now=now)
    misc.mark_handled(conn, incoming.update_id, offset)
    return asked


def _commit_paid(
    conn: sqlite3.Connection,
    incoming: Incoming,
    now: datetime,
    offset: int,
    support: str | None,
) -> Recorded | None:
    """Record a Stars payment (`successful_payment`) with the update that reported it."""
    assert incoming.paid is not None
    if misc.already_handled(conn, incoming.update_id):
        return None
    recorded = record_star_payment(conn, incoming.paid, now, support=support)
    misc.mark_handled(conn, incoming.update_id, offset)
    return recorded


def _skip_paid(conn: sqlite3.Connection, incoming: Incoming, offset: int, now: datetime) -> None:
    """A Stars payment that could not be recorded (a bug): the charge and an anomaly, so it is
    given back (automatic Stars refunds, else the operator), and an apology."""
    paid = incoming.paid
    assert paid is not None
    stars.record_payment(conn, paid, None, now)  # who paid what, for its refund
    money.record_anomaly(
        conn,
        source="telegram",
        provider_ref=paid.charge_id,
        reason="not_recorded",
        detail={
            "payload": paid.payload,
            "amount": paid.amount,
            "currency": paid.currency,
            "payer_id": paid.payer_id,
        },
        now=now,
    )
    _skip(conn, incoming, offset, now)


def _skip(conn: sqlite3.Connection, incoming: Incoming, offset: int, now: datetime) -> None:
    """An update whose effects could not be committed (a bug): handled, with an apology (and
    the answer a button press needs)."""
    if misc.already_handled(conn, incoming.update_id):
        return
    if isinstance(incoming.event, ButtonPress):
        out.queue(conn, incoming.chat_id, AnswerCallback(incoming.event.callback_id), now=now)
    t = languages.texts_of(conn, incoming.chat_id)
    out.queue(conn, incoming.chat_id, Text(t.gettext(SOMETHING_WENT_WRONG)), now=now)
    misc.mark_handled(conn, incoming.update_id, offset)


def _outage(exc: Exception) -> bool:
    """A store failure worth trying again at the next start (busy, I/O). SQLite refusing our
    data (StoreConstraintError) is a bug like any other: it would fail at every start."""
    return isinstance(exc, StoreError) and not isinstance(exc, StoreConstraintError)


class UpdateHandler:
    """Turns each update into a committed set of effects (called concurrently for different
    chats, never twice at once for one chat: see `Lanes`)."""

    def __init__(
        self,
        store: Store,
        notify: Notify,
        settings: Settings,
        clock: WallClock,
        request_payments: Callable[[Sequence[Request]], None],
        settle: Callable[[Recorded], bool],
    ) -> None:
        self._store = store
        self._notify = notify
        self._settings = settings
        self._clock = clock
        trips = settings.trips
        self._trip_rules = TripRules(
            max_flights=trips.max_flights,
            max_travellers=trips.max_travellers,
            min_connection=timedelta(minutes=trips.min_connection_minutes),
        )
        self._request_payments = request_payments
        #: after a Stars payment committed: wake the sender, tell the listeners (Fulfilment)
        self._settle = settle

    async def handle(self, update: telegram.Update, offset: int) -> None:
        """Handle `update`; commit its effects, its id as handled and `offset` (the lowest
        update not yet committed once this one is) in one transaction.

        A bug in handling one update (SQLite refusing its writes is one) is logged and the
        update skipped with an apology, never retried forever. Raises StoreError when the
        store fails (busy, I/O): the update stays unhandled for the next start.
        """
        incoming = translate(update)
        if incoming is None:
            await self._store.run(misc.mark_handled, update.update_id, offset)
            return
        if incoming.paid is not None:
            await self._paid(incoming, incoming.paid, offset)
            return
        try:
            outcome, messages = await self._decide(incoming)
        except (trio.Cancelled, StoreError):
            raise  # the store failed: the update stays for the next start (the inbox has it)
        except Exception:
            log.exception(
                "update handling failed; skipping it", extra={"update_id": incoming.update_id}
            )
            outcome, messages = None, []
            if isinstance(incoming.event, ButtonPress):
                # every callback query is answered, or the client spins on the button
                messages.append(AnswerCallback(incoming.event.callback_id))
            t = texts_for(choose(None, incoming.language_code))
            messages.append(Text(t.gettext(SOMETHING_WENT_WRONG)))
        try:
            asked = await self._store.run(
                _commit,
                incoming,
                outcome,
                messages,
                self._settings,
                self._clock(),
                offset,
            )
        except trio.Cancelled:
            raise
        except Exception as exc:
            if _outage(exc):
                raise  # the store failed: the update stays unhandled for the next start
            # a bug in committing it (SQLite refusing our data is one): skipped, never a
            # crash at every start
            log.exception(
                "committing an update failed; skipping it", extra={"update_id": incoming.update_id}
            )
            asked = []
            await self._store.run(_skip, incoming, offset, self._clock())
        self._notify(incoming.chat_id)
        self._request_payments(asked)

    async def _paid(self, incoming: Incoming, paid: StarPayment, offset: int) -> None:
        """Telegram charged Stars: record it and pay its order, exactly once, whatever the
        chat's dialogue is doing. StoreError leaves the update for the next start."""
        support = self._settings.shop.support_contact
        try:
            recorded = await self._store.run(_commit_paid, incoming, self._clock(), offset, support)
        except trio.Cancelled:
            raise
        except Exception as exc:
            if _outage(exc):
                raise  # the update stays unhandled: the payment is recorded at the next start
            # a bug (SQLite refusing our data is one): kept as an anomaly, so the charge is
            # given back, never a crash loop
            log.exception(
                "recording a Stars payment failed; kept as an anomaly",
                extra={"update_id": incoming.update_id, "charge": paid.charge_id},
            )
            recorded = None
            await self._keep_as_anomaly(incoming, paid, offset)
        self._notify(incoming.chat_id)
        if recorded is not None:
            self._settle(recorded)

    async def _keep_as_anomaly(self, incoming: Incoming, paid: StarPayment, offset: int) -> None:
        """Skip a Stars payment that could not be recorded, kept as an anomaly; if even that
        is refused, the log is the operator's only record of the charge."""
        try:
            await self._store.run(_skip_paid, incoming, offset, self._clock())
        except trio.Cancelled:
            raise
        except Exception as exc:
            if _outage(exc):
                raise
            log.exception(
                "a Stars payment could not be kept as an anomaly; refund it by hand",
                extra={
                    "update_id": incoming.update_id,
                    "charge": paid.charge_id,
                    "payer_id": paid.payer_id,
                    "amount": paid.amount,
                    "currency": paid.currency,
                    "payload": paid.payload,
                },
            )
            await self._store.run(_skip, incoming, offset, self._clock())

    async def _decide(self, incoming: Incoming) -> tuple[Outcome | None, list[Message]]:
        if not incoming.private:
            group_reply = texts_for(choose(None, incoming.language_code)).gettext(GROUP_REPLY)
            if isinstance(incoming.event, ButtonPress):
                return None, [AnswerCallback(incoming.event.callback_id, group_reply[:190])]
            if isinstance(incoming.event, CommandMessage):
                return None, [Text(group_reply)]
            # Other group chatter is not for us: one reply per message could flood a group.
            return None, []
        chat = await self._store.run(_load, incoming.chat_id, incoming.language_code)
        offered = self._settings.telegram_methods
        ctx = Context(
            now=self._clock(),
            price=self._settings.pricing.price,
            currency=self._settings.pricing.currency,
            new_reference=chat.new_reference,
            orders=tuple(chat.orders),
            card_enabled=PaymentMethod.CARD in offered,
            usdc_enabled=PaymentMethod.USDC in offered,
            stars_price=self._settings.stars.price if PaymentMethod.STARS in offered else None,
            per_traveller=self._settings.pricing.per == "traveller",
            trips=self._trip_rules,
            texts=chat.texts,
        )
        outcome = step(chat.state, incoming.event, ctx)
        messages: list[Message] = []
        if (
            isinstance(incoming.event, TextMessage)
            and chat.live_keyboard is not None
            and outcome.moved_on
        ):
            # answered by typing: the question's buttons are done, as if one had been pressed
            messages.append(RemoveButtons(chat.live_keyboard))
        return outcome, messages
