"""The Telegram long-poll loop: getUpdates, hand each update to the handler, repeat.

The offset lives in the store, committed with each update's effects. 409 (another instance
polling) and network errors back off; 429 waits `retry_after`; an invalid token ends the loop
with InvalidToken so the process stops with a clear message. The trio time of the last
getUpdates that succeeded is kept for /healthz.
"""

from __future__ import annotations

import logging

import trio

from itinerabot.adapters.telegram.client import TelegramClient
from itinerabot.adapters.telegram.handler import UpdateHandler
from itinerabot.config import TelegramSettings
from itinerabot.errors import (
    Conflict,
    InvalidToken,
    PermanentServiceError,
    RateLimited,
    ServiceError,
)
from itinerabot.metrics import DISCARD, Recorder
from itinerabot.store import Store, misc

log = logging.getLogger(__name__)


class LongPoll:
    """Owns the getUpdates loop. `last_success` is the trio time of its last sign of life: a
    getUpdates that succeeded, or an update of its batch handled (a batch of slow updates is
    progress, not an outage)."""

    def __init__(
        self,
        telegram: TelegramClient,
        store: Store,
        handler: UpdateHandler,
        settings: TelegramSettings,
        metrics: Recorder = DISCARD,
    ) -> None:
        self._telegram = telegram
        self._store = store
        self._handler = handler
        self._settings = settings
        self._metrics = metrics
        self.offset = 0
        self.started_at: float | None = None
        self.last_success: float | None = None
        self.polls = 0

    def seconds_without_updates(self) -> float | None:
        """Seconds since getUpdates last succeeded or an update was handled, or since the loop
        started if neither has happened; None before the loop starts."""
        since = self.last_success if self.last_success is not None else self.started_at
        return None if since is None else trio.current_time() - since

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Poll until cancelled. Raises InvalidToken if Telegram refuses the token."""
        self.offset = await self._store.run(misc.get_offset)
        self.started_at = trio.current_time()
        task_status.started()
        backoff = self._settings.backoff_initial
        while True:
            try:
                updates = await self._telegram.get_updates(
                    self.offset, self._settings.long_poll_timeout
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
            self.polls += 1
            for update in updates:
                if update.update_id < self.offset:
                    continue  # already handled (Telegram resent it before our confirmation)
                await self._handler.handle(update)
                self.offset = update.update_id + 1
                self.last_success = trio.current_time()
                self._metrics.update_handled()

    async def confirm_offset(self) -> None:
        """Tell Telegram which updates are handled (one short getUpdates), within 5 s."""
        with trio.move_on_after(5) as scope:
            scope.shield = True
            try:
                await self._telegram.get_updates(self.offset, 0)
            except ServiceError as exc:
                log.warning("could not confirm the update offset", extra={"error": exc.message})
                return
        if scope.cancelled_caught:
            log.warning("confirming the update offset timed out")
        else:
            log.info("update offset confirmed", extra={"offset": self.offset})
