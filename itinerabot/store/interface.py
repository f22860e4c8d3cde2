"""What the rest of the bot asks of a store: run a function atomically on a connection.

Every store module is a set of plain functions `fn(conn, ...)`; the payment methods, the
channel adapters and the services only ever call `await store.run(fn, ...)`. That is the seam
a second engine fits: SQLite (`SqliteStore`, one writer, batched savepoints) for one VM, and
PostgreSQL for several `serve` instances, whose store would run each call in its own
transaction on a pooled connection. What a call may rely on, whatever the engine:

- `fn` runs atomically: all its writes commit together, or none do when it raises;
- SQL errors surface as `StoreError`; what `fn` raises itself comes back unchanged;
- a cancelled caller's `fn` may still have run and committed, so every `fn` is safe to find
  done (the conditional UPDATEs of fulfilment rely on this, not on locks held across calls);
- `read` runs a function that only reads on a connection of its own, so a deadline (the 10 s
  of Telegram's pre-checkout query) does not depend on how many writes are queued.

The functions are written against `sqlite3.Connection` today (`?` placeholders, `json_extract`,
`INSERT … ON CONFLICT`); porting them to PostgreSQL means changing the placeholders and the
JSON functions in `store/`, not the callers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

#: the connection every store function receives
Connection = sqlite3.Connection


class Store(Protocol):
    """A store the bot can run on (see the module docstring for the contract)."""

    async def run(
        self,
        fn: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`fn(conn, *args, **kwargs)` atomically; raises StoreError for the engine's errors."""
        ...

    async def read(
        self,
        fn: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`fn(conn, *args, **kwargs)` in one read-only transaction, never queued behind
        writes (for answers with a deadline); a cancelled caller returns at once. Raises
        StoreError for the engine's errors."""
        ...

    async def ping(self) -> bool:
        """True when the store answers a trivial query."""
        ...
