"""Time the pure dialogue's `step` on the largest trip: 9 travellers and 16 flights.

Run from the repository root: `.venv/bin/python bench/bench_dialogue.py --n 20`. Each round walks
the whole trip from /start to the summary (every answer typed, then "done"), so every step loads
the stored draft, checks every answer against the ones before it and writes the draft back. The
first round is untimed (it builds the airport index and loads the airline data).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, not installed

from itinerabot.dialogue import current_question, step
from itinerabot.dialogue.types import CommandMessage, Context, Event, TextMessage

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def largest_trip() -> list[Event]:
    """9 travellers, then 16 flights between Frankfurt and Doha, one leg a day, then done."""
    events: list[Event] = [CommandMessage("start"), TextMessage("Jane Doe")]
    for n in range(8):
        events += [TextMessage("add"), TextMessage(f"John {'ABCDEFGH'[n]}doe")]
    events.append(TextMessage("no"))
    for k in range(16):
        if k:
            events.append(TextMessage("next leg"))
        day = (datetime(2026, 7, 1) + timedelta(days=k)).strftime("%d %b %Y")
        events += [
            TextMessage(("FRA", "DOH")[k % 2]),
            TextMessage(("DOH", "FRA")[k % 2]),
            TextMessage(f"QR {100 + k}"),
            TextMessage(day),
            TextMessage("08:00"),
            TextMessage("15:00"),
        ]
    events.append(TextMessage("done"))
    return events


def walk(events: list[Event], ctx: Context) -> tuple[list[float], int]:
    """Seconds each step took, and the size of the last state, in bytes."""
    state: str | None = None
    took: list[float] = []
    for event in events:
        start = time.perf_counter()
        state = step(state, event, ctx).state
        took.append(time.perf_counter() - start)
    if state is None or current_question(state) != "summary":
        raise SystemExit(f"the walk did not reach the summary: {current_question(state)}")
    return took, len(state.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="timed rounds")
    args = parser.parse_args()
    ctx = Context(now=NOW, price=Decimal("10.00"), currency="USD", new_reference="IB-7K3Q9P")
    events = largest_trip()
    walk(events, ctx)  # untimed: index and data loads
    took: list[float] = []
    for _ in range(args.n):
        round_took, size = walk(events, ctx)
        took += round_took
    ms = sorted(t * 1000 for t in took)
    print(f"steps:    {len(events)} per round, {args.n} rounds")
    print(f"step ms:  median {statistics.median(ms):.2f}, p99 {ms[int(len(ms) * 0.99)]:.2f},")
    print(f"          max {ms[-1]:.2f}")
    print(f"state:    {size} bytes at the summary")


if __name__ == "__main__":
    main()
