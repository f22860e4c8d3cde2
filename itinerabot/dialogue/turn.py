"""One turn of the dialogue in the making: the draft it edits and what it says and asks done.

Also the buttons a turn puts under its messages, kept within what Telegram accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from itinerabot.dialogue import texts
from itinerabot.dialogue.draft import Draft
from itinerabot.dialogue.types import Action, Context, InlineButton, Keyboard, Reply, SendText
from itinerabot.i18n import Texts
from itinerabot.models import Airport, Order

MAX_CALLBACK_DATA = 64  # bytes, Telegram's limit
MAX_BUTTONS = 100


@dataclass
class Turn:
    """The draft as this turn leaves it, and the replies and actions it has collected so far."""

    draft: Draft
    ctx: Context
    replies: list[Reply] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    @property
    def t(self) -> Texts:
        """The sentences in the chat's language."""
        return self.ctx.texts

    def say(self, text: str, keyboard: Sequence[Sequence[InlineButton]] = ()) -> None:
        """Send `text` (clipped to Telegram's limit) with the buttons of `keyboard` that fit."""
        self.replies.append(SendText(texts.clip(text), _keyboard(keyboard)))


def _keyboard(rows: Sequence[Sequence[InlineButton]]) -> Keyboard:
    """Rows without any button Telegram would refuse, and at most `MAX_BUTTONS` buttons."""
    kept: list[tuple[InlineButton, ...]] = []
    budget = MAX_BUTTONS
    for row in rows:
        fit = [b for b in row if b.data is None or len(b.data.encode()) <= MAX_CALLBACK_DATA]
        if fit[:budget]:
            kept.append(tuple(fit[:budget]))
            budget -= len(kept[-1])
    return tuple(kept)


def step_button(draft: Draft, label: str, kind: str, value: str = "") -> InlineButton:
    """A button of the draft's current step; it turns stale once the draft moves on."""
    data = f"{draft.seq}:{kind}" + (f":{value}" if value else "")
    return InlineButton(label, data=data)


def airport_button(draft: Draft, airport: Airport) -> InlineButton:
    """A step button that answers the current airport question with `airport`."""
    return step_button(draft, texts.airport_button(airport), "ap", airport.iata)


def find_order(ctx: Context, reference: str | None) -> Order | None:
    """The chat's order with this reference, if the context holds it."""
    return next((o for o in ctx.orders if o.reference == reference), None)
