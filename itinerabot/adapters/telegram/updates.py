"""Translate Telegram updates into dialogue events (and nothing else)."""

from __future__ import annotations

from dataclasses import dataclass

import telegram

from itinerabot.dialogue.types import (
    ButtonPress,
    CommandMessage,
    Event,
    OtherMessage,
    TextMessage,
)
from itinerabot.store.stars import StarPayment

_KINDS = (
    "photo",
    "sticker",
    "voice",
    "video",
    "video_note",
    "audio",
    "animation",
    "document",
    "location",
    "venue",
    "contact",
    "poll",
    "dice",
    "game",
    "story",
)


@dataclass(frozen=True, slots=True)
class Incoming:
    """One update as the handler needs it: where it came from and what it says."""

    update_id: int
    chat_id: int
    private: bool
    event: Event
    language_code: str | None = None  # the IETF tag the sender's app reports, e.g. "ru"
    #: a `successful_payment` service message: Telegram charged Stars (not a dialogue event)
    paid: StarPayment | None = None


def translate(update: telegram.Update) -> Incoming | None:
    """The chat and event of an update, or None for updates the bot does not handle."""
    if update.message is not None:
        msg = update.message
        private = msg.chat.type == telegram.constants.ChatType.PRIVATE
        language = msg.from_user.language_code if msg.from_user is not None else None
        paid = _star_payment(msg)
        event = OtherMessage("successful_payment") if paid else _message_event(msg)
        return Incoming(update.update_id, msg.chat.id, private, event, language, paid)
    cq = update.callback_query
    if cq is not None:
        chat = cq.message.chat if cq.message is not None else None
        chat_id = chat.id if chat is not None else cq.from_user.id
        private = chat is None or chat.type == telegram.constants.ChatType.PRIVATE
        message_id = cq.message.message_id if cq.message is not None else None
        return Incoming(
            update.update_id,
            chat_id,
            private,
            ButtonPress(data=cq.data or "", callback_id=cq.id, message_id=message_id),
            cq.from_user.language_code,
        )
    return None


def _star_payment(msg: telegram.Message) -> StarPayment | None:
    """The payment a `successful_payment` service message reports, or None."""
    sp = msg.successful_payment
    if sp is None:
        return None
    return StarPayment(
        charge_id=sp.telegram_payment_charge_id,
        payer_id=msg.from_user.id if msg.from_user is not None else msg.chat.id,
        chat_id=msg.chat.id,
        payload=sp.invoice_payload,
        currency=sp.currency,
        amount=sp.total_amount,
        provider_charge_id=sp.provider_payment_charge_id or None,
    )


def _message_event(msg: telegram.Message) -> Event:
    text = msg.text
    if text is not None:
        entity = msg.entities[0] if msg.entities else None
        if (
            entity is not None
            and entity.type == telegram.constants.MessageEntityType.BOT_COMMAND
            and entity.offset == 0
        ):
            command = text[1 : entity.length].split("@", 1)[0].lower()
            return CommandMessage(command, text[entity.length :].strip())
        return TextMessage(text)
    for kind in _KINDS:
        if getattr(msg, kind, None):
            return OtherMessage(kind)
    return OtherMessage("message")
