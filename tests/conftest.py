"""Shared fixtures.

`autojump_clock` is overridden: trio's jumps the instant the run loop is idle, and the loop
is also idle while a worker thread runs a SQLite transaction or renders a PDF, so trio time
would leap mid-transaction. This one stands still while the run waits for a worker thread
(`StillWhileThreadsWork` in harness.py), and jumps the instant the run is idle otherwise.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tests.harness import AUTOJUMP_THRESHOLD, StillWhileThreadsWork


@pytest.fixture
def autojump_clock(monkeypatch: pytest.MonkeyPatch) -> trio.testing.MockClock:
    clock = trio.testing.MockClock(autojump_threshold=AUTOJUMP_THRESHOLD)
    monkeypatch.setattr(trio.to_thread, "run_sync", StillWhileThreadsWork(clock).run_sync)
    return clock
