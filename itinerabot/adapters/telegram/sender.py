"""The outgoing sender: the one task that sends to Telegram, draining the durable outbox.

Each chat with pending rows gets a worker that sends them in order, paced by `Pacer`. A row
is marked in flight before each send, and what Telegram did is recorded before the row is
looked at again. Transient errors (network, 5xx, 429) are retried with capped backoff for
`give_up_after` seconds from the row's first failure; refusals (403 blocked, 400) end the row
at once; a send that may have reached Telegram unanswered is repeated at most once. Rows
that end unsent (`failed`, `unconfirmed`) are the operator's to look at.
"""

from __future__ import annotations

import io
import logging
import math
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Concatenate, ParamSpec, TypeVar

import qrcode
import trio

from itinerabot import messages
from itinerabot.adapters.telegram.client import SERVICE, TelegramClient
from itinerabot.adapters.telegram.pacing import Pacer
from itinerabot.adapters.telegram.retries import (
    MAX_INTERRUPTED_TEXT,
    MAX_UNKNOWN_OUTCOMES,
    Ending,
    backoff,
    ending_after,
)
from itinerabot.clock import WallClock
from itinerabot.config import SenderSettings
from itinerabot.errors import (
    OutcomeUnknown,
    RateLimited,
    ServiceError,
    StoreError,
    TransientServiceError,
)
from itinerabot.i18n import N_
from itinerabot.messages import (
    DOCUMENT_KINDS,
    POSTING_KINDS,
    RESCAN_EVERY,
    AnswerCallback,
    Document,
    DocumentCopy,
    Invoice,
    Kind,
    PhotoQr,
    RemoveButtons,
    Text,
)
from itinerabot.metrics import DISCARD, Recorder
from itinerabot.payments.document import DocumentRenderer, OrderNotPaid
from itinerabot.store import Store, languages, outbox, stars
from itinerabot.store import orders as order_rows

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

INVOICE_NOT_SENT = N_(
    "We could not send you the Telegram Stars invoice for order {reference}. Please tap the "
    "button again, or choose another way to pay."
)

#: one ready Telegram call; returns the new message's id, if it posts one
TelegramCall = Callable[[], Awaitable[int | None]]


def qr_png(data: str) -> bytes:
    """A PNG QR code of `data` (for the USDC deposit address)."""
    img = qrcode.make(data, box_size=8, border=2)
    buf = io.BytesIO()
    img.save(buf)
    return buf.getvalue()


