"""The messages the bot queues for a chat: their kinds, their payloads, and the one way to put
them in the outbox.

Every module that tells a traveller something builds one of the message types below and queues
it with `queue` in the transaction that caused it, then calls a `Notify` once that transaction
has committed. Only the channel adapter (today Telegram's sender) turns a stored row back into a
message with `from_row` and sends it; no payment module knows which channel carries it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

# The dialogue's two replies that need no translation are outbox messages as they are.
from itinerabot.dialogue.types import AnswerCallback as AnswerCallback
from itinerabot.dialogue.types import InlineButton, Keyboard
from itinerabot.dialogue.types import RemoveButtons as RemoveButtons
from itinerabot.store import outbox


class Kind(StrEnum):
    """The outbox's `kind` column."""

    TEXT = "text"
    PHOTO_QR = "photo_qr"
    DOCUMENT = "document"
    DOCUMENT_COPY = "document_copy"
    REMOVE_BUTTONS = "remove_buttons"
    ANSWER_CALLBACK = "answer_callback"
    INVOICE = "invoice"


#: kinds that carry the order's PDF
DOCUMENT_KINDS = frozenset({Kind.DOCUMENT, Kind.DOCUMENT_COPY})

#: kinds that post a new message (and so count against a channel's per-chat pace)
POSTING_KINDS = frozenset(
    {Kind.TEXT, Kind.PHOTO_QR, Kind.DOCUMENT, Kind.DOCUMENT_COPY, Kind.INVOICE}
)

#: wakes the sender for a chat whose outbox rows have committed
Notify = Callable[[int], None]

#: seconds within which the sender finds rows queued without a `Notify` (another process, such
#: as the operator's `orders` commands, cannot wake it)
RESCAN_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class Text:
    """A text message, with buttons under it if `keyboard` has any. `html` marks text whose
    markup (only <code> around values a traveller copies) is ours and escaped."""

    text: str
    keyboard: Keyboard = ()
    html: bool = False


@dataclass(frozen=True, slots=True)
class PhotoQr:
    """A QR code of `data` (a deposit address), with a caption."""

    data: str
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Document:
    """The order's PDF, the first time: sending it delivers the order."""


@dataclass(frozen=True, slots=True)
class DocumentCopy:
    """Another copy of a paid order's PDF (the traveller's button, `orders resend`)."""


@dataclass(frozen=True, slots=True)
class Invoice:
    """An invoice in Telegram Stars (XTR) for one item: `amount` whole Stars. `payload` names
    the order and the attempt (store.stars); title 1-32 and description 1-255 characters."""

    title: str
    description: str
    payload: str
    label: str
    amount: int


Message = Text | PhotoQr | Document | DocumentCopy | RemoveButtons | AnswerCallback | Invoice


def to_row(message: Message) -> tuple[Kind, dict[str, Any]]:
    """The outbox kind and JSON payload of `message`."""
    match message:
        case Text(text=text, keyboard=keyboard, html=html):
            payload: dict[str, Any] = {"text": text}
            if keyboard:
                payload["keyboard"] = keyboard_to_json(keyboard)
            if html:
                payload["html"] = True
            return Kind.TEXT, payload
        case PhotoQr(data=data, caption=caption):
            return Kind.PHOTO_QR, {"data": data, "caption": caption}
        case Document():
            return Kind.DOCUMENT, {}
        case DocumentCopy():
            return Kind.DOCUMENT_COPY, {}
        case RemoveButtons(message_id=message_id):
            return Kind.REMOVE_BUTTONS, {"message_id": message_id}
        case AnswerCallback(callback_id=callback_id, text=text):
            return Kind.ANSWER_CALLBACK, {"callback_id": callback_id, "text": text}
        case Invoice(
            title=title, description=description, payload=load, label=label, amount=amount
        ):
            return Kind.INVOICE, {
                "title": title,
                "description": description,
                "payload": load,
                "label": label,
                "amount": amount,
            }


def from_row(kind: str, payload: dict[str, Any]) -> Message:
    """The message a stored outbox row holds. Raises ValueError for a kind this version does
    not know, and KeyError for a payload without a field its kind needs."""
    match Kind(kind):
        case Kind.TEXT:
            return Text(
                payload["text"],
                keyboard_from_json(payload.get("keyboard")),
                bool(payload.get("html")),
            )
        case Kind.PHOTO_QR:
            return PhotoQr(payload["data"], payload.get("caption", ""))
        case Kind.DOCUMENT:
            return Document()
        case Kind.DOCUMENT_COPY:
            return DocumentCopy()
        case Kind.REMOVE_BUTTONS:
            return RemoveButtons(int(payload["message_id"]))
        case Kind.ANSWER_CALLBACK:
            return AnswerCallback(payload["callback_id"], payload.get("text"))
        case Kind.INVOICE:
            return Invoice(
                payload["title"],
                payload["description"],
                payload["payload"],
                payload["label"],
                int(payload["amount"]),
            )


def queue(
    conn: sqlite3.Connection,
    chat_id: int,
    message: Message,
    *,
    now: datetime,
    order_id: int | None = None,
) -> int:
    """Put `message` in the outbox inside the caller's transaction; returns the row id.
    The PDF kinds need the order they carry."""
    kind, payload = to_row(message)
    if kind in DOCUMENT_KINDS and order_id is None:
        raise ValueError(f"a {kind} message needs its order")
    return outbox.enqueue(conn, chat_id, kind, payload, created_at=now, order_id=order_id)


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
