"""The named child nursery of payment pollers, with a small API to start and cancel one.

Every poller runs under this nursery (never elsewhere), keyed by the order whose payment it
watches; at most one per key, and a poller started for a key whose running poller watches
something else (another payment intent of the order) replaces it. Each runs inside one
cancel scope that is both its window (a `move_on_at` its deadline) and the handle
`cancel(key)` uses: one scope rather than two, since ten thousand pollers sleep at once. A
poller may return a follow-up (the hand-off to fulfilment), and `on_timeout` runs when the
window ends or the poller crashed; both run after the poller is finished and deregistered,
so cancelling that poller can no longer cut them short. One-off payment work (`run_soon`)
runs here too. Cancelling the nursery ends all of it at once; its state is in the store, so
a restart brings the pollers back.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import TypeVarTuple

import trio

#: what a poller may return: work to do once it is finished (or None)
FollowUp = Callable[[], Awaitable[object]] | None

#: the positional arguments of a started poller or piece of work, checked against its
#: signature as trio checks `start_soon`'s
PosArgs = TypeVarTuple("PosArgs")

log = logging.getLogger(__name__)


class PollerNursery:
    """Owns the payment pollers. `run` is the child nursery's task."""

    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None
        self._scopes: dict[int, trio.CancelScope] = {}
        #: what each running poller watches (its `watches` at start)
        self._watching: dict[int, object] = {}

    @property
    def running(self) -> int:
        return len(self._scopes)

    def is_running(self, key: int) -> bool:
        """True if a poller runs for `key`."""
        return key in self._scopes

    def watches(self, key: int, what: object) -> bool:
        """True if a poller runs for `key` and watches `what`."""
        return self.is_running(key) and self._watching.get(key) == what

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the child nursery open until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def start(
        self,
        key: int,
        poller: Callable[[*PosArgs], Awaitable[FollowUp]],
        *args: *PosArgs,
        deadline: float = math.inf,
        on_timeout: FollowUp = None,
        watches: object = None,
    ) -> bool:
        """Start `poller(*args)`, watching `watches`, under the nursery; True if started.
        False if a poller of `key` runs and watches the same; one that watches something else
        is cancelled and replaced (its `on_timeout` does not run).

        The poller is moved on at trio time `deadline` (its window), then `on_timeout` runs.
        After shutdown nothing starts (False): the poller's state is in the store.
        """
        if self._nursery is None:
            raise RuntimeError("the poller nursery is not running")
        if self.watches(key, watches):
            return False
        if self.is_running(key):
            log.info("poller replaced", extra={"poller": key})
            self.cancel(key)
        scope = trio.CancelScope(deadline=deadline)
        try:
            self._nursery.start_soon(
                self._guard, key, scope, poller, args, on_timeout, name=f"poller {key}"
            )
        except RuntimeError:  # the nursery has closed: we are shutting down
            return False
        self._scopes[key] = scope
        self._watching[key] = watches
        return True

    def run_soon(
        self,
        work: Callable[[*PosArgs], Awaitable[object]],
        *args: *PosArgs,
        name: str,
    ) -> bool:
        """Run one-off payment work `work(*args)` under the nursery (not a poller: no key,
        no window); its failure is logged. False after shutdown (its state is in the store)."""
        if self._nursery is None:
            raise RuntimeError("the poller nursery is not running")
        try:
            self._nursery.start_soon(self._guard_work, work, args, name, name=name)
        except RuntimeError:  # the nursery has closed: we are shutting down
            return False
        return True

    def cancel(self, key: int) -> bool:
        """Cancel the poller of `key` (a no-op if none runs); True if one was running."""
        scope = self._scopes.pop(key, None)
        self._watching.pop(key, None)
        if scope is None:
            return False
        scope.cancel()
        return True

    async def _guard(
        self,
        key: int,
        scope: trio.CancelScope,
        poller: Callable[[*PosArgs], Awaitable[FollowUp]],
        args: tuple[*PosArgs],
        on_timeout: FollowUp,
    ) -> None:
        follow_up: FollowUp = None
        try:
            with scope:
                follow_up = await poller(*args)
        except trio.Cancelled:
            raise
        except Exception:
            # its window's hand-off runs now: the payment is watched on, less often
            log.exception(
                "poller crashed; its payment is handed over as if its window ended",
                extra={"poller": key},
            )
            follow_up = on_timeout
        finally:
            if self._scopes.get(key) is scope:
                del self._scopes[key]
                self._watching.pop(key, None)
        if scope.cancelled_caught and trio.current_time() >= scope.deadline:
            follow_up = on_timeout  # the window ended (not a cancel(key))
        if follow_up is None:
            return
        try:
            await follow_up()
        except trio.Cancelled:
            raise
        except Exception:
            log.exception("poller hand-off failed", extra={"poller": key})

    async def _guard_work(
        self,
        work: Callable[[*PosArgs], Awaitable[object]],
        args: tuple[*PosArgs],
        name: str,
    ) -> None:
        try:
            await work(*args)
        except trio.Cancelled:
            raise
        except Exception:
            log.exception("payment work crashed", extra={"work": name})
