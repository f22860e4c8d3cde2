"""Shared fixtures.

`autojump_clock` is overridden: trio's default jumps the instant the run loop is idle, and
the loop is also idle while a worker thread runs a SQLite transaction or renders a PDF, so
time would leap mid-transaction. Waiting for 20 ms of real idleness first keeps trio time
exact for code that uses threads, at a small cost in real time per jump.
"""

from __future__ import annotations

import pytest
import trio.testing


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0.02)
