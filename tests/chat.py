"""A pure dialogue chat for tests: feeds events to `step`, keeps the state, finds buttons; and
the walks from /start to the summary that tests share."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

from itinerabot.dialogue import current_question, step
from itinerabot.dialogue.types import (
    Action,
    ButtonPress,
    CommandMessage,
    Context,
    CreateOrder,
    Event,
    Outcome,
    SendText,
    TextMessage,
)
from itinerabot.models import Itinerary, Order, OrderStatus

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
STALE = "That step is already done."


def make_context(**changes: object) -> Context:
    ctx = Context(now=NOW, price=Decimal("10.00"), currency="USD", new_reference="IB-7K3Q9P")
    return dataclasses.replace(ctx, **changes)  # type: ignore[arg-type]


class Chat:
    """One chat: feeds events to `step`, keeps the state, remembers the last outcome."""

    def __init__(self, ctx: Context | None = None) -> None:
        self.ctx = ctx or make_context()
        self.state: str | None = None
        self.last = Outcome(state="")
        self.message_id = 100
        self.presses = 0

    def feed(self, event: Event) -> Outcome:
        self.last = step(self.state, event, self.ctx)
        self.state = self.last.state
        return self.last

    def text(self, text: str) -> Outcome:
        return self.feed(TextMessage(text))

    def command(self, name: str, arg: str = "") -> Outcome:
        return self.feed(CommandMessage(name, arg))

    def press(self, data: str, message_id: int | None = 7) -> Outcome:
        self.presses += 1
        return self.feed(ButtonPress(data, f"cb{self.presses}", message_id))

    def button(self, label_part: str, outcome: Outcome | None = None) -> str:
        """The callback data of the button whose label contains `label_part`."""
        for message in sent(outcome or self.last):
            for row in message.keyboard:
                for button in row:
                    if label_part in button.text and button.data:
                        return button.data
        raise AssertionError(f"no button {label_part!r} in {outcome or self.last}")

    @property
    def at(self) -> str | None:
        return current_question(self.state)

    def orders(self, *orders: Order) -> None:
        self.ctx = dataclasses.replace(self.ctx, orders=orders)


def sent(outcome: Outcome) -> list[SendText]:
    return [r for r in outcome.replies if isinstance(r, SendText)]


def said(outcome: Outcome) -> str:
    return "\n".join(m.text for m in sent(outcome))


def actions(outcome: Outcome, kind: type[Action]) -> list[Action]:
    return [a for a in outcome.actions if isinstance(a, kind)]


def make_order(reference: str, itinerary: Itinerary, status: OrderStatus) -> Order:
    return Order(1, reference, 42, itinerary, Decimal("10.00"), "USD", status, NOW)


ONE_WAY = [
    "/start",
    "Jane Mary Doe",
    "no",  # no other traveller
    "FRA",
    "JFK",
    "lh400",
    "24.12.2026",
    "13:15",
    "16:05",
    "done",  # no more flights
]
RETURN = [
    *ONE_WAY[:-1],
    "next leg",
    "JFK",
    "FRA",
    "LH 401",
    "2027-01-02",
    "17:50",
    "07:35",
    "done",
]


def walk(chat: Chat, answers: list[str]) -> Outcome:
    for answer in answers:
        if answer == "/start":
            chat.command("start")
        else:
            chat.text(answer)
    return chat.last


def created(outcome: Outcome) -> CreateOrder:
    (order,) = actions(outcome, CreateOrder)
    assert isinstance(order, CreateOrder)
    return order
