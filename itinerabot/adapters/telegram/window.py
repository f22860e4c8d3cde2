"""Which updates are in hand: the offset that is safe to tell Telegram and to store, with chats
handled concurrently and so updates committed out of order.

The offset is the lowest update not yet committed (or, with none in hand, the next one not yet
seen): what the store keeps with each update's effects. Telegram may be told a higher one only
over updates kept in the inbox (longpoll.py), so an update in hand is never lost before its
effects commit; the updates above the offset that are done already are known (in memory, and
in the store for a restart) and skipped when they come again. Pure bookkeeping: no I/O, no
clock.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable


class UpdateWindow:
    """The updates seen but not yet committed, and those committed above the offset.

    The sets stay small: the long poll holds at most `telegram.max_updates_in_hand` updates
    (later ones are parked: their ids only, the updates in the inbox, see longpoll.py). The
    offset is read on every update, so it costs O(1) amortised (a heap of the ids in hand,
    cleaned lazily); committed ids are pruned only when the offset moves."""

    def __init__(self, offset: int, done: Iterable[int] = ()) -> None:
        #: the next update id not yet seen
        self._seen_to = offset
        self._in_hand: set[int] = set()
        self._heap: list[int] = []  # the ids in hand, and some committed since (lazy)
        #: committed ids at or above the offset (a restart loads them from the store)
        self._done = {u for u in done if u >= offset}
        self._pruned_at = offset
        #: seen, not committed, and not in hand: kept in the inbox until there is room
        self._parked: deque[int] = deque()
        self._parked_ids: set[int] = set()

    def _lowest_in_hand(self) -> int | None:
        heap = self._heap
        while heap and heap[0] not in self._in_hand:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def _floor(self) -> int:
        """The lowest update not in hand and not committed: parked, or not yet seen."""
        return self._parked[0] if self._parked else self._seen_to

    @property
    def offset(self) -> int:
        """The lowest update not yet committed: safe to tell Telegram and to store."""
        low = self._lowest_in_hand()
        return self._floor() if low is None else min(low, self._floor())

    @property
    def parked(self) -> int:
        """How many updates are parked (seen, kept in the inbox, not yet in hand)."""
        return len(self._parked)

    def next_parked(self) -> int | None:
        """The lowest parked update, or None."""
        return self._parked[0] if self._parked else None

    @property
    def in_hand(self) -> int:
        """How many updates are seen and not yet committed."""
        return len(self._in_hand)

    def committed(self, update_id: int) -> bool:
        """True once `update_id` is committed (below the offset, or done above it)."""
        return update_id < self.offset or update_id in self._done

    def _new(self, update_id: int) -> bool:
        """True if `update_id` is new work: not in hand nor parked, not done; seen now.
        Telegram sends every update from the offset on again, so most of a batch can be old."""
        if update_id in self._in_hand or update_id in self._parked_ids:
            return False
        if update_id < self.offset:
            return False
        # Telegram hands updates out in order from the offset: whatever it sent is seen
        self._seen_to = max(self._seen_to, update_id + 1)
        return update_id not in self._done

    def admit(self, update_id: int) -> bool:
        """Take `update_id` in hand if it is new work; True if it was."""
        if not self._new(update_id):
            return False
        self._in_hand.add(update_id)
        heapq.heappush(self._heap, update_id)
        return True

    def park(self, update_id: int) -> bool:
        """Like `admit`, but the new update waits outside the hand (in the inbox) until
        `unpark`. Updates are parked in the order they come."""
        if not self._new(update_id):
            return False
        assert not self._parked or update_id > self._parked[-1], "parked out of order"
        self._parked.append(update_id)
        self._parked_ids.add(update_id)
        return True

    def unpark(self) -> int:
        """Move the lowest parked update into the hand; returns its id."""
        update_id = self._parked.popleft()
        self._parked_ids.discard(update_id)
        self._in_hand.add(update_id)
        heapq.heappush(self._heap, update_id)
        return update_id

    def offset_after(self, update_id: int) -> int:
        """The offset once `update_id` (in hand) commits: what its transaction stores."""
        if self._lowest_in_hand() != update_id:
            return self.offset
        # the lowest commits: the next one in hand (a scan, only when the lowest commits)
        floor = self._floor()  # (a parked update may be lower than any in hand)
        return min((u for u in self._in_hand if u != update_id and u < floor), default=floor)

    def finish(self, update_id: int) -> None:
        """`update_id` committed."""
        self._in_hand.discard(update_id)
        if len(self._heap) > 2 * len(self._in_hand) + 1000:
            # committed ids pile up under one that stays in hand: keep only those in hand
            self._heap = list(self._in_hand)
            heapq.heapify(self._heap)
        low = self.offset
        if low > self._pruned_at:  # the offset moved: forget what is below it now
            self._done = {u for u in self._done if u >= low}
            self._pruned_at = low
        if update_id >= low:
            self._done.add(update_id)
