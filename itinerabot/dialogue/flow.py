"""The dialogue as a pure function: (state, event, context) → (new state, replies, actions).

`step` reads the stored draft, hands the event to its handler and writes the draft back.
"""

from __future__ import annotations

import logging

from itinerabot.dialogue import texts
from itinerabot.dialogue.answers import on_text
from itinerabot.dialogue.buttons import on_press
from itinerabot.dialogue.commands import on_command
from itinerabot.dialogue.draft import Draft
from itinerabot.dialogue.prompts import hint
from itinerabot.dialogue.turn import Turn
from itinerabot.dialogue.types import (
    AnswerCallback,
    ButtonPress,
    CommandMessage,
    Context,
    Event,
    OtherMessage,
    Outcome,
    Reply,
    SendText,
    TextMessage,
)

__all__ = ["Draft", "step"]

log = logging.getLogger(__name__)


def step(state: str | None, event: Event, ctx: Context) -> Outcome:
    """Advance the chat's dialogue by one event. Never raises.

    `state` is what the previous step returned (None or anything unreadable starts afresh).
    """
    try:
        return _step(state, event, ctx)
    except Exception:
        log.exception("dialogue step failed on %r", event)
        replies: list[Reply] = []
        if isinstance(event, ButtonPress):
            replies.append(AnswerCallback(event.callback_id))
        replies.append(SendText(ctx.texts.gettext(texts.INTERNAL_ERROR)))
        return Outcome(Draft(seq=_fresh_seq(ctx) + 1).dumps(), tuple(replies), moved_on=True)


def _fresh_seq(ctx: Context) -> int:
    # A chat whose state was lost must not reuse the tokens on its old buttons.
    return max(0, int(ctx.now.timestamp()))


def _step(state: str | None, event: Event, ctx: Context) -> Outcome:
    try:
        draft = Draft.loads(state) if state else Draft(seq=_fresh_seq(ctx))
        unchanged = state if state else draft.dumps()
    except Exception:
        log.warning("dropping an unreadable dialogue state")
        draft = Draft(seq=_fresh_seq(ctx))
        unchanged = draft.dumps()
    turn = Turn(draft.copy(), ctx)
    if isinstance(event, ButtonPress):
        stale = on_press(turn, event)
        if stale:
            return Outcome(unchanged, (AnswerCallback(event.callback_id, stale),))
    elif isinstance(event, CommandMessage):
        on_command(turn, event)
    elif isinstance(event, TextMessage):
        on_text(turn, event.text)
    elif isinstance(event, OtherMessage):
        turn.say(texts.not_text(turn.t, event.kind, hint(turn.t, turn.draft)))
    new_state = unchanged if turn.draft == draft else turn.draft.dumps()
    moved_on = turn.draft.at != draft.at
    return Outcome(new_state, tuple(turn.replies), tuple(turn.actions), moved_on)
