"""The sandbox's fake Bot API, told when each update was offered and when getUpdates handed it
out (wall clock), with a "Pay by card" tap that needs no earlier message: for bench_updates.py.

getUpdates answers at once when updates wait (FakeBotApi's long poll), so the bench decides the
offered rate by when it calls `offer_*`.
"""

from __future__ import annotations

import time
from typing import Any

from sandbox.telegram import JSON, FakeBotApi, UploadedFile

__all__ = ["PacedBotApi"]


class PacedBotApi(FakeBotApi):
    """FakeBotApi that records, by update_id, when each update was offered (`offered_at`) and
    when a getUpdates answer first carried it (`handed_at`), both in Unix seconds."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.offered_at: dict[int, float] = {}
        self.handed_at: dict[int, float] = {}
        self.chat_of: dict[int, int] = {}

    def offer_text(self, chat_id: int, text: str) -> int:
        """The traveller of `chat_id` types `text` (a command if it starts with "/")."""
        if text.startswith("/"):
            update = self.user_command(chat_id, text)
        else:
            update = self.user_text(chat_id, text)
        return self._offered(chat_id, update)

    def offer_tap(self, chat_id: int, data: str, label: str = "Pay by card") -> int:
        """The traveller taps a button with callback `data` under a summary the bot sent earlier
        (a real-shaped callback query; the message need not have gone through this fake)."""
        chat = self._chat(chat_id)
        message: JSON = {
            "message_id": self._new_message_id(chat_id),
            "from": dict(self.bot_user),
            "chat": dict(chat),
            "date": int(self.clock()),
            "text": "Please check your itinerary.",
            "reply_markup": {"inline_keyboard": [[{"text": label, "callback_data": data}]]},
        }
        self._messages[(chat_id, message["message_id"])] = message
        return self._offered(chat_id, self.user_press(chat_id, message["message_id"], data))

    def _offered(self, chat_id: int, update: JSON) -> int:
        update_id = int(update["update_id"])
        self.offered_at[update_id] = time.time()
        self.chat_of[update_id] = chat_id
        return update_id

    async def _get_updates(self, params: JSON, files: dict[str, UploadedFile]) -> list[JSON]:
        batch = await super()._get_updates(params, files)
        now = time.time()
        for update in batch:
            self.handed_at.setdefault(int(update["update_id"]), now)
        return batch
