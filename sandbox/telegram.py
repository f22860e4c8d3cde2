"""Fake Telegram Bot API: an ASGI app that answers with the Bot API's real JSON shapes.

Every call is checked against ../shared/reference/telegram-bot-api.json (methods, field names,
nested object fields); a scripted traveller enqueues real-shaped updates; faults are injected
on demand.

    api = FakeBotApi()
    transport = InProcessTransport(api)          # in process, or
    base = await nursery.start(serve_app, api)   # on loopback; the bot's base_url is f"{base}/bot"
    api.user_command(42, "/start")
    api.fail_next("sendMessage", status=429, retry_after=3)

Differences from Telegram, on purpose: an unknown method or field is answered 400 (Telegram says
404 or ignores the field) and recorded in `api.violations`, so tests fail loudly.
"""

from __future__ import annotations

import collections
import copy
import inspect
import itertools
import json
import random
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import trio

from sandbox.reference import reference_dir
from sandbox.serve import (
    Receive,
    Scope,
    Send,
    answer_lifespan,
    drop_connection,
    header,
    read_body,
    send_bytes,
    send_json,
)

__all__ = [
    "ApiCall",
    "BotApiSpec",
    "ChatLine",
    "FakeBotApi",
    "Keyboard",
    "SentDocument",
    "StoredFile",
    "UploadedFile",
    "load_spec",
]

JSON = dict[str, Any]


DEFAULT_TOKEN = "123456789:AAsandboxTokenForItinerabotDemo00"

# Telegram's own limits (https://core.telegram.org/bots/api, ../shared/reference/README.md).
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_UPLOAD = 50 * 1024 * 1024
MAX_CALLBACK_ANSWER = 200
#: seconds Telegram waits for answerPreCheckoutQuery before it cancels the purchase
PRE_CHECKOUT_TIMEOUT = 10.0

# What getUpdates sends when allowed_updates is [] or was never set.
_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


# ---------------------------------------------------------------- the published spec


class BotApiSpec:
    """The Bot API spec as JSON: which methods exist, their fields, and every object type."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.version: str = str(document.get("version", ""))
        self.methods: dict[str, JSON] = dict(document["methods"])
        self.types: dict[str, JSON] = dict(document["types"])

    def fields_of(self, method: str) -> dict[str, JSON] | None:
        """The fields of `method` by name, or None if the method does not exist."""
        spec = self.methods.get(method)
        if spec is None:
            return None
        return {f["name"]: f for f in spec.get("fields", [])}

    def check(self, value: object, types: Collection[str], path: str) -> list[str]:
        """Problems with `value` as one of the spec type expressions `types` (empty: fine)."""
        best: list[str] | None = None
        for type_expr in types:
            problems = self._check_one(value, type_expr, path)
            if not problems:
                return []
            if best is None or len(problems) < len(best):
                best = problems
        return best or []

    def _check_one(self, value: object, type_expr: str, path: str) -> list[str]:
        if type_expr.startswith("Array of "):
            if not isinstance(value, list):
                return [f"{path}: expected {type_expr}"]
            problems: list[str] = []
            for i, item in enumerate(value):
                problems += self.check(item, [type_expr[len("Array of ") :]], f"{path}[{i}]")
            return problems
        primitive = _PRIMITIVES.get(type_expr)
        if primitive is not None:
            return [] if primitive(value) else [f"{path}: expected {type_expr}"]
        spec = self.types.get(type_expr)
        if spec is None:
            return []  # a type the spec does not describe: nothing to check against
        if spec.get("subtypes"):
            return self.check(value, spec["subtypes"], path)
        if not isinstance(value, dict):
            return [f"{path}: expected {type_expr} object"]
        fields = {f["name"]: f for f in spec.get("fields", [])}
        if not fields:
            return []
        problems = [f"{path}.{k}: no such field in {type_expr}" for k in value if k not in fields]
        for name, f in fields.items():
            if name in value:
                problems += self.check(value[name], f["types"], f"{path}.{name}")
            elif f.get("required"):
                problems.append(f"{path}.{name}: required in {type_expr}")
        return problems


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_PRIMITIVES: dict[str, Callable[[object], bool]] = {
    "Integer": _is_int,
    "Float": lambda v: _is_int(v) or isinstance(v, float),
    "Boolean": lambda v: isinstance(v, bool),
    "True": lambda v: v is True,
    "String": lambda v: isinstance(v, str),
    "InputFile": lambda v: isinstance(v, str | UploadedFile),
}


@cache
def load_spec(path: Path | None = None) -> BotApiSpec:
    """Load (once) the Bot API spec from the shared reference folder."""
    spec_path = path or reference_dir() / "telegram-bot-api.json"
    return BotApiSpec(json.loads(spec_path.read_text(encoding="utf-8")))


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class UploadedFile:
    """One multipart file part as the client sent it."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class ApiCall:
    """One request to the fake: method, decoded params, uploaded files, and what it answered.

    `status` is the HTTP status (-1: connection dropped); `result` the `result` of a 200 answer.
    """

    method: str
    params: JSON
    files: dict[str, UploadedFile]
    status: int = 0
    at: float = 0.0  # trio time
    result: object = None


@dataclass(frozen=True)
class StoredFile:
    """A file the fake holds, reachable by file_id (getFile, /file/bot<token>/<path>)."""

    file_id: str
    file_unique_id: str
    file_path: str
    file_name: str
    mime_type: str
    data: bytes


@dataclass(frozen=True)
class SentDocument:
    """A document the bot sent to a chat."""

    chat_id: int
    message_id: int
    file_id: str
    file_name: str
    mime_type: str
    data: bytes
    caption: str | None


