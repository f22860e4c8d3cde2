"""The SQLite store: one SQLite connection in WAL mode, used from one worker thread at a time.

Every call runs a plain function `fn(conn, *args)` atomically in a worker thread
(`trio.to_thread.run_sync`), so a caller's writes commit together or not at all.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import trio

from itinerabot.errors import StoreConstraintError, StoreError
from itinerabot.store.schema import MIGRATIONS

#: seconds a read waits for a lock another connection holds (rare in WAL mode: a recovery, a
#: checkpoint's restart) before it fails: well within a pre-checkout check's 4 s
READ_BUSY_TIMEOUT = 1.0

#: SQLite instructions between looks at whether an abandoned read's caller is gone
PROGRESS_STEPS = 1000

P = ParamSpec("P")
T = TypeVar("T")


def connect(path: Path | str, *, migrate_schema: bool = True) -> sqlite3.Connection:
    """Open (and migrate) the database at `path` for use from any one thread at a time.

    With `migrate_schema=False` (the operator's commands, which may run beside an older or
    newer `serve`) nothing is migrated: a store whose schema is not exactly this program's
    raises StoreError instead.
    """
    try:
        conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before it returns, so a 200 to Stripe or a paid order
        # survives a power loss (NORMAL may lose the last commits in WAL mode)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        if migrate_schema:
            migrate(conn)
        else:
            check_schema(conn)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from exc
    return conn


def check_schema(conn: sqlite3.Connection) -> None:
    """Raise StoreError (with what to do) unless the store's schema is exactly this program's."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version != len(MIGRATIONS):
        raise StoreError(
            f"the store has schema version {version} and this program knows {len(MIGRATIONS)}:"
            " run this version's `itinerabot serve` once to migrate it (or use the matching"
            " itinerabot)"
        )


def migrate(conn: sqlite3.Connection) -> None:
    """Apply every migration the database has not seen, each in its own transaction.

    The version is read again inside each write transaction, so two processes starting at
    once never apply the same migration twice.
    """
    while True:
        conn.execute("BEGIN IMMEDIATE")
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > len(MIGRATIONS):
            conn.execute("ROLLBACK")
            raise StoreError(
                f"the store has schema version {version}, newer than this program knows"
                f" ({len(MIGRATIONS)}); refusing to touch it"
            )
        if version == len(MIGRATIONS):
            conn.execute("COMMIT")
            return
        number, script = version + 1, MIGRATIONS[version]
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _statements(script: str) -> list[str]:
    """The statements of a migration script, split where SQLite says a statement is complete:
    a `;` inside a string literal or a trigger's body does not end one."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";")[:-1]:
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if not _only_comments(pending.removesuffix(";")):
                statements.append(pending.strip())
            pending = ""
    rest = pending + script.split(";")[-1]
    if not _only_comments(rest):
        raise StoreError(f"a migration ends with an unfinished statement: {rest.strip()[:60]!r}")
    return statements


def _only_comments(s: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in s.splitlines())


@dataclass(eq=False, slots=True)
class _Job:
    """One caller's function, run as its own savepoint inside a batch's transaction."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    done: trio.Event = field(default_factory=trio.Event)
    result: Any = None
    error: BaseException | None = None


