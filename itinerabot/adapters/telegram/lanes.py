"""Chats handled concurrently, each chat's updates in the order Telegram sent them.

Each chat with updates waiting has one lane task that handles them one after another; lanes
take a slot of a FIFO `trio.CapacityLimiter` per update, so at most `limit` updates are handled
at once and a chat that floods the bot queues behind the others after each update instead of
holding a slot.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable

import telegram
import trio

from itinerabot.adapters.telegram.updates import translate

#: handles one update (its effects committed when it returns)
Handle = Callable[[telegram.Update], Awaitable[None]]


def chat_key(update: telegram.Update) -> int:
    """The lane an update belongs to: the chat the handler will read and write for it (the
    same `translate`), or a lane of its own when it has none."""
    incoming = translate(update)
    return incoming.chat_id if incoming is not None else -(2**62) - update.update_id


class ChatLanes:
    """Runs `handle` per update: chats concurrently up to `limit`, one chat in order."""

    def __init__(self, handle: Handle, limit: int) -> None:
        self._handle = handle
        self._slots = trio.CapacityLimiter(limit)
        self._queues: dict[int, deque[telegram.Update]] = {}
        self._nursery: trio.Nursery | None = None

    @property
    def chats(self) -> int:
        """Chats with updates waiting or being handled."""
        return len(self._queues)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the lane tasks until cancelled. A lane whose `handle` raises ends the run with
        that error (the update stays uncommitted: the next start handles it)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def submit(self, update: telegram.Update) -> None:
        """Queue `update` behind its chat's earlier ones."""
        assert self._nursery is not None, "submit before run started"
        key = chat_key(update)
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(update)
            return
        self._queues[key] = deque([update])
        self._nursery.start_soon(self._lane, key, name=f"chat lane {key}")

    async def _lane(self, key: int) -> None:
        queue = self._queues[key]
        try:
            while queue:
                async with self._slots:
                    await self._handle(queue[0])
                queue.popleft()
        finally:
            del self._queues[key]
