"""UpdateWindow (adapters/telegram/window.py) against a plain model of what it promises: the
offset is the lowest update in hand (else the next one not yet seen), an update is committed
once below it or finished, and what `offset_after` says is what the offset becomes."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from itinerabot.adapters.telegram.window import UpdateWindow

Step = tuple[str, int]


class Model:
    """The window as plain sets: obviously right, and slow."""

    def __init__(self, offset: int) -> None:
        self.seen_to = offset
        self.in_hand: set[int] = set()
        self.parked: list[int] = []
        self.finished: set[int] = set()

    @property
    def offset(self) -> int:
        return min(self.in_hand | set(self.parked), default=self.seen_to)

    def admit(self, u: int, *, park: bool = False) -> bool:
        if u in self.in_hand or u in self.parked or u < self.offset:
            return False
        if park and self.parked and u < self.parked[-1]:
            return False  # (the long poll parks in the order Telegram sends)
        self.seen_to = max(self.seen_to, u + 1)
        if u in self.finished:
            return False
        (self.parked.append if park else self.in_hand.add)(u)
        return True

    def committed(self, u: int) -> bool:
        return u < self.offset or u in self.finished


steps = st.lists(
    st.tuples(
        st.sampled_from(["admit", "park", "unpark", "finish"]),
        st.integers(min_value=0, max_value=40),
    ),
    max_size=120,
)


@settings(max_examples=1000, deadline=None)
@given(steps)
# a parked update below the lowest in hand, which commits: the offset stays at the parked one
@example([("park", 0), ("admit", 1), ("admit", 2), ("finish", 1)])
def test_the_window_keeps_the_offset_and_what_is_committed_as_the_model_says(
    script: list[Step],
) -> None:
    window, model = UpdateWindow(0), Model(0)
    for action, u in script:
        if action == "admit":
            assert window.admit(u) == model.admit(u), (action, u)
        elif action == "park":
            if model.parked and u < model.parked[-1]:
                continue
            assert window.park(u) == model.admit(u, park=True), (action, u)
        elif action == "unpark":
            if model.parked:
                assert window.unpark() == model.parked[0]
                model.in_hand.add(model.parked.pop(0))
            assert window.parked == len(model.parked)
        elif u in model.in_hand:
            promised = window.offset_after(u)
            window.finish(u)
            model.in_hand.discard(u)
            model.finished.add(u)
            assert window.offset == promised == model.offset
        assert window.offset == model.offset
        assert window.in_hand == len(model.in_hand)
        assert all(window.committed(v) == model.committed(v) for v in range(45))