def _run_batch(conn: sqlite3.Connection, batch: list[_Job]) -> None:
    """Run every job in one transaction; a job that raises rolls back only its own work.

    If the transaction itself fails (BEGIN, a savepoint, COMMIT), every job gets the error:
    no caller ever sees a result that was not committed.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
        for job in batch:
            conn.execute("SAVEPOINT job")
            try:
                job.result = job.fn(conn, *job.args)
            except Exception as exc:
                conn.execute("ROLLBACK TO job")
                job.error = exc
            conn.execute("RELEASE job")
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        failure = exc if isinstance(exc, Exception) else StoreError("batch interrupted")
        for job in batch:
            job.result, job.error = None, failure
        if not isinstance(exc, Exception):
            raise


class SqliteStore:
    """The process's one handle on SQLite: one connection, one writer task, one thread at a time.

    Callers hand plain functions to `run`; the writer runs whatever has queued up meanwhile
    in one worker-thread hop and one transaction, each call in its own savepoint. A hop to a
    worker thread costs up to the interpreter's 5 ms switch interval when the event loop is
    busy, so one hop per call capped the whole bot near 200 store calls a second under load;
    batching makes that cost per burst instead of per call. Create it with `open_store`.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        max_batch: int = 256,
        reader: sqlite3.Connection | None = None,
    ) -> None:
        self._conn = conn
        self._max_batch = max_batch
        self._reader = reader
        self._reader_lock = threading.Lock()
        self._read_limiter = trio.CapacityLimiter(1)
        self._jobs_in, self._jobs_out = trio.open_memory_channel[_Job](math.inf)
        self.closed = False

    async def run(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `fn(conn, *args)` atomically (its own savepoint) in the writer's worker thread.

        Returns what `fn` returns, or raises what it raised (its writes rolled back).
        Raises StoreConstraintError when SQLite refused one of its writes (a constraint or a
        trigger: a bug in our data, which fails again if retried) and StoreError for other
        SQLite failures (busy, I/O: worth retrying). A cancelled caller's function may still
        have run and committed: every function given here must be safe to find done.
        """
        if self.closed:
            raise StoreError("the store is closed")
        job = _Job(partial(fn, **kwargs) if kwargs else fn, args)
        self._jobs_in.send_nowait(job)
        await job.done.wait()
        if job.error is not None:
            if isinstance(job.error, sqlite3.IntegrityError):
                raise StoreConstraintError(f"{fn.__name__}: {job.error}") from job.error
            if isinstance(job.error, sqlite3.Error):
                raise StoreError(f"{fn.__name__}: {job.error}") from job.error
            raise job.error
        return cast(T, job.result)

    async def read(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `fn(conn, *args)` in one read transaction on the reader connection, beside the
        writer's queue: a reader in WAL mode waits for no writer, so a burst of writes
        cannot hold up an answer that has a deadline. Reads take their own thread limiter
        (one at a time: one connection), never trio's default one that the writer and every
        other blocking call share. A cancelled caller returns at once and its statement is
        interrupted, so the next read and closing the store need not wait for it. Without a
        reader, this is `run`.

        Raises StoreError for SQLite failures (writing through this connection is one; so is
        a lock another connection holds longer than READ_BUSY_TIMEOUT).
        """
        if self._reader is None:
            return await self.run(fn, *args, **kwargs)

        def bound(conn: sqlite3.Connection) -> T:
            return fn(conn, *args, **kwargs)

        call = _Read(bound)
        try:
            result = await trio.to_thread.run_sync(
                _read,
                self._reader,
                self._reader_lock,
                call,
                abandon_on_cancel=True,
                limiter=self._read_limiter,
            )
        except trio.Cancelled:
            call.abandon(self._reader)
            raise
        except sqlite3.Error as exc:
            raise StoreError(f"{fn.__name__}: {exc}") from exc
        return cast(T, result)

    async def writer(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The writer task: runs queued calls in batches until the store is closed."""
        task_status.started()
        async with self._jobs_out:
            async for job in self._jobs_out:
                batch = [job]
                while len(batch) < self._max_batch:
                    try:
                        batch.append(self._jobs_out.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                try:
                    await trio.to_thread.run_sync(_run_batch, self._conn, batch)
                finally:
                    for done in batch:
                        done.done.set()

    async def ping(self) -> bool:
        """True when a trivial query succeeds."""
        try:
            await self.run(_ping)
        except StoreError:
            return False
        return True

    def close_queue(self) -> None:
        """Take no more calls; the writer finishes those queued and returns."""
        self.closed = True
        self._jobs_in.close()


@asynccontextmanager
async def open_store(
    path: Path | str, *, migrate_schema: bool = True
) -> AsyncIterator[SqliteStore]:
    """Open (and migrate) the store, run its writer, and close both on the way out.

    Raises StoreError if the database cannot be opened or has a newer schema (or, with
    `migrate_schema=False`, any schema but this program's).
    """
    conn = await trio.to_thread.run_sync(partial(connect, path, migrate_schema=migrate_schema))
    reader = await trio.to_thread.run_sync(_open_reader, path)
    store = SqliteStore(conn, reader=reader)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.writer, name="store writer")
            try:
                yield store
            finally:
                store.close_queue()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(conn.close)
            await trio.to_thread.run_sync(_close_reader, reader, store._reader_lock)


def _open_reader(path: Path | str) -> sqlite3.Connection:
    """A second connection for `SqliteStore.read`, which cannot write."""
    try:
        reader = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=READ_BUSY_TIMEOUT
        )
        reader.row_factory = sqlite3.Row
        reader.execute("PRAGMA query_only=ON")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from exc
    return reader


@dataclass(eq=False, slots=True)
class _Read:
    """One caller's read, which its caller may abandon while it runs in its thread."""

    fn: Callable[[sqlite3.Connection], Any]
    running: bool = False
    abandoned: bool = False
    #: held only to flip the flags: `interrupt` must reach this read's statements, never
    #: those of the read the next caller starts once this one is done
    flags: threading.Lock = field(default_factory=threading.Lock)

    def abandon(self, conn: sqlite3.Connection) -> None:
        """The caller is gone: interrupt the statement running for it, or skip it unstarted."""
        with self.flags:
            self.abandoned = True
            if self.running:
                conn.interrupt()


def _read(conn: sqlite3.Connection, lock: threading.Lock, call: _Read) -> Any:
    with lock:
        with call.flags:
            if call.abandoned:
                return None  # its caller has gone already
            call.running = True
        # `interrupt` misses a statement that starts after it: this stops those too
        conn.set_progress_handler(lambda: call.abandoned, PROGRESS_STEPS)
        try:
            if conn.in_transaction:  # an interrupted read's ROLLBACK failed too
                conn.execute("ROLLBACK")
            conn.execute("BEGIN")
            return call.fn(conn)
        finally:
            with call.flags:
                call.running = False  # from here on `abandon` interrupts nothing
            conn.set_progress_handler(None, 0)
            if conn.in_transaction:
                conn.execute("ROLLBACK")


def _close_reader(reader: sqlite3.Connection, lock: threading.Lock) -> None:
    with lock:  # a read abandoned by its caller may still be running
        reader.close()


def _ping(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1").fetchone()
