"""The named child nursery of payment pollers, with a small API to start and cancel one.

Every poller runs under this nursery (never elsewhere), keyed by its payment (the Circle
intent id); at most one per key. Cancelling the nursery ends every poller at once; their
state is in the store, so a restart brings them back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

log = logging.getLogger(__name__)


class PollerNursery:
    """Owns the payment pollers. `run` is the child nursery's task."""

    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None
        self._scopes: dict[str, trio.CancelScope] = {}

    @property
    def running(self) -> int:
        return len(self._scopes)

    def is_running(self, key: str) -> bool:
        return key in self._scopes

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the child nursery open until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def start(self, key: str, poller: Callable[..., Awaitable[Any]], *args: Any) -> bool:
        """Start `poller(*args)` under the nursery unless one runs for `key`; True if started."""
        if self._nursery is None:
            raise RuntimeError("the poller nursery is not running")
        if key in self._scopes:
            return False
        scope = trio.CancelScope()
        self._scopes[key] = scope
        self._nursery.start_soon(self._guard, key, scope, poller, args, name=f"poller {key}")
        return True

    def cancel(self, key: str) -> bool:
        """Cancel the poller of `key` (a no-op if none runs); True if one was running."""
        scope = self._scopes.pop(key, None)
        if scope is None:
            return False
        scope.cancel()
        return True

    async def _guard(
        self,
        key: str,
        scope: trio.CancelScope,
        poller: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
    ) -> None:
        try:
            with scope:
                await poller(*args)
        except trio.Cancelled:
            raise
        except Exception:
            log.exception(
                "poller crashed; its payment stays open for a restart or webhook",
                extra={"poller": key},
            )
        finally:
            if self._scopes.get(key) is scope:
                del self._scopes[key]
