"""Telegram's pace for the sender, on trio's clock: `global_rate` calls a second overall, and
per chat one new message per `per_chat_interval` on average with bursts of `per_chat_burst`.
"""

from __future__ import annotations

import heapq
import math

import trio

from itinerabot.config import SenderSettings


class Pacer:
    """Hands out send slots: a global sequence of slots `1 / global_rate` apart, and per chat
    a GCRA "theoretical arrival time" (tat) that each new message pushes `per_chat_interval`
    further. A chat may send while its tat is at most `(per_chat_burst - 1) ×
    per_chat_interval` ahead, so "payment received" and the PDF go out together.

    The per-chat memory is bounded. Write W = per_chat_burst × per_chat_interval. A chat is
    remembered only while its tat is in the future: `_forget_past` drops every tat that has
    passed, and runs before each one is written. Every tat is at most W after the slot of the
    message that wrote it: that message waited until tat_old − (W − interval) ≤ slot (the
    sender sends to a chat from one task at a time, so nothing moved tat_old meanwhile), so
    tat_new = max(tat_old, slot) + interval ≤ slot + W. So after `_forget_past` at time
    `now`, each remembered tat (> now) was written by a slot after `now − W`, and the new one
    by a slot at or before `now`: all distinct slots of one window W long, at least
    `1 / global_rate` apart. Hence at most `global_rate × W + 1` chats are remembered (61
    with the defaults), however many chats the bot has talked to. The heap of expiries obeys
    the same bound: each entry is one slot's tat, dropped once it has passed.
    """

    def __init__(self, settings: SenderSettings) -> None:
        self._interval = settings.per_chat_interval
        self._slack = (settings.per_chat_burst - 1) * settings.per_chat_interval
        self._spacing = 1.0 / settings.global_rate
        self._next_global = -math.inf
        #: no slot before this trio time (Telegram answered 429 with retry_after)
        self._hold_until = -math.inf
        #: per chat, its tat: only chats whose tat is in the future (see the class docstring)
        self._chat_tat: dict[int, float] = {}
        #: (tat, chat) for every tat written and not yet passed, soonest first
        self._expiries: list[tuple[float, int]] = []

    async def slot(self, chat_id: int | None) -> float:
        """Wait for a slot and return its trio time. `chat_id` for a call that posts a new
        message to that chat (its pace counts), None for edits and callback answers."""
        if chat_id is not None:
            chat_free = self._chat_tat.get(chat_id, -math.inf) - self._slack
            if chat_free > trio.current_time():
                await trio.sleep_until(chat_free)
        # the global slot is taken only when this chat may send: a chat waiting for its own
        # pace holds no slot that other chats could use meanwhile
        while True:
            now = trio.current_time()
            at = max(now, self._next_global, self._hold_until)
            self._next_global = at + self._spacing
            if at > now:
                await trio.sleep_until(at)
            if at >= self._hold_until:
                return at
            # a 429 came while this call waited for its slot: book again after the pause

    def sent(self, chat_id: int, slot: float) -> None:
        """A new message to `chat_id` (may have) reached Telegram in the slot `slot`."""
        self._forget_past()
        tat = max(self._chat_tat.get(chat_id, slot), slot) + self._interval
        self._chat_tat[chat_id] = tat
        heapq.heappush(self._expiries, (tat, chat_id))
        self._forget_past()  # a zero interval makes the new tat already past

    def hold(self, seconds: float) -> None:
        """Give no slot to anybody for `seconds` (Telegram answered 429), including calls
        already waiting for a slot booked before the 429."""
        self._hold_until = max(self._hold_until, trio.current_time() + seconds)
        self._next_global = max(self._next_global, self._hold_until)

    @property
    def remembered_chats(self) -> int:
        """How many chats' paces are remembered (each with a tat still in the future)."""
        self._forget_past()
        return len(self._chat_tat)

    def _forget_past(self) -> None:
        now = trio.current_time()
        while self._expiries and self._expiries[0][0] <= now:
            tat, chat_id = heapq.heappop(self._expiries)
            if self._chat_tat.get(chat_id) == tat:  # not since pushed further by a later send
                del self._chat_tat[chat_id]
