"""The outgoing sender: the one task that sends to Telegram, draining the durable outbox.

Each chat with pending rows gets a worker that sends them in order, about one message per
second per chat and `global_rate` overall. 429 waits `retry_after`; network errors and 5xx
back off; permanent errors (403 blocked, 400) are recorded and not retried.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import qrcode
import trio

from itinerabot.bot.client import TelegramClient
from itinerabot.clock import WallClock
from itinerabot.config import SenderSettings
from itinerabot.dialogue.types import InlineButton, Keyboard
from itinerabot.errors import (
    PermanentServiceError,
    RateLimited,
    StoreError,
    TransientServiceError,
)
from itinerabot.store import Store, outbox
from itinerabot.store import orders as order_rows

log = logging.getLogger(__name__)

#: how often pending rows are looked for without a wake-up (rows a worker left behind)
RESCAN_EVERY = 60.0

#: kinds that post a new message and so count against Telegram's per-chat pace
_PACED = frozenset({"text", "photo_qr", "document", "document_copy"})


@dataclass(frozen=True, slots=True)
class Document:
    content: bytes
    filename: str
    caption: str


#: renders the PDF of an order (by id) for sending
DocumentRenderer = Callable[[int], Awaitable[Document]]


def keyboard_to_json(keyboard: Keyboard) -> list[list[dict[str, str]]]:
    return [
        [{k: v for k, v in (("text", b.text), ("data", b.data), ("url", b.url)) if v} for b in row]
        for row in keyboard
    ]


def keyboard_from_json(rows: Any) -> Keyboard:
    return tuple(
        tuple(InlineButton(b["text"], data=b.get("data"), url=b.get("url")) for b in row)
        for row in rows or ()
    )


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
    ) -> None:
        self._store = store
        self._telegram = telegram
        self._render = render_document
        self._settings = settings
        self._clock = clock
        self._wake_send, self._wake_recv = trio.open_memory_channel[int](math.inf)
        self._active: set[int] = set()
        self._recheck: set[int] = set()
        #: per chat, when its pace is next free (a GCRA "theoretical arrival time")
        self._chat_tat: dict[int, float] = {}
        self._next_global = -math.inf
        self._stopping = trio.Event()
        self._nursery: trio.Nursery | None = None

    def notify(self, chat_id: int) -> None:
        """Wake the sender for a chat whose outbox rows are committed (a no-op once stopping:
        the rows are durable and go out on the next start)."""
        if not self._stopping.is_set():
            self._wake_send.send_nowait(chat_id)

    @property
    def busy(self) -> int:
        return len(self._active)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Send pending rows (those left by a previous run first) until `stop()`."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for chat_id in await self._store.run(outbox.pending_chats):
                self._dispatch(chat_id)
            task_status.started()
            async with self._wake_recv:
                while True:
                    with trio.move_on_after(RESCAN_EVERY) as idle:
                        try:
                            chat_id = await self._wake_recv.receive()
                        except trio.EndOfChannel:
                            return
                        self._dispatch(chat_id)
                    if idle.cancelled_caught:  # a safety net: rows a chat's worker gave up on
                        for chat_id in await self._store.run(outbox.pending_chats):
                            self._dispatch(chat_id)

    def stop(self) -> None:
        """Finish the sends in flight, start no new ones; `run` returns when they are done."""
        self._stopping.set()
        self._wake_send.close()

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
            if self._chat_tat.get(chat_id, math.inf) <= trio.current_time():
                del self._chat_tat[chat_id]  # its pace is free again: forget the chat

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the sender is stopping."""
        with trio.move_on_after(seconds):
            await self._stopping.wait()

    async def _pace(self, item: outbox.OutboxItem) -> None:
        """Wait for the global pace and, for new messages, the chat's: one message per
        `per_chat_interval` on average, with bursts of up to `per_chat_burst` (so "payment
        received" and the PDF arrive together, not a second apart)."""
        if item.kind in _PACED:
            slack = (self._settings.per_chat_burst - 1) * self._settings.per_chat_interval
            chat_free = self._chat_tat.get(item.chat_id, -math.inf) - slack
            if chat_free > trio.current_time():
                await trio.sleep_until(chat_free)
        # the global slot is taken only when this chat may send: a chat waiting for its own
        # pace holds no slot that other chats could use meanwhile
        now = trio.current_time()
        at = max(now, self._next_global)
        self._next_global = at + 1.0 / self._settings.global_rate
        if at > now:
            await trio.sleep_until(at)

    async def _deliver(self, item: outbox.OutboxItem) -> None:
        attempts = item.attempts
        while not self._stopping.is_set():
            await self._pace(item)
            try:
                message_id = await self._perform(item)
            except RateLimited as exc:
                log.warning(
                    "telegram asked to wait",
                    extra={"retry_after": exc.retry_after, "chat": item.chat_id},
                )
                self._next_global = max(self._next_global, trio.current_time() + exc.retry_after)
                await self._pause(exc.retry_after)
                continue
            except TransientServiceError as exc:
                attempts = await self._store.run(outbox.record_attempt, item.id, exc.message)
                if attempts >= 20:  # replaced by give_up_after (in progress)
                    await self._give_up(item, f"gave up after {attempts} attempts: {exc.message}")
                    return
                delay = min(self._settings.backoff_cap, 2.0 ** min(attempts, 16))
                log.warning(
                    "send failed, will retry",
                    extra={
                        "chat": item.chat_id,
                        "kind": item.kind,
                        "attempt": attempts,
                        "retry_in": delay,
                        "error": exc.message,
                    },
                )
                await self._pause(delay)
                continue
            except PermanentServiceError as exc:
                await self._give_up(item, exc.message)
                return
            except StoreError as exc:  # e.g. reading the order to render: worth another try
                log.warning("send postponed: store error", extra={"error": str(exc)})
                await self._pause(self._settings.backoff_cap)
                continue
            except trio.Cancelled:
                raise
            except Exception as exc:  # one bad row must not stop every chat's messages
                log.exception(
                    "send failed on a bug", extra={"chat": item.chat_id, "kind": item.kind}
                )
                await self._give_up(item, f"{exc.__class__.__name__}: {exc}")
                return
            if item.kind in _PACED:
                sent_at = trio.current_time()
                tat = max(self._chat_tat.get(item.chat_id, sent_at), sent_at)
                self._chat_tat[item.chat_id] = tat + self._settings.per_chat_interval
            await self._record(item, message_id)
            return

    async def _record(self, item: outbox.OutboxItem, message_id: int | None) -> None:
        """Mark a row sent. It was sent: never raise, or the row would be sent again."""
        for _ in range(5):
            try:
                await self._store.run(_record_sent, item, message_id, self._clock())
                return
            except StoreError as exc:
                log.warning("could not record a sent message yet", extra={"error": str(exc)})
                await self._pause(1.0)
        log.error(
            "a sent message is not recorded; it may be sent again after a restart",
            extra={"chat": item.chat_id, "kind": item.kind},
        )

    async def _give_up(self, item: outbox.OutboxItem, error: str) -> None:
        log.error(
            "send failed for good",
            extra={
                "chat": item.chat_id,
                "kind": item.kind,
                "order_id": item.order_id,
                "error": error,
            },
        )
        await self._store.run(_record_failed, item, error)

    async def _perform(self, item: outbox.OutboxItem) -> int | None:
        p = item.payload
        tg = self._telegram
        match item.kind:
            case "text":
                keyboard = keyboard_from_json(p.get("keyboard"))
                return await tg.send_text(
                    item.chat_id, p["text"], keyboard, html=bool(p.get("html"))
                )
            case "photo_qr":
                png = await trio.to_thread.run_sync(qr_png, p["data"])
                return await tg.send_photo(item.chat_id, png, p.get("caption", ""), "qr.png")
            case "remove_buttons":
                await tg.remove_buttons(item.chat_id, int(p["message_id"]))
                return None
            case "answer_callback":
                await tg.answer_callback(p["callback_id"], p.get("text"))
                return None
            case "document" | "document_copy":
                assert item.order_id is not None
                doc = await self._render(item.order_id)
                return await tg.send_document(item.chat_id, doc.content, doc.filename, doc.caption)
        raise PermanentServiceError("telegram", f"unknown outbox kind {item.kind!r}")


def _record_sent(conn: Any, item: outbox.OutboxItem, message_id: int | None, at: Any) -> None:
    outbox.mark_sent(conn, item.id, message_id, at)
    if item.kind == "document" and item.order_id is not None and message_id is not None:
        order_rows.mark_delivered(conn, item.order_id, message_id, at)


def _record_failed(conn: Any, item: outbox.OutboxItem, error: str) -> None:
    outbox.mark_failed(conn, item.id, error)
    if item.kind == "document" and item.order_id is not None:
        order_rows.mark_delivery_failed(conn, item.order_id, error)
