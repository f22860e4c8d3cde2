"""RequestBudget's two lanes on trio's mock clock: a traveller's request starts ahead of queued
routine ones, FIFO within a lane, and routine keeps a share when both lanes are busy.
"""

from __future__ import annotations

import trio
import trio.testing

from itinerabot.adapters.circle.budget import TRAVELLER_RUN, Lane, RequestBudget

T, R = Lane.TRAVELLER, Lane.ROUTINE


class Starts:
    """Records (name, lane, trio time) of each start through `budget`."""

    def __init__(self, budget: RequestBudget) -> None:
        self.budget = budget
        self.log: list[tuple[str, Lane, float]] = []

    async def one(self, name: str, lane: Lane, hold: float = 0.0) -> None:
        async with self.budget.slot(lane):
            self.log.append((name, lane, trio.current_time()))
            await trio.sleep(hold)

    async def arrive(self, nursery: trio.Nursery, name: str, lane: Lane, hold: float = 0.0) -> None:
        """Start a request and let it queue before the next one arrives (trio would
        otherwise start tasks of one batch in any order)."""
        nursery.start_soon(self.one, name, lane, hold)
        await trio.testing.wait_all_tasks_blocked()


async def test_a_traveller_starts_before_routine_requests_queued_earlier(
    autojump_clock: trio.abc.Clock,
) -> None:
    starts = Starts(RequestBudget(rate_per_second=1, max_concurrent=10))
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for i in range(5):
                await starts.arrive(nursery, f"r{i}", R)
            assert starts.budget.waiting(R) == 4
            await trio.sleep(0.5)
            await starts.arrive(nursery, "t0", T)
            await starts.arrive(nursery, "t1", T)
    assert [(name, when) for name, _, when in starts.log] == [
        ("r0", 0.0),
        ("t0", 1.0),  # the next start after it arrived, not after the four queued before it
        ("t1", 2.0),
        ("r1", 3.0),  # then routine, in the order it came
        ("r2", 4.0),
        ("r3", 5.0),
        ("r4", 6.0),
    ]


async def test_routine_keeps_one_start_in_ten_while_travellers_queue(
    autojump_clock: trio.abc.Clock,
) -> None:
    starts = Starts(RequestBudget(rate_per_second=10, max_concurrent=100))
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for name, lane in [(f"r{i}", R) for i in range(4)] + [(f"t{i}", T) for i in range(25)]:
                await starts.arrive(nursery, name, lane)
    lanes = [lane for _, lane, _ in starts.log]
    run = [T] * TRAVELLER_RUN
    # r0 found the budget idle; then at most nine travellers in a row while routine waits
    assert lanes == [R, *run, R, *run, R, *[T] * 7, R]
    assert [when for _, _, when in starts.log] == [n / 10 for n in range(29)]
    assert [name for name, lane, _ in starts.log if lane is R] == ["r0", "r1", "r2", "r3"]


async def test_a_slot_freed_goes_to_the_traveller_first(autojump_clock: trio.abc.Clock) -> None:
    # one connection: the routine request queued first still waits for the traveller's
    starts = Starts(RequestBudget(rate_per_second=1000, max_concurrent=1))
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await starts.arrive(nursery, "r0", R, hold=2)
            await starts.arrive(nursery, "r1", R, hold=2)
            await trio.sleep(1)
            await starts.arrive(nursery, "t0", T, hold=2)
    assert [(name, when) for name, _, when in starts.log] == [
        ("r0", 0.0),
        ("t0", 2.0),
        ("r1", 4.0),
    ]


async def test_a_cancelled_traveller_leaves_its_start_to_routine(
    autojump_clock: trio.abc.Clock,
) -> None:
    starts = Starts(RequestBudget(rate_per_second=1, max_concurrent=10))
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await starts.arrive(nursery, "r0", R)
            await starts.arrive(nursery, "r1", R)
            with trio.move_on_after(0.5):
                await starts.one("cancelled", T)
            assert starts.budget.waiting(T) == 0
    assert [(name, when) for name, _, when in starts.log] == [("r0", 0.0), ("r1", 1.0)]


async def test_a_pause_holds_both_lanes_and_travellers_go_first_after_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    starts = Starts(RequestBudget(rate_per_second=2, max_concurrent=10))
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            starts.budget.pause_until(10.0)  # as after a 429 with Retry-After: 10
            for i in range(3):
                await starts.arrive(nursery, f"r{i}", R)
            await trio.sleep(5)
            await starts.arrive(nursery, "t0", T)
    assert [(name, when) for name, _, when in starts.log] == [
        ("t0", 10.0),
        ("r0", 10.5),
        ("r1", 11.0),
        ("r2", 11.5),
    ]
