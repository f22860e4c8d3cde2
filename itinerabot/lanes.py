"""Lanes: work items of different keys (chats) handled concurrently, each key's in the order
they were submitted.

Each key with items waiting has one lane task that handles them one after another; lanes take
a slot of a FIFO `trio.CapacityLimiter` per item, so at most `limit` items are handled at once
and a key that floods its lane queues behind the others after each item instead of holding a
slot. Used for Telegram updates (keyed by chat) and for payment requests (keyed by chat).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import trio

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class Lanes(Generic[K, T]):
    """Runs `handle(item)`: keys concurrently up to `limit`, one key's items in order."""

    def __init__(self, handle: Callable[[T], Awaitable[None]], limit: int) -> None:
        self._handle = handle
        self._slots = trio.CapacityLimiter(limit)
        self._queues: dict[K, deque[T]] = {}
        self._nursery: trio.Nursery | None = None

    @property
    def keys(self) -> int:
        """Keys with items waiting or being handled."""
        return len(self._queues)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the lane tasks until cancelled. A lane whose `handle` raises ends the run with
        that error: `handle` is the task boundary that catches what it can recover from."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def submit(self, key: K, item: T) -> None:
        """Queue `item` behind the earlier items of `key`."""
        assert self._nursery is not None, "submit before run started"
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(item)
            return
        self._queues[key] = deque([item])
        self._nursery.start_soon(self._lane, key, name=f"lane {key}")

    async def _lane(self, key: K) -> None:
        queue = self._queues[key]
        try:
            while queue:
                async with self._slots:
                    await self._handle(queue[0])
                queue.popleft()
        finally:
            del self._queues[key]
