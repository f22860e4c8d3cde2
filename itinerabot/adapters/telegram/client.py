"""Adapter over python-telegram-bot's `telegram.Bot`, usable under trio.

`Bot.initialize()`/`shutdown()` use asyncio, so the two `HTTPXRequest`s are initialised here
directly. Every `telegram.error` is converted into the project's exception tree.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import telegram
from telegram import error as tg_error
from telegram.request import HTTPXRequest

from itinerabot.config import TelegramSettings
from itinerabot.dialogue.types import Keyboard
from itinerabot.errors import (
    Conflict,
    InvalidToken,
    OutcomeUnknown,
    PermanentServiceError,
    RateLimited,
    RecipientBlocked,
    ServiceError,
    TransientServiceError,
)
from itinerabot.models import STARS_CURRENCY

log = logging.getLogger(__name__)
T = TypeVar("T")

#: the update types the bot handles; everything else is never fetched
ALLOWED_UPDATES: tuple[str, ...] = ("message", "callback_query", "pre_checkout_query")

SERVICE = "telegram"


#: httpx errors raised before the whole request went out: Telegram cannot have acted on it.
#: (A body that was not fully written is never acted on; httpcore even reads an early answer
#: after a write error, so one that surfaces here had no answer.)
_NOT_SENT: tuple[type[httpx.HTTPError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.LocalProtocolError,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)


def convert_error(exc: tg_error.TelegramError) -> ServiceError:
    """Map a python-telegram-bot error onto the project's tree.

    PTB's `HTTPXRequest` raises `TimedOut` for httpx timeouts and `NetworkError` for other
    httpx errors, each `from` the httpx error, and a plain `NetworkError` (no httpx cause) for
    an error answer it has no class for (5xx). So the cause tells whether the request may have
    reached Telegram: an error answer, or an httpx error in `_NOT_SENT`, means Telegram did
    not act (TransientServiceError); a read timeout, a connection lost after sending, or an
    unreadable success answer means it may have (OutcomeUnknown).
    """
    msg = str(exc.message) if hasattr(exc, "message") else str(exc)
    if isinstance(exc, tg_error.RetryAfter):
        retry = exc.retry_after
        seconds = retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry)
        return RateLimited(SERVICE, seconds, msg)
    if isinstance(exc, tg_error.InvalidToken):
        return InvalidToken(SERVICE, "the bot token was refused (401/404)", status=401)
    if isinstance(exc, tg_error.Conflict):
        return Conflict(SERVICE, msg, status=409)
    if isinstance(exc, tg_error.Forbidden):
        return RecipientBlocked(SERVICE, msg, status=403)
    if isinstance(exc, tg_error.BadRequest | tg_error.ChatMigrated):
        return PermanentServiceError(SERVICE, msg, status=400)
    if isinstance(exc, tg_error.EndPointNotFound):
        return PermanentServiceError(SERVICE, msg, status=404)
    if isinstance(exc, tg_error.PassportDecryptionError):
        return PermanentServiceError(SERVICE, msg)
    cause = exc.__cause__
    if isinstance(exc, tg_error.NetworkError):  # TimedOut included
        # an error answer: a 5xx, whose cause (if any) is its unparseable body
        answered = not isinstance(exc, tg_error.TimedOut) and (
            cause is None or isinstance(cause, tg_error.TelegramError)
        )
        if answered or isinstance(cause, _NOT_SENT):
            return TransientServiceError(SERVICE, msg)
    # a read timeout or a connection lost after the request went out, an HTTP-layer failure
    # PTB does not know, or a success answer that cannot be read: Telegram may have acted
    return OutcomeUnknown(SERVICE, f"no answer, the request may have been taken: {msg}")


async def _call(aw: Awaitable[T]) -> T:
    try:
        return await aw
    except tg_error.TelegramError as exc:
        raise convert_error(exc) from exc


def _markup(keyboard: Keyboard) -> telegram.InlineKeyboardMarkup | None:
    if not keyboard:
        return None
    return telegram.InlineKeyboardMarkup(
        [
            [
                telegram.InlineKeyboardButton(b.text, url=b.url)
                if b.url
                else telegram.InlineKeyboardButton(b.text, callback_data=b.data or "-")
                for b in row
            ]
            for row in keyboard
        ]
    )


def _bot(settings: TelegramSettings, request: HTTPXRequest, updates: HTTPXRequest) -> telegram.Bot:
    """A `telegram.Bot` for the configured server, sending through `request`."""
    return telegram.Bot(
        settings.token.get_secret_value(),
        base_url=f"{settings.api_base}/bot",
        base_file_url=f"{settings.api_base}/file/bot",
        request=request,
        get_updates_request=updates,
    )


class TelegramClient:
    """The bot's one handle on the Bot API. Create with `open_telegram`."""

    def __init__(self, settings: TelegramSettings, *, transport: httpx.AsyncBaseTransport | None):
        kwargs: dict[str, Any] = {"transport": transport} if transport is not None else {}
        self._request = HTTPXRequest(
            connection_pool_size=32,
            read_timeout=15.0,
            write_timeout=30.0,
            connect_timeout=10.0,
            pool_timeout=10.0,
            media_write_timeout=60.0,
            httpx_kwargs=kwargs,
        )
        # PTB adds the long-poll `timeout` to this read timeout for getUpdates.
        self._updates_request = HTTPXRequest(
            connection_pool_size=1,
            read_timeout=10.0,
            connect_timeout=10.0,
            pool_timeout=5.0,
            httpx_kwargs=kwargs,
        )
        # pre-checkout answers have 10 s: their own connections, never queued behind sends
        self._urgent_request = HTTPXRequest(
            connection_pool_size=4,
            read_timeout=5.0,
            write_timeout=5.0,
            connect_timeout=3.0,
            pool_timeout=3.0,
            httpx_kwargs=kwargs,
        )
        self.bot = _bot(settings, self._request, self._updates_request)
        self._urgent = _bot(settings, self._urgent_request, self._urgent_request)
        self._requests = (self._request, self._updates_request, self._urgent_request)
        self.username = ""

    async def start(self) -> None:
        """Initialise the HTTP clients and check the token with getMe (raises InvalidToken)."""
        for request in self._requests:
            await request.initialize()
        me = await _call(self.bot.get_me())
        self.username = me.username or ""

    async def aclose(self) -> None:
        for request in self._requests:
            await request.shutdown()

    # ------------------------------------------------------------------ receiving

    async def get_updates(self, offset: int, timeout: int) -> tuple[telegram.Update, ...]:
        return await _call(
            self.bot.get_updates(
                offset=offset, timeout=timeout, allowed_updates=list(ALLOWED_UPDATES)
            )
        )

    async def set_commands(
        self, commands: Sequence[tuple[str, str]], language_code: str | None = None
    ) -> None:
        """The command menu, for users whose app is in `language_code` (None: everyone else)."""
        await _call(
            self.bot.set_my_commands(
                [telegram.BotCommand(c, d) for c, d in commands], language_code=language_code
            )
        )

    # ------------------------------------------------------------------ sending

    async def send_text(
        self, chat_id: int, text: str, keyboard: Keyboard = (), *, html: bool = False
    ) -> int:
        msg = await _call(
            self.bot.send_message(
                chat_id,
                text,
                reply_markup=_markup(keyboard),
                parse_mode=telegram.constants.ParseMode.HTML if html else None,
            )
        )
        return msg.message_id

    async def send_photo(self, chat_id: int, photo: bytes, caption: str, filename: str) -> int:
        msg = await _call(self.bot.send_photo(chat_id, photo, caption=caption, filename=filename))
        return msg.message_id

    async def send_document(
        self, chat_id: int, document: bytes, filename: str, caption: str
    ) -> int:
        msg = await _call(
            self.bot.send_document(chat_id, document, filename=filename, caption=caption)
        )
        return msg.message_id

    async def remove_buttons(self, chat_id: int, message_id: int) -> None:
        await _call(self.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None))

    async def answer_callback(self, callback_id: str, text: str | None) -> None:
        await _call(self.bot.answer_callback_query(callback_id, text=text))

    # ------------------------------------------------------------------ Telegram Stars

    async def send_invoice(
        self, chat_id: int, title: str, description: str, payload: str, label: str, amount: int
    ) -> int:
        """An invoice for `amount` Telegram Stars; it cannot be forwarded (another user could
        pay it from the copy)."""
        msg = await _call(
            self.bot.send_invoice(
                chat_id,
                title,
                description,
                payload,
                STARS_CURRENCY,
                [telegram.LabeledPrice(label, amount)],
                provider_token="",
                protect_content=True,
            )
        )
        return msg.message_id

    async def answer_pre_checkout(self, query_id: str, error_message: str | None) -> None:
        """Accept the pre-checkout query (`error_message` None) or refuse it, saying why. On
        connections of its own: Telegram waits only 10 s for this answer."""
        await _call(
            self._urgent.answer_pre_checkout_query(
                query_id, ok=error_message is None, error_message=error_message
            )
        )

    async def refund_star_payment(self, user_id: int, charge_id: str) -> None:
        """Give the Stars of one payment back to the user who paid."""
        await _call(self.bot.refund_star_payment(user_id, charge_id))


@asynccontextmanager
async def open_telegram(
    settings: TelegramSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[TelegramClient]:
    """Start a TelegramClient (getMe included) and close its HTTP clients on the way out."""
    client = TelegramClient(settings, transport=transport)
    try:
        await client.start()
        yield client
    finally:
        await client.aclose()