class Sender:
    """Owns every send to Telegram. `notify(chat_id)` after committing outbox rows."""

    def __init__(
        self,
        store: Store,
        telegram: TelegramClient,
        render_document: DocumentRenderer,
        settings: SenderSettings,
        clock: WallClock,
        metrics: Recorder = DISCARD,
    ) -> None:
        self._store = store
        self._telegram = telegram
        self._render = render_document
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._pacer = Pacer(settings)
        self._wake_send, self._wake_recv = trio.open_memory_channel[int](math.inf)
        self._active: set[int] = set()
        self._recheck: set[int] = set()
        self._stopping = trio.Event()
        self._nursery: trio.Nursery | None = None
        #: the cancel scopes of calls waiting for a send slot, cancelled by `stop()`
        self._slot_waits: set[trio.CancelScope] = set()

    def notify(self, chat_id: int) -> None:
        """Wake the sender for a chat whose outbox rows are committed (a no-op once stopping:
        the rows are durable and go out on the next start)."""
        if not self._stopping.is_set():
            self._wake_send.send_nowait(chat_id)

    @property
    def busy(self) -> int:
        return len(self._active)

    @property
    def paced_chats(self) -> int:
        """How many chats' paces are remembered (bounded: see `Pacer`)."""
        return self._pacer.remembered_chats

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Send pending rows (those left by a previous run first) until `stop()`.

        Raises StoreError if the store cannot be read at start-up.
        """
        await self._count_interrupted_sends()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for chat_id in await self._store.run(outbox.pending_chats):
                self._dispatch(chat_id)
            task_status.started()
            async with self._wake_recv:
                # a fixed schedule, not an idle timer: on a busy bot wake-ups never stop, and
                # rows queued without one (the operator's resend) must still go out
                next_rescan = trio.current_time() + RESCAN_EVERY
                while True:
                    with trio.move_on_at(next_rescan):
                        try:
                            chat_id = await self._wake_recv.receive()
                        except trio.EndOfChannel:
                            return
                        self._dispatch(chat_id)
                        continue
                    await self._rescan()  # a safety net: rows nobody woke the sender for
                    next_rescan = trio.current_time() + RESCAN_EVERY

    async def _rescan(self) -> None:
        try:
            chat_ids = await self._store.run(outbox.pending_chats)
        except StoreError as exc:  # the rows are durable: the next rescan finds them
            log.error("sender rescan failed: store error", extra={"error": str(exc)})
            return
        for chat_id in chat_ids:
            self._dispatch(chat_id)

    def stop(self) -> None:
        """Finish the sends in flight, start no new ones; `run` returns when they are done."""
        self._stopping.set()
        self._wake_send.close()
        for waiting in list(self._slot_waits):  # nobody waiting for a slot sends any more
            waiting.cancel()

    async def _count_interrupted_sends(self) -> None:
        """Rows a stopped process left in flight may have reached Telegram: they are sent
        once more (a PDF's second such send ends it as unconfirmed: see `_count_interrupted`)."""
        counted = await self._store.run(
            _count_interrupted, self._clock(), self._settings.give_up_after
        )
        for item, ending in counted:
            if ending is None:
                log.warning(
                    "a send was interrupted; it is sent once more",
                    extra={"chat": item.chat_id, "kind": item.kind, "order_id": item.order_id},
                )
            else:
                self._log_ending(item, ending)

    def _dispatch(self, chat_id: int) -> None:
        if self._stopping.is_set() or self._nursery is None:
            return
        if chat_id in self._active:
            self._recheck.add(chat_id)
            return
        self._active.add(chat_id)
        self._nursery.start_soon(self._drain_chat, chat_id, name=f"sender chat={chat_id}")

    async def _drain_chat(self, chat_id: int) -> None:
        try:
            while not self._stopping.is_set():
                item = await self._store.run(outbox.next_pending, chat_id)
                if item is None:
                    if chat_id in self._recheck:
                        self._recheck.discard(chat_id)
                        continue
                    return
                await self._deliver(item)
        except StoreError as exc:  # the rows stay pending: the next rescan comes back to them
            log.error(
                "sender paused for a chat: store error", extra={"chat": chat_id, "error": str(exc)}
            )
        finally:
            self._active.discard(chat_id)
            self._recheck.discard(chat_id)

    async def _deliver(self, item: outbox.OutboxItem) -> None:
        """Send one row until its outcome is recorded, or until stopping (it stays pending)."""
        paced = item.chat_id if item.kind in POSTING_KINDS else None
        call: TelegramCall | None = None
        while not self._stopping.is_set():
            slot = await self._wait_for_slot(paced)
            if slot is None:  # stopping: the row stays pending, nothing was sent
                return
            if call is None:
                # rendered once its slot has come: a backlog of thousands of chats must not
                # render (and hold) thousands of PDFs up front
                call = await self._prepare(item)
                if call is None:
                    return
            try:
                await self._store.run(outbox.begin_send, item.id)
            except StoreError as exc:  # nothing was sent: no send goes out unannounced
                log.warning("send postponed: store error", extra={"error": str(exc)})
                await self._pause_until(trio.current_time() + self._settings.backoff_cap)
                continue
            calling = trio.current_time()
            try:
                message_id = await call()
            except trio.Cancelled:
                raise  # left in flight: the next start counts it as a send without an answer
            except ServiceError as exc:
                if await self._after_failure(item, exc, slot):
                    continue
                return
            except Exception as exc:  # a bug; the message may be out, so it is not sent again
                log.exception("send failed on a bug", extra={"chat": item.chat_id})
                await self._end(item, Ending("failed", f"{type(exc).__name__}: {exc}"))
                return
            self._metrics.telegram_answered(item.kind, trio.current_time() - calling)
            if paced is not None:
                self._pacer.sent(paced, slot)
            # Telegram took it: from here on the row is never sent again, whatever the store says
            await self._settle(_record_sent, item, message_id, self._clock())
            return

    async def _wait_for_slot(self, chat_id: int | None) -> float | None:
        """The pacer's slot, or None when the sender stops meanwhile (no send starts then)."""
        scope = trio.CancelScope()
        self._slot_waits.add(scope)
        try:
            with scope:
                slot = await self._pacer.slot(chat_id)
        finally:
            self._slot_waits.discard(scope)
        return None if scope.cancelled_caught or self._stopping.is_set() else slot

    async def _prepare(self, item: outbox.OutboxItem) -> TelegramCall | None:
        """The row's Telegram call, its PDF or QR code rendered; None if the row was ended
        (it cannot be rendered) or the sender is stopping."""
        while not self._stopping.is_set():
            try:
                return await self._call_for(item)
            except StoreError as exc:  # reading the order to render: worth another try
                log.warning("send postponed: store error", extra={"error": str(exc)})
                await self._pause_until(trio.current_time() + self._settings.backoff_cap)
            except trio.Cancelled:
                raise
            except OrderNotPaid as exc:  # a PDF row of an order that is not paid (a bug)
                log.error("cannot render the PDF", extra={"chat": item.chat_id, "error": str(exc)})
                await self._end(item, Ending("failed", str(exc)))
                return None
            except Exception as exc:  # one bad row must not stop every chat's messages
                log.exception("cannot prepare a message", extra={"chat": item.chat_id})
                error = f"{type(exc).__name__}: {exc}"
                if item.kind not in DOCUMENT_KINDS:
                    await self._end(item, Ending("failed", error))
                    return None
                # a paid order's PDF: a render that fails (memory, a thread, a file) is tried
                # again with backoff until give_up_after, like a send that fails
                failures, ending = await self._settle(
                    _record_failure,
                    item,
                    TransientServiceError("pdf", error),
                    self._clock(),
                    self._settings.give_up_after,
                )
                if ending is not None:
                    self._log_ending(item, ending)
                    return None
                delay = backoff(failures.attempts, self._settings.backoff_cap)
                await self._pause_until(trio.current_time() + delay)
        return None

    async def _after_failure(self, item: outbox.OutboxItem, exc: ServiceError, slot: float) -> bool:
        """Record a failed send; wait and return True to send again, or False if it ended."""
        answered = trio.current_time()
        if isinstance(exc, RateLimited):
            self._pacer.hold(exc.retry_after)
        if isinstance(exc, OutcomeUnknown) and item.kind in POSTING_KINDS:
            self._pacer.sent(item.chat_id, slot)  # it may be in the chat: it counts
        failures, ending = await self._settle(
            _record_failure, item, exc, self._clock(), self._settings.give_up_after
        )
        if ending is not None:
            self._log_ending(item, ending)
            return False
        if isinstance(exc, RateLimited):
            delay = exc.retry_after
        else:
            delay = backoff(failures.attempts, self._settings.backoff_cap)
        log.warning(
            "send failed, will retry",
            extra={
                "chat": item.chat_id,
                "kind": item.kind,
                "attempt": failures.attempts,
                "retry_in": delay,
                "error": exc.message,
            },
        )
        await self._pause_until(answered + delay)
        return True

    async def _settle(
        self,
        record: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Record what Telegram did, trying until the store takes it (1, 2, 4 … backoff_cap s).

        The row is not looked at again before this returns, so a send that cannot be
        recorded is never repeated. It goes on while stopping, within the runtime's shutdown
        grace; a process that stops first leaves the row in flight, and the next start counts
        it as a send without an answer.
        """
        delay = 1.0
        while True:
            try:
                return await self._store.run(record, *args, **kwargs)
            except StoreError as exc:
                log.error(
                    "cannot record a send yet; it is not sent again meanwhile",
                    extra={"error": str(exc), "retry_in": delay},
                )
            await trio.sleep(delay)
            delay = min(delay * 2, self._settings.backoff_cap)

    async def _pause_until(self, deadline: float) -> None:
        """Sleep until `deadline` (trio time), but wake at once when the sender is stopping."""
        with trio.move_on_at(deadline):
            await self._stopping.wait()

    async def _end(self, item: outbox.OutboxItem, ending: Ending) -> None:
        await self._settle(_end, item, ending, self._clock())
        self._log_ending(item, ending)

    def _log_ending(self, item: outbox.OutboxItem, ending: Ending) -> None:
        log.error(
            "send failed for good" if ending.status == "failed" else "send unconfirmed",
            extra={
                "chat": item.chat_id,
                "kind": item.kind,
                "order_id": item.order_id,
                "error": ending.error,
            },
        )

    async def _call_for(self, item: outbox.OutboxItem) -> TelegramCall:
        """The Telegram call that sends the row. Raises ValueError or KeyError for a row this
        version cannot read, OrderNotPaid for a PDF of an order that is not paid."""
        tg = self._telegram
        chat_id = item.chat_id
        match messages.from_row(item.kind, item.payload):
            case Text(text=text, keyboard=keyboard, html=html):
                return partial(tg.send_text, chat_id, text, keyboard, html=html)
            case PhotoQr(data=data, caption=caption):
                png = await trio.to_thread.run_sync(qr_png, data)
                return partial(tg.send_photo, chat_id, png, caption, "qr.png")
            case RemoveButtons(message_id=message_id):
                return partial(tg.remove_buttons, chat_id, message_id)
            case AnswerCallback(callback_id=callback_id, text=notice):
                return partial(tg.answer_callback, callback_id, notice)
            case Invoice(
                title=title, description=about, payload=payload, label=label, amount=amount
            ):
                return partial(tg.send_invoice, chat_id, title, about, payload, label, amount)
            case Document() | DocumentCopy():
                if item.order_id is None:
                    raise OrderNotPaid("a PDF row without its order")
                doc = await self._render(item.order_id)
                return partial(tg.send_document, chat_id, doc.content, doc.filename, doc.caption)


# ---------------------------------------------------------------- store functions


def _record_sent(
    conn: sqlite3.Connection, item: outbox.OutboxItem, message_id: int | None, at: datetime
) -> None:
    outbox.mark_sent(conn, item.id, message_id, at)
    # a copy (the PDF button, `orders resend`) delivers an order whose delivery had failed too
    if item.kind in DOCUMENT_KINDS and item.order_id is not None and message_id is not None:
        order_rows.mark_delivered(conn, item.order_id, message_id, at)


def _record_failure(
    conn: sqlite3.Connection,
    item: outbox.OutboxItem,
    exc: ServiceError,
    at: datetime,
    give_up_after: float,
    max_unknown: int = MAX_UNKNOWN_OUTCOMES,
) -> tuple[outbox.Failures, Ending | None]:
    unknown = isinstance(exc, OutcomeUnknown)
    failures = outbox.record_failure(conn, item.id, exc.message, at, unknown=unknown)
    ending = ending_after(exc, failures, at, give_up_after, max_unknown)
    if ending is not None:
        _end(conn, item, ending, at)
    return failures, ending


def _end(conn: sqlite3.Connection, item: outbox.OutboxItem, ending: Ending, at: datetime) -> None:
    """End a row unsent; a traveller left without what they asked for is told."""
    if ending.status == "unconfirmed":
        outbox.mark_unconfirmed(conn, item.id, ending.error)
    else:
        outbox.mark_failed(conn, item.id, ending.error)
    if item.kind == Kind.DOCUMENT and item.order_id is not None:
        order_rows.mark_delivery_failed(conn, item.order_id, ending.error)
    if item.kind == Kind.INVOICE:
        # the tap on "Pay … ⭐" would otherwise end in silence
        reference = stars.reference_of(str(item.payload.get("payload", "")))
        t = languages.texts_of(conn, item.chat_id)
        text = t.gettext(INVOICE_NOT_SENT, reference=reference)
        messages.queue(conn, item.chat_id, Text(text), now=at, order_id=item.order_id)


def _count_interrupted(
    conn: sqlite3.Connection, at: datetime, give_up_after: float
) -> list[tuple[outbox.OutboxItem, Ending | None]]:
    """Rows a stopped process left in flight: each counts as a send without an answer. A PDF
    ends unconfirmed on its second (for the operator: a PDF never goes out three times); any
    other message is sent again until MAX_INTERRUPTED_TEXT (a bot killed twice while a
    dialogue answer was in flight must not leave the traveller without it)."""
    stopped = OutcomeUnknown(SERVICE, "the bot stopped while this was being sent")
    counted = []
    for item in outbox.interrupted(conn):
        pdf = item.kind in DOCUMENT_KINDS
        most = MAX_UNKNOWN_OUTCOMES if pdf else MAX_INTERRUPTED_TEXT
        counted.append((item, _record_failure(conn, item, stopped, at, give_up_after, most)[1]))
    return counted