@dataclass(frozen=True)
class ChatLine:
    """One line of a chat transcript: who ("traveller", "bot", or "telegram" for Telegram's
    own service messages such as a payment) and what they did."""

    chat_id: int
    who: str
    what: str

    def __str__(self) -> str:
        return f"{self.who:>9} │ {self.what}"


@dataclass(frozen=True)
class Keyboard:
    """An inline keyboard the bot attached to a message."""

    chat_id: int
    message_id: int
    rows: list[list[JSON]]

    def labels(self) -> list[str]:
        """Button texts, row by row."""
        return [str(b.get("text", "")) for row in self.rows for b in row]

    def data_for(self, label: str) -> str:
        """The callback_data of the button whose text is `label` (raises LookupError)."""
        for row in self.rows:
            for button in row:
                if button.get("text") == label and "callback_data" in button:
                    return str(button["callback_data"])
        raise LookupError(f"no callback button {label!r} in {self.labels()}")


@dataclass
class _Fault:
    method: str | None
    status: int
    description: str
    retry_after: int | None
    drop: bool
    remaining: int


class _BotApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


# ---------------------------------------------------------------- the fake


class FakeBotApi:
    """Fake Bot API server state plus its ASGI app (the instance itself is the app).

    `clock` gives wall-clock Unix seconds for message dates; scheduling uses trio time.
    Call the scripting methods from the trio thread that serves the app.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "itinerabot_sandbox_bot",
        bot_name: str = "Itinerabot (sandbox)",
        clock: Callable[[], float] = time.time,
        spec: BotApiSpec | None = None,
        seed: int = 0,
    ) -> None:
        self.token = token
        self.spec = spec or load_spec()
        self.clock = clock
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
        self.bot_user: JSON = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.calls: list[ApiCall] = []
        self.violations: list[str] = []
        self.commands: list[JSON] = []  # the menu for every language without its own
        self.commands_by_language: dict[str, list[JSON]] = {}
        self.webhook_url = ""
        self.callback_answers: dict[str, JSON] = {}
        self.files: dict[str, StoredFile] = {}
        self.blocked: set[int] = set()
        self.faults_injected: collections.Counter[str] = collections.Counter()
        self._updates: list[JSON] = []
        self._next_update_id = 100_000_001
        self._allowed_updates: frozenset[str] | None = None
        self._messages: dict[tuple[int, int], JSON] = {}
        self._next_message_id: dict[int, int] = collections.defaultdict(lambda: 1)
        self._chats: dict[int, JSON] = {}
        #: what each private chat's app says of its user (e.g. `language_code`), by chat id
        self._profiles: dict[int, JSON] = {}
        self._log: list[ChatLine] = []
        self._sent_documents: list[SentDocument] = []
        self._sent_texts: list[tuple[int, str]] = []
        self._open_callbacks: set[str] = set()
        self._faults: list[_Fault] = []
        self._fault_shares: dict[str, tuple[float, int, int | None]] = {}
        self._random = random.Random(seed)
        self._ids = itertools.count(1)
        self._wakeup = trio.Event()
        self._poll_generation = 0
        self._handlers: dict[str, Callable[[JSON, dict[str, UploadedFile]], Any]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendChatAction": self._send_chat_action,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "getFile": self._get_file,
            "sendInvoice": self._send_invoice,
            "answerPreCheckoutQuery": self._answer_pre_checkout_query,
            "refundStarPayment": self._refund_star_payment,
        }
        #: Stars invoices the bot sent, by (chat id, message id)
        self.invoices: dict[tuple[int, int], JSON] = {}
        #: each pre-checkout query's answer (its params), by query id; None: too late
        self.pre_checkout_answers: dict[str, JSON | None] = {}
        #: Stars charges made, by telegram_payment_charge_id: {"user_id", "amount", "refunded"}
        self.star_charges: dict[str, JSON] = {}
        #: pre-checkout queries awaiting the bot's answer, and the chat each was asked from
        self._open_pre_checkouts: dict[str, trio.Event] = {}
        self._pre_checkout_chats: dict[str, int] = {}

    # ------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str | None,
        *,
        status: int = 429,
        retry_after: int | None = None,
        description: str | None = None,
        drop: bool = False,
        count: int = 1,
    ) -> None:
        """Answer the next `count` calls of `method` (None: any method) with an error.

        status 429 carries `parameters.retry_after` (default 1 s); `drop=True` breaks the
        connection mid-response instead (the client sees an httpx transport error). A faulted
        call has no effect on the fake's state.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        self._faults.append(
            _Fault(
                method=method,
                status=status,
                description=description
                or (
                    f"Too Many Requests: retry after {retry_after}"
                    if status == 429
                    else _DEFAULT_DESCRIPTIONS.get(status, "Error")
                ),
                retry_after=retry_after,
                drop=drop,
                remaining=count,
            )
        )

    def fail_share(
        self, methods: Collection[str], share: float, *, status: int = 429, retry_after: int = 1
    ) -> None:
        """Answer a seeded-random `share` (0..1) of calls to `methods` with `status`."""
        for method in methods:
            self._fault_shares[method] = (share, status, retry_after if status == 429 else None)

    def set_profile(self, chat_id: int, **fields: Any) -> None:
        """From now on the traveller of `chat_id` sends these `User` fields with every update,
        e.g. `language_code="ru"` (an app set to Russian)."""
        self._profiles.setdefault(chat_id, {}).update(fields)

    def block(self, chat_id: int) -> None:
        """The user of `chat_id` blocked the bot: every send there gets 403 from now on."""
        self.blocked.add(chat_id)

    # ------------------------------------------------------------ the scripted traveller

    def user_text(
        self,
        chat_id: int,
        text: str,
        *,
        user: Mapping[str, Any] | None = None,
        chat_type: str = "private",
        entities: list[JSON] | None = None,
    ) -> JSON:
        """The traveller sends `text` in `chat_id`; returns the enqueued Update."""
        message = self._user_message(chat_id, user, chat_type)
        message["text"] = text
        if entities:
            message["entities"] = entities
        self._log.append(ChatLine(chat_id, "traveller", text))
        return self._enqueue({"message": message})

    def user_command(
        self,
        chat_id: int,
        command: str,
        *,
        user: Mapping[str, Any] | None = None,
        chat_type: str = "private",
    ) -> JSON:
        """The traveller sends a command such as "/start" or "/start ref42" (bot_command entity)."""
        name = command.split(maxsplit=1)[0]
        entity = {"type": "bot_command", "offset": 0, "length": len(name)}
        return self.user_text(chat_id, command, user=user, chat_type=chat_type, entities=[entity])

    def group_text(
        self,
        chat_id: int,
        text: str,
        *,
        user: Mapping[str, Any] | None = None,
        title: str = "Sandbox travel group",
    ) -> JSON:
        """Someone writes `text` in group `chat_id` (a negative id)."""
        self._chats.setdefault(chat_id, {"id": chat_id, "type": "group", "title": title})
        return self.user_text(chat_id, text, user=user, chat_type="group")

    def user_photo(
        self, chat_id: int, *, caption: str | None = None, user: Mapping[str, Any] | None = None
    ) -> JSON:
        """The traveller sends a photo (stored, fetchable with getFile)."""
        message = self._user_message(chat_id, user, "private")
        data = b"\xff\xd8\xff\xe0sandbox-photo\xff\xd9"
        stored = self._store_file(data, "photo.jpg", "image/jpeg", "photos")
        message["photo"] = [
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "width": 90,
                "height": 90,
                "file_size": len(data),
            }
        ]
        if caption:
            message["caption"] = caption
        self._log.append(ChatLine(chat_id, "traveller", f"[photo] {caption or ''}".rstrip()))
        return self._enqueue({"message": message})

    def user_press(
        self, chat_id: int, message_id: int, data: str, *, user: Mapping[str, Any] | None = None
    ) -> JSON:
        """The traveller presses the button with callback `data` under message `message_id`.

        Raises LookupError if that message has no such button: a real client cannot press it.
        """
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise LookupError(f"no message {message_id} in chat {chat_id}")
        rows = message.get("reply_markup", {}).get("inline_keyboard", [])
        label = next(
            (b["text"] for row in rows for b in row if b.get("callback_data") == data), None
        )
        if label is None:
            raise LookupError(f"message {message_id} has no button with callback_data {data!r}")
        query_id = str(4_000_000_000_000_000 + next(self._ids))
        self._open_callbacks.add(query_id)
        query = {
            "id": query_id,
            "from": self._user(chat_id, user),
            "message": copy.deepcopy(message),
            "chat_instance": str(-8_000_000_000_000 - abs(chat_id)),
            "data": data,
        }
        self._log.append(ChatLine(chat_id, "traveller", f"[pressed: {label}]"))
        return self._enqueue({"callback_query": query})

    def press_button(self, chat_id: int, label: str) -> JSON:
        """Press the button labelled `label` on the bot's latest keyboard in `chat_id`."""
        keyboard = self.last_keyboard(chat_id)
        if keyboard is None:
            raise LookupError(f"chat {chat_id} has no inline keyboard")
        return self.user_press(chat_id, keyboard.message_id, keyboard.data_for(label))

    async def pay_invoice(
        self, chat_id: int, message_id: int, *, user: Mapping[str, Any] | None = None
    ) -> str | None:
        """The traveller pays the Stars invoice `message_id` in `chat_id` as Telegram runs it:
        a `pre_checkout_query`, up to 10 s (trio time) for the bot's answer, then, if the bot
        said ok, the charge and a `successful_payment` message. Returns the charge id, or None
        when the bot refused or did not answer in time (nothing charged).

        Raises LookupError if there is no such invoice.
        """
        invoice = self.invoices.get((chat_id, message_id))
        if invoice is None:
            raise LookupError(f"no invoice {message_id} in chat {chat_id}")
        amount = sum(int(p["amount"]) for p in invoice["prices"])
        payer = self._user(chat_id, user)
        query_id = str(5_000_000_000_000_000 + next(self._ids))
        answered = trio.Event()
        self._open_pre_checkouts[query_id] = answered
        self._pre_checkout_chats[query_id] = chat_id
        query = {
            "id": query_id,
            "from": payer,
            "currency": invoice["currency"],
            "total_amount": amount,
            "invoice_payload": invoice["payload"],
        }
        self._log.append(ChatLine(chat_id, "traveller", f"[pays {amount} {invoice['currency']}]"))
        self._enqueue({"pre_checkout_query": query})
        with trio.move_on_after(PRE_CHECKOUT_TIMEOUT):
            await answered.wait()
        self._open_pre_checkouts.pop(query_id, None)
        answer = self.pre_checkout_answers.setdefault(query_id, None)
        if answer is None:
            self._log.append(
                ChatLine(chat_id, "telegram", "[purchase cancelled: no answer in 10 s]")
            )
            return None
        if not answer.get("ok"):
            return None
        update = self.successful_payment(
            chat_id,
            payload=invoice["payload"],
            amount=amount,
            currency=invoice["currency"],
            user=user,
        )
        return str(update["message"]["successful_payment"]["telegram_payment_charge_id"])

    def successful_payment(
        self,
        chat_id: int,
        *,
        payload: str,
        amount: int,
        currency: str = "XTR",
        charge_id: str | None = None,
        user: Mapping[str, Any] | None = None,
    ) -> JSON:
        """Telegram reports a payment in `chat_id` (a `successful_payment` service message),
        as it does after a pre-checkout the bot accepted; returns the enqueued Update. Call
        it directly to deliver one the bot never saw checked (a repeat, a wrong amount)."""
        message = self._user_message(chat_id, user, "private")
        charge_id = charge_id or f"stxsandbox{next(self._ids):012d}"
        self.star_charges.setdefault(
            charge_id, {"user_id": message["from"]["id"], "amount": amount, "refunded": False}
        )
        message["successful_payment"] = {
            "currency": currency,
            "total_amount": amount,
            "invoice_payload": payload,
            "telegram_payment_charge_id": charge_id,
            "provider_payment_charge_id": "",
        }
        self._log.append(
            ChatLine(chat_id, "telegram", f"[payment: {amount} {currency}, charge {charge_id}]")
        )
        return self._enqueue({"message": message})

    def resend_update(self, update: JSON) -> JSON:
        """Deliver an update again under a new id, as Telegram may (a repeat the bot must
        recognise by its content)."""
        return self._enqueue({k: copy.deepcopy(v) for k, v in update.items() if k != "update_id"})

    def last_invoice(self, chat_id: int) -> tuple[int, JSON] | None:
        """(message id, params) of the latest Stars invoice sent to `chat_id`, or None."""
        mine = [(mid, inv) for (cid, mid), inv in self.invoices.items() if cid == chat_id]
        return max(mine, key=lambda pair: pair[0]) if mine else None

    # ------------------------------------------------------------ views for tests

    def calls_to(self, method: str) -> list[ApiCall]:
        """Every call of `method`, in order (faulted ones included, see `status`)."""
        return [c for c in self.calls if c.method == method]

    def sent_texts(self, chat_id: int) -> list[str]:
        """Texts the bot sent to `chat_id` with sendMessage, in order (as displayed)."""
        return [text for cid, text in self._sent_texts if cid == chat_id]

    def sent_documents(self, chat_id: int | None = None) -> list[SentDocument]:
        """Documents the bot sent (to `chat_id`, or anywhere), in order."""
        return [d for d in self._sent_documents if chat_id is None or d.chat_id == chat_id]

    def chat_log(self, chat_id: int) -> list[ChatLine]:
        """The conversation in `chat_id` as a chat would show it."""
        return [line for line in self._log if line.chat_id == chat_id]

    def transcript(self, chat_id: int) -> str:
        """`chat_log` as text, one line per event."""
        return "\n".join(str(line) for line in self.chat_log(chat_id))

    def last_keyboard(self, chat_id: int) -> Keyboard | None:
        """The inline keyboard of the bot's latest message in `chat_id` that still has one."""
        mine = [
            m
            for (cid, _), m in self._messages.items()
            if cid == chat_id and m.get("from", {}).get("is_bot") and "reply_markup" in m
        ]
        if not mine:
            return None
        latest = max(mine, key=lambda m: int(m["message_id"]))
        return Keyboard(chat_id, latest["message_id"], latest["reply_markup"]["inline_keyboard"])

    def message(self, chat_id: int, message_id: int) -> JSON | None:
        """The current state of a message (after edits), or None."""
        return self._messages.get((chat_id, message_id))

    @property
    def pending_updates(self) -> int:
        """Updates not yet confirmed by an offset."""
        return len(self._updates)

    # ------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith("/file/bot"):
            await self._serve_file(path, send)
            return
        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", path)
        if match is None:
            await _answer_error(send, 404, "Not Found")
            return
        token, method = match.groups()
        if token != self.token:
            await _answer_error(send, 401, "Unauthorized")
            return
        body = await read_body(receive)
        call = ApiCall(method, {}, {}, at=trio.current_time())
        self.calls.append(call)
        try:
            call.params, call.files = self._decode(scope, body, method)
            self._validate(method, call.params, call.files)
            fault = self._take_fault(method)
            if fault is not None and fault.drop:
                self.faults_injected[f"{method}:drop"] += 1
                call.status = -1
                await drop_connection(send)
            if fault is not None:
                self.faults_injected[f"{method}:{fault.status}"] += 1
                raise _BotApiError(fault.status, fault.description, fault.retry_after)
            result = self._handlers[method](call.params, call.files)
            if inspect.isawaitable(result):
                result = await result
        except _BotApiError as exc:
            call.status = exc.status
            await _answer_error(send, exc.status, exc.description, exc.retry_after)
            return
        call.status, call.result = 200, result
        await send_json(send, 200, {"ok": True, "result": result})

    # ------------------------------------------------------------ request decoding

    def _decode(
        self, scope: Scope, body: bytes, method: str
    ) -> tuple[JSON, dict[str, UploadedFile]]:
        content_type = header(scope, "content-type") or ""
        fields = self.spec.fields_of(method) or {}
        params: JSON = {}
        files: dict[str, UploadedFile] = {}
        raw: list[tuple[str, str]] = _parse_query(scope.get("query_string", b""))
        try:
            if content_type.startswith("application/json"):
                decoded = json.loads(body) if body.strip() else {}
                if not isinstance(decoded, dict):
                    raise ValueError("JSON body is not an object")
                params.update(decoded)
            elif content_type.startswith("multipart/form-data"):
                texts, parts = _parse_multipart(body, content_type)
                raw += texts
                files = {p.field: p for p in parts}
            elif body:
                raw += _parse_query(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _BotApiError(400, f"Bad Request: can't parse request: {exc}") from exc
        for name, value in raw:
            params[name] = _coerce(value, fields[name]["types"] if name in fields else ["?"])
        for name, part in files.items():
            if name in fields:
                params[name] = part
        return params, files

    def _validate(self, method: str, params: JSON, files: dict[str, UploadedFile]) -> None:
        fields = self.spec.fields_of(method)
        problems: list[str] = []
        if fields is None:
            problems.append(f"{method}: no such method in Bot API {self.spec.version}")
        elif method not in self._handlers:
            problems.append(f"{method}: exists in the Bot API but the sandbox does not fake it")
        else:
            for name, value in params.items():
                if name not in fields:
                    problems.append(f"{method}.{name}: no such field")
                else:
                    problems += self.spec.check(value, fields[name]["types"], f"{method}.{name}")
            problems += [
                f"{method}.{name}: required field missing"
                for name, f in fields.items()
                if f.get("required") and name not in params
            ]
            attached = {
                v[len("attach://") :]
                for v in _strings_in(params)
                if isinstance(v, str) and v.startswith("attach://")
            }
            problems += [
                f"{method}: file part {name!r} is neither a field nor attach://-referenced"
                for name in files
                if name not in fields and name not in attached
            ]
        if problems:
            self.violations += problems
            raise _BotApiError(400, "Bad Request: " + "; ".join(problems))

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method in (None, method) and fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        share = self._fault_shares.get(method)
        if share is not None and self._random.random() < share[0]:
            status, retry_after = share[1], share[2]
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if status == 429
                else _DEFAULT_DESCRIPTIONS.get(status, "Error")
            )
            return _Fault(method, status, description, retry_after, False, 1)
        return None

    # ------------------------------------------------------------ updates

    def _enqueue(self, payload: JSON) -> JSON:
        update = {"update_id": self._next_update_id, **payload}
        self._next_update_id += 1
        self._updates.append(update)
        self._wake()
        return update

    def _wake(self) -> None:
        self._wakeup.set()
        self._wakeup = trio.Event()

    def _deliverable(self, limit: int) -> list[JSON]:
        allowed = self._allowed_updates
        out: list[JSON] = []
        for update in list(self._updates):
            kind = next(k for k in update if k != "update_id")
            wanted = kind not in _DEFAULT_EXCLUDED_UPDATES if not allowed else kind in allowed
            if not wanted:
                self._updates.remove(update)  # Telegram never queues what the bot did not ask for
                continue
            out.append(update)
            if len(out) == limit:
                break
        return out

    async def _get_updates(self, params: JSON, files: dict[str, UploadedFile]) -> list[JSON]:
        if self.webhook_url:
            raise _BotApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = params.get("offset")
        if isinstance(offset, int) and offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif isinstance(offset, int) and offset < 0:
            self._updates = self._updates[offset:]
        if "allowed_updates" in params:
            self._allowed_updates = frozenset(params["allowed_updates"]) or None
        limit = max(1, min(100, int(params.get("limit", 100))))
        timeout = max(0, int(params.get("timeout", 0)))
        # A newer getUpdates ends this one with 409, as Telegram does with two pollers.
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake()
        deadline = trio.current_time() + timeout
        while True:
            if generation != self._poll_generation:
                raise _BotApiError(409, _DEFAULT_DESCRIPTIONS[409])
            batch = self._deliverable(limit)
            if batch or trio.current_time() >= deadline:
                return copy.deepcopy(batch)
            wakeup = self._wakeup
            with trio.move_on_at(deadline):
                await wakeup.wait()

    # ------------------------------------------------------------ methods

    def _get_me(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        return dict(self.bot_user)

    def _set_webhook(self, params: JSON, files: dict[str, UploadedFile]) -> bool:
        self.webhook_url = str(params["url"])
        return True

    def _delete_webhook(self, params: JSON, files: dict[str, UploadedFile]) -> bool:
        self.webhook_url = ""
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _get_webhook_info(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    def _set_my_commands(self, params: JSON, files: dict[str, UploadedFile]) -> bool:
        language = params.get("language_code") or ""
        self.commands_by_language[language] = list(params["commands"])
        if not language:
            self.commands = list(params["commands"])
        return True

    def _get_my_commands(self, params: JSON, files: dict[str, UploadedFile]) -> list[JSON]:
        return list(self.commands)

    def _delete_my_commands(self, params: JSON, files: dict[str, UploadedFile]) -> bool:
        self.commands = []
        return True

    def _send_chat_action(self, params: JSON, files: dict[str, UploadedFile]) -> bool:
        self._chat_for_send(params)
        return True

    def _send_message(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        chat = self._chat_for_send(params)
        text = _displayed(str(params["text"]), params.get("parse_mode"))
        if not text.strip():
            raise _BotApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            raise _BotApiError(400, "Bad Request: message is too long")
        message = self._bot_message(chat, params, text=text)
        self._sent_texts.append((chat["id"], text))
        self._log.append(ChatLine(chat["id"], "bot", text))
        self._log_keyboard(message)
        return message

    def _send_photo(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        chat = self._chat_for_send(params)
        stored = self._file_from(params["photo"], "photo.jpg", "image/jpeg", "photos")
        width, height = _image_size(stored.data)
        message = self._bot_message(chat, params)
        message["photo"] = [
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "width": width,
                "height": height,
                "file_size": len(stored.data),
            }
        ]
        caption = message.get("caption")
        self._log.append(
            ChatLine(chat["id"], "bot", f"[photo {stored.file_name}] {caption or ''}".rstrip())
        )
        self._log_keyboard(message)
        return message

    def _send_document(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        chat = self._chat_for_send(params)
        stored = self._file_from(
            params["document"], "document", "application/octet-stream", "documents"
        )
        message = self._bot_message(chat, params)
        message["document"] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": stored.file_name,
            "mime_type": stored.mime_type,
            "file_size": len(stored.data),
        }
        caption = message.get("caption")
        self._sent_documents.append(
            SentDocument(
                chat_id=chat["id"],
                message_id=message["message_id"],
                file_id=stored.file_id,
                file_name=stored.file_name,
                mime_type=stored.mime_type,
                data=stored.data,
                caption=caption,
            )
        )
        line = f"[document {stored.file_name}, {len(stored.data)} bytes] {caption or ''}"
        self._log.append(ChatLine(chat["id"], "bot", line.rstrip()))
        self._log_keyboard(message)
        return message

    def _edit_message_text(self, params: JSON, files: dict[str, UploadedFile]) -> JSON | bool:
        message = self._message_to_edit(params)
        text = _displayed(str(params["text"]), params.get("parse_mode"))
        if not text.strip():
            raise _BotApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            raise _BotApiError(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        if text == message.get("text") and markup == message.get("reply_markup"):
            raise _not_modified()
        message["text"] = text
        self._replace_markup(message, markup)
        message["edit_date"] = int(self.clock())
        self._log.append(ChatLine(message["chat"]["id"], "bot", f"[edited] {text}"))
        self._log_keyboard(message)
        return copy.deepcopy(message)

    def _edit_message_caption(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        message = self._message_to_edit(params)
        caption = _displayed(str(params.get("caption", "")), params.get("parse_mode"))
        if len(caption) > MAX_CAPTION:
            raise _BotApiError(400, "Bad Request: message caption is too long")
        markup = params.get("reply_markup")
        if caption == message.get("caption", "") and markup == message.get("reply_markup"):
            raise _not_modified()
        message["caption"] = caption
        self._replace_markup(message, markup)
        message["edit_date"] = int(self.clock())
        return copy.deepcopy(message)

    def _edit_message_reply_markup(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        message = self._message_to_edit(params)
        markup = params.get("reply_markup")
        if markup == message.get("reply_markup") or (
            not _has_buttons(markup) and not _has_buttons(message.get("reply_markup"))
        ):
            raise _not_modified()
        self._replace_markup(message, markup)
        message["edit_date"] = int(self.clock())
        self._log_keyboard(message, removed_note=True)
        return copy.deepcopy(message)

    def _delete_message(self, params: JSON, files: dict[str, UploadedFile]) -> bool:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if self._messages.pop(key, None) is None:
            raise _BotApiError(400, "Bad Request: message to delete not found")
        return True

    def _answer_callback_query(self, params: JSON, files: dict[str, UploadedFile]) -> bool:
        query_id = str(params["callback_query_id"])
        if query_id not in self._open_callbacks:
            raise _BotApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        if len(str(params.get("text", ""))) > MAX_CALLBACK_ANSWER:
            raise _BotApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._open_callbacks.discard(query_id)
        self.callback_answers[query_id] = dict(params)
        return True

    def _send_invoice(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        chat = self._chat_for_send(params)
        for name, most in (("title", 32), ("description", 255)):
            if not 1 <= len(str(params[name])) <= most:
                raise _BotApiError(400, f"Bad Request: invoice {name} must be 1-{most} characters")
        if not 1 <= len(str(params["payload"]).encode()) <= 128:
            raise _BotApiError(400, "Bad Request: INVOICE_PAYLOAD_INVALID")
        prices = params["prices"]
        if params["currency"] != "XTR":
            # a provider's invoice: the sandbox knows no payment provider tokens
            raise _BotApiError(400, "Bad Request: PAYMENT_PROVIDER_INVALID")
        # Stars: no provider, exactly one price item, no tips (Telegram's STARS_INVOICE_INVALID)
        tips = params.get("max_tip_amount") or params.get("suggested_tip_amounts")
        if params.get("provider_token") not in (None, "") or len(prices) != 1 or tips:
            raise _BotApiError(400, "Bad Request: STARS_INVOICE_INVALID")
        if not prices or any(int(p["amount"]) <= 0 for p in prices):
            raise _BotApiError(400, "Bad Request: CURRENCY_TOTAL_AMOUNT_INVALID")
        message = self._bot_message(chat, params)
        total = sum(int(p["amount"]) for p in prices)
        message["invoice"] = {
            "title": params["title"],
            "description": params["description"],
            "start_parameter": params.get("start_parameter", ""),
            "currency": params["currency"],
            "total_amount": total,
        }
        self._messages[(chat["id"], message["message_id"])]["invoice"] = message["invoice"]
        self.invoices[(chat["id"], message["message_id"])] = dict(params)
        self._log.append(
            ChatLine(
                chat["id"], "bot", f"[invoice: {params['title']} · {total} {params['currency']}]"
            )
        )
        return message

    def _answer_pre_checkout_query(self, params: JSON, files: dict[str, UploadedFile]) -> bool:
        query_id = str(params["pre_checkout_query_id"])
        answered = self._open_pre_checkouts.get(query_id)
        if answered is None:
            raise _BotApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        # a malformed answer is refused without using up the query: a fixed one may follow
        if not params["ok"] and not params.get("error_message"):
            raise _BotApiError(400, "Bad Request: error_message is required when ok is False")
        del self._open_pre_checkouts[query_id]
        self.pre_checkout_answers[query_id] = dict(params)
        chat_id = self._pre_checkout_chats.get(query_id)
        if chat_id is not None:
            said = "ok" if params["ok"] else f"refused: {params['error_message']}"
            self._log.append(ChatLine(chat_id, "bot", f"[checkout {said}]"))
        answered.set()
        return True

    def _refund_star_payment(self, params: JSON, files: dict[str, UploadedFile]) -> bool:
        charge = self.star_charges.get(str(params["telegram_payment_charge_id"]))
        if charge is None or charge["user_id"] != params["user_id"]:
            raise _BotApiError(400, "Bad Request: CHARGE_NOT_FOUND")
        if charge["refunded"]:
            raise _BotApiError(400, "Bad Request: CHARGE_ALREADY_REFUNDED")
        charge["refunded"] = True
        return True

    def _get_file(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        stored = self.files.get(str(params["file_id"]))
        if stored is None:
            raise _BotApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    async def _serve_file(self, path: str, send: Send) -> None:
        prefix = f"/file/bot{self.token}/"
        if not path.startswith(prefix):
            await _answer_error(send, 401, "Unauthorized")
            return
        wanted = path[len(prefix) :]
        stored = next((f for f in self.files.values() if f.file_path == wanted), None)
        if stored is None:
            await _answer_error(send, 404, "Not Found")
            return
        await send_bytes(send, 200, stored.data, content_type=stored.mime_type)

    # ------------------------------------------------------------ helpers

    def _user(self, chat_id: int, user: Mapping[str, Any] | None) -> JSON:
        base: JSON = {
            "id": abs(chat_id) if chat_id > 0 else 7_000_000 + abs(chat_id) % 1_000_000,
            "is_bot": False,
            "first_name": "Traveller",
            "language_code": "en",
        }
        base.update(self._profiles.get(chat_id, {}))
        base.update(user or {})
        return base

    def _chat(self, chat_id: int, user: JSON | None = None) -> JSON:
        chat = self._chats.get(chat_id)
        if chat is None:
            if chat_id > 0:
                chat = {"id": chat_id, "type": "private", "first_name": "Traveller"}
                if user is not None:
                    chat["first_name"] = user.get("first_name", "Traveller")
                    if "username" in user:
                        chat["username"] = user["username"]
            else:
                chat = {"id": chat_id, "type": "group", "title": "Sandbox travel group"}
            self._chats[chat_id] = chat
        return chat

    def _user_message(self, chat_id: int, user: Mapping[str, Any] | None, chat_type: str) -> JSON:
        sender = self._user(chat_id, user)
        chat = self._chat(chat_id, sender)
        if chat_type != "private" and chat["type"] == "private":
            chat = {"id": chat_id, "type": chat_type, "title": "Sandbox travel group"}
            self._chats[chat_id] = chat
        message: JSON = {
            "message_id": self._new_message_id(chat_id),
            "from": sender,
            "chat": dict(chat),
            "date": int(self.clock()),
        }
        self._messages[(chat_id, message["message_id"])] = message
        return message

    def _new_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id[chat_id]
        self._next_message_id[chat_id] += 1
        return message_id

    def _chat_for_send(self, params: JSON) -> JSON:
        chat_id = params["chat_id"]
        if not isinstance(chat_id, int):
            raise _BotApiError(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            raise _BotApiError(403, "Forbidden: bot was blocked by the user")
        return self._chat(chat_id)

    def _bot_message(self, chat: JSON, params: JSON, *, text: str | None = None) -> JSON:
        caption = None
        if params.get("caption") is not None:
            caption = _displayed(str(params["caption"]), params.get("parse_mode"))
            if len(caption) > MAX_CAPTION:
                raise _BotApiError(400, "Bad Request: message caption is too long")
        message: JSON = {
            "message_id": self._new_message_id(chat["id"]),
            "from": dict(self.bot_user),
            "chat": dict(chat),
            "date": int(self.clock()),
        }
        if text is not None:
            message["text"] = text
        if caption is not None:
            message["caption"] = caption
        self._replace_markup(message, params.get("reply_markup"))
        self._messages[(chat["id"], message["message_id"])] = message
        return copy.deepcopy(message)

    def _replace_markup(self, message: JSON, markup: object) -> None:
        # Telegram echoes only inline keyboards in a Message; reply keyboards live on the client.
        if _has_buttons(markup):
            assert isinstance(markup, dict)
            for row in markup["inline_keyboard"]:
                for button in row:
                    data = button.get("callback_data")
                    if data is not None and len(str(data).encode()) > MAX_CALLBACK_DATA:
                        raise _BotApiError(400, "Bad Request: BUTTON_DATA_INVALID")
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)

    def _log_keyboard(self, message: JSON, *, removed_note: bool = False) -> None:
        chat_id = message["chat"]["id"]
        markup = message.get("reply_markup")
        if _has_buttons(markup):
            assert isinstance(markup, dict)
            labels = " | ".join(b["text"] for row in markup["inline_keyboard"] for b in row)
            self._log.append(ChatLine(chat_id, "bot", f"[buttons: {labels}]"))
        elif removed_note:
            self._log.append(ChatLine(chat_id, "bot", "[buttons removed]"))

    def _message_to_edit(self, params: JSON) -> JSON:
        if "inline_message_id" in params:
            raise _BotApiError(400, "Bad Request: the sandbox has no inline messages")
        chat_id, message_id = params.get("chat_id"), params.get("message_id")
        message = None
        if isinstance(chat_id, int) and isinstance(message_id, int):
            message = self._messages.get((chat_id, message_id))
        if message is None:
            raise _BotApiError(400, "Bad Request: message to edit not found")
        if not message["from"].get("is_bot"):
            raise _BotApiError(400, "Bad Request: message can't be edited")
        return message

    def _store_file(self, data: bytes, file_name: str, mime_type: str, folder: str) -> StoredFile:
        n = next(self._ids)
        suffix = Path(file_name).suffix or ".bin"
        stored = StoredFile(
            file_id=f"BQACAgQAAxkBAAI{n:06d}sandbox",
            file_unique_id=f"AgAD{n:06d}",
            file_path=f"{folder}/file_{n}{suffix}",
            file_name=file_name,
            mime_type=mime_type,
            data=data,
        )
        self.files[stored.file_id] = stored
        return stored

    def _file_from(
        self, value: object, default_name: str, default_mime: str, folder: str
    ) -> StoredFile:
        if isinstance(value, UploadedFile):
            if len(value.data) > MAX_UPLOAD:
                raise _BotApiError(400, "Bad Request: file is too big")
            name = value.filename or default_name
            mime = value.content_type or default_mime
            if mime == "application/octet-stream" and name.lower().endswith(".pdf"):
                mime = "application/pdf"
            return self._store_file(value.data, name, mime, folder)
        if isinstance(value, str) and value in self.files:
            return self.files[value]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            name = value.rsplit("/", 1)[-1] or default_name
            return self._store_file(b"", name, default_mime, folder)
        raise _BotApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")


# ---------------------------------------------------------------- module helpers


async def _answer_error(
    send: Send, status: int, description: str, retry_after: int | None = None
) -> None:
    payload: JSON = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        payload["parameters"] = {"retry_after": retry_after}
    headers = [("retry-after", str(retry_after))] if retry_after is not None else []
    await send_json(send, status, payload, headers=headers)


def _not_modified() -> _BotApiError:
    return _BotApiError(
        400,
        "Bad Request: message is not modified: specified new message content and reply markup "
        "are exactly the same as a current content and reply markup of the message",
    )


def _has_buttons(markup: object) -> bool:
    return isinstance(markup, dict) and bool(markup.get("inline_keyboard"))


def _strings_in(value: object) -> list[object]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings_in(v)]
    return [value]


def _parse_query(raw: bytes | str) -> list[tuple[str, str]]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    return parse_qsl(text, keep_blank_values=True, strict_parsing=False)


def _coerce(value: str, types: list[str]) -> object:
    """A form field's string as the spec's type: PTB JSON-encodes every non-string value."""
    if types == ["String"]:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


_DISPOSITION_PARAM = re.compile(r';\s*([\w*]+)="((?:[^"\\]|\\.)*)"')


def _parse_multipart(
    body: bytes, content_type: str
) -> tuple[list[tuple[str, str]], list[UploadedFile]]:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise ValueError("multipart body without boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    texts: list[tuple[str, str]] = []
    files: list[UploadedFile] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("multipart part without headers")
        data = data.removesuffix(b"\r\n")
        headers = {}
        for line in head.decode("utf-8").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        params = dict(_DISPOSITION_PARAM.findall(headers.get("content-disposition", "")))
        field_name = params.get("name")
        if field_name is None:
            raise ValueError("multipart part without a name")
        if "filename" in params:
            files.append(
                UploadedFile(
                    field=field_name,
                    filename=params["filename"],
                    content_type=headers.get("content-type", "application/octet-stream"),
                    data=data,
                )
            )
        else:
            texts.append((field_name, data.decode("utf-8")))
    return texts, files


def _image_size(data: bytes) -> tuple[int, int]:
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return 320, 320


_HTML_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
    "code", "pre", "blockquote", "tg-emoji", "tg-time",
}  # fmt: skip


class _TelegramHtml(HTMLParser):
    """Checks Telegram's HTML subset the way the server does and keeps the displayed text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_TAGS:
            raise ValueError(f'Unsupported start tag "{tag}"')
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            raise ValueError(f'Can\'t find end tag corresponding to start tag "{tag}"')
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _displayed(text: str, parse_mode: object) -> str:
    """The text a chat shows after `parse_mode`; raises _BotApiError like Telegram on bad markup."""
    mode = str(parse_mode or "").lower()
    if mode == "html":
        parser = _TelegramHtml()
        try:
            parser.feed(text)
            parser.close()
            if parser.open:
                raise ValueError(f'Can\'t find end tag for start tag "{parser.open[-1]}"')
        except ValueError as exc:
            raise _BotApiError(400, f"Bad Request: can't parse entities: {exc}") from exc
        return "".join(parser.text)
    if mode == "markdownv2":
        for i, ch in enumerate(text):
            escaped = i > 0 and text[i - 1] == "\\"
            if ch in ".!-=+#{}" and not escaped:
                raise _BotApiError(
                    400,
                    f"Bad Request: can't parse entities: Character '{ch}' is reserved and must "
                    "be escaped with the preceding '\\'",
                )
        return re.sub(r"\\(.)", r"\1", re.sub(r"(?<!\\)[*_~|`]", "", text))
    if mode == "markdown":
        return re.sub(r"(?<!\\)[*_`]", "", text)
    return text
