"""The Telegram long-poll loop: getUpdates, hand each new update to its chat's lane (a
pre-checkout query to the desk, at once), keep it in the inbox, repeat.

Chats are handled concurrently (`Lanes` keyed by chat), so updates commit out of order: the
offset stored with each update's effects is the lowest update not yet committed
(`UpdateWindow`), and updates done above it are skipped when they come again. The offset told
to Telegram may run ahead of it over updates kept in the inbox (`store.inbox`, a file of its
own): so a store whose writer stalls holds up the updates in hand, never the fetching of new
ones (a pre-checkout query has 10 s). At most `telegram.max_updates_in_hand` updates are in
memory (and one getUpdates answer more): a full hand waits for room, but getUpdates is called
at least every FULL_POLL_EVERY all the same, and what such a poll brings is *parked* in the
inbox (ids only in memory) and handed out, in order, as room frees up; a pre-checkout query
is never parked. While the inbox cannot be
written the next getUpdates waits for progress as before the inbox (Telegram sends the
updates not yet confirmed again). 409 (another instance polling)
and network errors back off; 429 waits `retry_after`; an invalid token ends the loop with
InvalidToken so the process stops with a clear message. The trio time of the last getUpdates
that succeeded is kept for /healthz.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import telegram
import trio
from telegram import Update

from itinerabot.adapters.telegram.client import TelegramClient
from itinerabot.adapters.telegram.handler import UpdateHandler
from itinerabot.adapters.telegram.precheckout import PreCheckoutDesk
from itinerabot.adapters.telegram.updates import translate
from itinerabot.adapters.telegram.window import UpdateWindow
from itinerabot.config import TelegramSettings
from itinerabot.errors import (
    Conflict,
    InvalidToken,
    PermanentServiceError,
    RateLimited,
    ServiceError,
    StoreError,
)
from itinerabot.lanes import Lanes
from itinerabot.metrics import DISCARD, Recorder
from itinerabot.store import Store, misc
from itinerabot.store.inbox import Inbox

log = logging.getLogger(__name__)


def chat_key(update: telegram.Update) -> int:
    """The lane an update belongs to: the chat the handler will read and write for it (the
    same `translate`), or a lane of its own when it has none."""
    incoming = translate(update)
    return incoming.chat_id if incoming is not None else -(2**62) - update.update_id


#: while updates are in hand, the longest wait for one to finish before polling again (new
#: updates of other chats are fetched at least this often when every update in hand is slow)
REPOLL_IN_HAND = 0.25
#: updates parked in the inbox at most (ids only in memory); beyond, getUpdates waits
MAX_PARKED = 100_000
#: with the hand full, getUpdates is called at least this often all the same (parking what
#: comes), so a pre-checkout query waits at Telegram no longer than this for room
FULL_POLL_EVERY = 1.0
#: seconds between attempts to write the inbox after it failed
INBOX_RETRY = 1.0
#: an update still not committed this long after it was fetched is kept in the inbox...
INBOX_AFTER = 0.05
#: ... and every one at once while this many are in hand (the store is not keeping up)
INBOX_AT = 50


class LongPoll:
    """Owns the getUpdates loop and the chat lanes. `last_success` is the trio time of its
    last sign of life: a getUpdates that succeeded, or an update handled (a batch of slow
    updates is progress, not an outage)."""

    def __init__(
        self,
        telegram: TelegramClient,
        store: Store,
        handler: UpdateHandler,
        desk: PreCheckoutDesk,
        inbox: Inbox,
        settings: TelegramSettings,
        metrics: Recorder = DISCARD,
        *,
        new_inbox: bool = False,
    ) -> None:
        self._telegram = telegram
        self._store = store
        self._handler = handler
        self._desk = desk
        self._inbox = inbox
        #: start even if the inbox is not the one the store last ran with (`serve --new-inbox`)
        self._new_inbox = new_inbox
        #: every update below this is in the inbox or committed: Telegram may forget it
        self._kept_to = 0
        #: the update after the highest Telegram has sent
        self._fetched_to = 0
        self._to_keep, self._keeping = trio.open_memory_channel[tuple[int, list[Update]]](math.inf)
        #: set when an update commits or many come in (the inbox keeper looks again)
        self._changed = trio.Event()
        #: set when an update commits or more are kept (the feeder of parked ones looks again)
        self._room = trio.Event()
        self._max_in_hand = settings.max_updates_in_hand
        #: trio time of the last getUpdates
        self._last_poll = -math.inf
        self._queries: trio.Nursery | None = None
        self._settings = settings
        self._metrics = metrics
        self._window = UpdateWindow(0)
        self._lanes: Lanes[int, Update] = Lanes(self._handle, settings.concurrent_chats)
        self._progress = trio.Event()
        self.started_at: float | None = None
        self.last_success: float | None = None

    @property
    def offset(self) -> int:
        """The lowest update not yet committed (what the store keeps)."""
        return self._window.offset

    @property
    def fetch_from(self) -> int:
        """What Telegram is told on the next poll: every update below it is committed or
        kept in the inbox."""
        return max(self._window.offset, self._kept_to)

    def handled(self, update_id: int) -> bool:
        """True once the update's effects are committed."""
        return self._window.committed(update_id)

    @property
    def waiting(self) -> int:
        """Updates fetched and not yet committed (queued in lanes or being handled)."""
        return self._window.in_hand

    @property
    def parked(self) -> int:
        """Updates fetched and kept in the inbox, waiting for room in memory."""
        return self._window.parked

    def seconds_without_updates(self) -> float | None:
        """Seconds since getUpdates last succeeded or an update was handled, or since the loop
        started if neither has happened; None before the loop starts."""
        since = self.last_success if self.last_success is not None else self.started_at
        return None if since is None else trio.current_time() - since

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Poll until cancelled. Raises InvalidToken if Telegram refuses the token, and
        StoreError if an update's effects cannot be committed (it is handled after a restart)."""
        await self._check_inbox()
        offset = await self._store.run(misc.get_offset)
        done = await self._store.run(misc.handled_from, offset)
        self._window = UpdateWindow(offset, done)
        kept = await self._inbox.kept_ids(offset)
        self._kept_to = self._fetched_to = max([offset] + [u + 1 for u in kept])
        self.started_at = trio.current_time()
        async with trio.open_nursery() as nursery:
            await nursery.start(self._lanes.run, name="chat lanes")
            await nursery.start(self._serve_queries, name="pre-checkout queries")
            await nursery.start(self._keep_updates, name="update inbox")
            await nursery.start(self._feed_parked, name="parked updates")
            # fetched and confirmed to Telegram before the last stop, never committed: what
            # fits in hand now, the rest parked (only their ids in memory)
            head = await self._inbox.pending(offset, self._max_in_hand)
            for update_id, data in head:
                if self._window.admit(update_id):
                    self._dispatch(Update.de_json(data, self._telegram.bot))
            for update_id in kept[len(head) :]:
                self._window.park(update_id)
            self._room.set()
            if kept:
                log.info("updates from the inbox handed out again", extra={"count": len(kept)})
            task_status.started()
            await self._poll()

    async def _check_inbox(self) -> None:
        """Refuse to start with an inbox that is not the one this store last ran with when
        that one may hold updates Telegram forgot (a crash or stall while it was needed):
        they would be lost without a word. Raises StoreError saying what to do."""
        known, needed = await self._store.run(misc.inbox_state)
        if known not in (None, self._inbox.id) and needed and not self._new_inbox:
            raise StoreError(
                f"the update inbox {self._inbox.path} is not the one this store last ran with,"
                " and that one may hold updates Telegram was told to forget: restore it (from"
                " the same backup as the store), or accept losing them with"
                " `itinerabot serve --new-inbox`"
            )
        if known not in (None, self._inbox.id):
            log.warning("a new update inbox", extra={"inbox": str(self._inbox.path)})
        await self._store.run(misc.set_inbox_state, self._inbox.id, True)

    async def _keep_updates(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Keep in the inbox, in order, the updates of each getUpdates answer that are still
        not committed after INBOX_AFTER seconds (at once when INBOX_AT are in hand: the store
        is not keeping up); then the offset told to Telegram may pass them. Most updates
        commit within milliseconds and are never written. A failing inbox is retried:
        meanwhile the offset waits for commits, as it would without an inbox."""
        task_status.started()
        async for first in self._keeping:
            items = [first]
            with trio.move_on_after(INBOX_AFTER):
                while (
                    not self._window.parked
                    and self._window.in_hand < INBOX_AT
                    and any(
                        not self._window.committed(u.update_id) for _, batch in items for u in batch
                    )
                ):
                    await self._changed.wait()
                    self._changed = trio.Event()
            while True:
                try:
                    items.append(self._keeping.receive_nowait())
                except trio.WouldBlock:
                    break
            if rows := self._uncommitted(items):
                await self._write(rows)
            self._kept_to = max(self._kept_to, max(upto for upto, _ in items))
            self._progress.set()
            self._room.set()

    def _uncommitted(self, items: list[tuple[int, list[Update]]]) -> list[tuple[int, Any]]:
        """(id, JSON-able dict) of the updates in `items` not yet committed."""
        return [
            (u.update_id, u.to_dict())
            for _, batch in items
            for u in batch
            if not self._window.committed(u.update_id)
        ]

    async def _write(self, rows: list[tuple[int, Any]]) -> None:
        while True:
            try:
                await self._inbox.keep(rows, self._window.offset)
                return
            except trio.Cancelled:
                raise
            except Exception as exc:  # the disk, or a bug: the offset waits for commits
                log.warning("could not write the update inbox", extra={"error": str(exc)})
                await trio.sleep(INBOX_RETRY)

    async def _serve_queries(self, *, task_status: trio.TaskStatus[None]) -> None:
        """The nursery pre-checkout queries are answered in, each in its own task."""
        async with trio.open_nursery() as self._queries:
            task_status.started()
            await trio.sleep_forever()

    async def _poll(self) -> None:
        backoff = self._settings.backoff_initial
        polled_at = -1
        while True:
            forced = await self._wait_for_room(polled_at)
            if forced and not self._window.parked:
                log.warning(
                    "updates in hand at the limit: newer ones are parked in the inbox",
                    extra={"in_hand": self._window.in_hand},
                )
            unconfirmed = self._fetched_to > self.fetch_from
            if unconfirmed:
                # Telegram sends what is not yet confirmed again: poll once the offset moved
                # (an inbox write, a commit), or after a short pause for new updates
                with trio.move_on_after(REPOLL_IN_HAND):
                    while self.fetch_from == polled_at:
                        await self._progress.wait()
                        self._progress = trio.Event()
            polled_at = self.fetch_from
            self._last_poll = trio.current_time()
            try:
                updates = await self._telegram.get_updates(
                    self.fetch_from,
                    0 if self._fetched_to > self.fetch_from else self._settings.long_poll_timeout,
                )
            except InvalidToken:
                raise
            except RateLimited as exc:
                log.warning("getUpdates rate limited", extra={"retry_after": exc.retry_after})
                await trio.sleep(exc.retry_after)
                continue
            except Conflict:
                log.error(
                    "409 Conflict: another instance is polling this bot (or a webhook is set);"
                    " backing off",
                    extra={"retry_in": self._settings.conflict_backoff},
                )
                await trio.sleep(self._settings.conflict_backoff)
                continue
            except ServiceError as exc:
                level = logging.ERROR if isinstance(exc, PermanentServiceError) else logging.WARNING
                log.log(
                    level, "getUpdates failed", extra={"error": exc.message, "retry_in": backoff}
                )
                await trio.sleep(backoff)
                backoff = min(self._settings.backoff_cap, backoff * 2)
                continue
            backoff = self._settings.backoff_initial
            self.last_success = trio.current_time()
            new: list[Update] = []
            for update in sorted(updates, key=lambda u: u.update_id):
                self._fetched_to = max(self._fetched_to, update.update_id + 1)
                if self._parks(update, forced):
                    if self._window.park(update.update_id):
                        new.append(update)
                elif self._window.admit(update.update_id):
                    new.append(update)
                    self._dispatch(update)
            if updates:
                self._to_keep.send_nowait((self._fetched_to, new))
                self._changed.set()

    def _full(self) -> bool:
        return self._window.in_hand >= self._max_in_hand or bool(self._window.parked)

    async def _wait_for_room(self, asked: int) -> bool:
        """Back-pressure: while the hand is full (or updates are parked), wait for room
        before fetching more, but fetch at least every FULL_POLL_EVERY all the same (and,
        while updates are parked, as soon as the last batch is kept: `asked` is the offset
        the last poll gave), so a pre-checkout query is never held at Telegram for long,
        whether the store has stalled or the bot is busy. True when this poll comes with
        the hand still full:
        what it brings is parked (a busy bot that frees room steadily never parks, since a
        parked update costs a write and a read)."""
        while self._window.parked >= MAX_PARKED:
            await self._progress.wait()
            self._progress = trio.Event()
        with trio.move_on_at(self._last_poll + FULL_POLL_EVERY):
            # once updates are parked, each batch kept lets the next be fetched at once:
            # Telegram's queue drains into the inbox while the store cannot keep up
            while self._full() and not (self._window.parked and self.fetch_from > asked):
                await self._progress.wait()
                self._progress = trio.Event()
        return self._full()

    def _parks(self, update: Update, forced: bool) -> bool:
        """Whether `update` waits in the inbox rather than in hand: while anything is parked
        (a chat's order is kept), or when a poll came with the hand full. A pre-checkout
        query never waits."""
        if update.pre_checkout_query is not None:
            return False
        if self._window.parked:
            return True
        return forced and self._window.in_hand >= self._max_in_hand

    async def _feed_parked(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Hand parked updates out from the inbox, oldest first, as room frees up."""
        task_status.started()
        while True:
            room = self._max_in_hand // 2 - self._window.in_hand
            first = self._window.next_parked()
            if first is None or room <= 0 or first >= self._kept_to:  # (not yet written)
                await self._room.wait()
                self._room = trio.Event()
                continue
            try:
                kept = await self._inbox.pending(first, room)
            except StoreError as exc:
                log.warning("could not read the update inbox", extra={"error": str(exc)})
                await trio.sleep(INBOX_RETRY)
                continue
            for update_id, data in kept:
                if self._window.next_parked() == update_id:  # (others: in hand, or done)
                    self._window.unpark()
                    self._dispatch(Update.de_json(data, self._telegram.bot))
            if self._window.next_parked() == first:  # (never: every parked one is kept)
                raise StoreError(f"update {first} is parked but not in the update inbox")

    def _dispatch(self, update: Update) -> None:
        """A new update to its chat's lane; a pre-checkout query to the desk at once."""
        if update.pre_checkout_query is not None:
            # Telegram waits 10 s for the answer: never behind a chat's lane (the queries'
            # nursery starts before any update is handed out)
            assert self._queries is not None
            self._queries.start_soon(self._answer_query, update, update.pre_checkout_query)
        else:
            self._lanes.submit(chat_key(update), update)

    async def _handle(self, update: telegram.Update) -> None:
        """Handle one update in its lane and commit it with the offset it leaves behind."""
        await self._handler.handle(update, self._window.offset_after(update.update_id))
        self._done(update.update_id)

    async def _answer_query(self, update: Update, query: telegram.PreCheckoutQuery) -> None:
        """Answer a pre-checkout query, then commit it as handled (an answer is never sent
        twice in one run; after a crash the query is too old to answer again anyway)."""
        with trio.CancelScope(shield=True):
            # a stop waits for an answer under way (it ends within ANSWER_WITHIN s): our
            # restart must not cancel the traveller's purchase
            await self._desk.answer(query)
        offset = self._window.offset_after(update.update_id)
        try:
            await self._store.run(misc.mark_handled, update.update_id, offset)
        except StoreError as exc:
            # a query has no lasting effect: if it comes again after a restart, Telegram
            # refuses the second answer, and nothing else happens
            log.warning(
                "could not record a pre-checkout query as handled", extra={"error": str(exc)}
            )
        self._done(update.update_id)

    def _done(self, update_id: int) -> None:
        self._window.finish(update_id)
        self._progress.set()
        self._changed.set()
        self._room.set()
        self.last_success = trio.current_time()
        self._metrics.update_handled()

    async def confirm_offset(self) -> None:
        """Tell Telegram which updates are handled (one short getUpdates), within 5 s."""
        with trio.move_on_after(5) as scope:
            scope.shield = True
            try:
                await self._telegram.get_updates(self.fetch_from, 0)
            except ServiceError as exc:
                log.warning("could not confirm the update offset", extra={"error": exc.message})
                return
            if self._kept_to <= self._window.offset:
                # nothing Telegram forgot waits in the inbox: a lost inbox would lose nothing
                try:
                    await self._store.run(misc.set_inbox_state, self._inbox.id, False)
                except StoreError as exc:
                    log.warning("could not record the inbox as empty", extra={"error": str(exc)})
        if scope.cancelled_caught:
            log.warning("confirming the update offset timed out")
        else:
            log.info("update offset confirmed", extra={"offset": self.fetch_from})
