"""The pure dialogue: from /start to an order ready to pay, in the chat's language.

`step(state, event, ctx)` is all the Telegram side calls; the state is JSON text kept in the store.
"""

from itinerabot.dialogue.draft import (
    SCHEMA_VERSION,
    current_question,
    initial_state,
    order_reference,
)
from itinerabot.dialogue.flow import step
from itinerabot.dialogue.texts import COMMANDS

__all__ = [
    "COMMANDS",
    "SCHEMA_VERSION",
    "current_question",
    "initial_state",
    "order_reference",
    "step",
]
