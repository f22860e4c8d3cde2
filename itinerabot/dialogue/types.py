"""What goes into and comes out of the pure dialogue: events, replies, actions, context.

The Telegram side translates updates into `Event`s and carries out `Reply`s and `Action`s;
the dialogue itself never touches a network, a clock or a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from itinerabot.i18n import Texts, english
from itinerabot.models import Itinerary, Order

# ---------------------------------------------------------------- events (Telegram → dialogue)


@dataclass(frozen=True, slots=True)
class TextMessage:
    """Plain text typed by the traveller (not a command)."""

    text: str


@dataclass(frozen=True, slots=True)
class CommandMessage:
    """`/name arg` typed by the traveller; `name` is lower case without the slash or @bot."""

    name: str
    arg: str = ""


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """An inline button was pressed. Every press must be answered with `AnswerCallback`."""

    data: str
    callback_id: str
    message_id: int | None


@dataclass(frozen=True, slots=True)
class OtherMessage:
    """A photo, sticker, voice note, location… `kind` says which."""

    kind: str


Event = TextMessage | CommandMessage | ButtonPress | OtherMessage

# ---------------------------------------------------------------- replies (dialogue → Telegram)


@dataclass(frozen=True, slots=True)
class InlineButton:
    """One inline keyboard button: callback `data` (≤ 64 bytes) or a `url`."""

    text: str
    data: str | None = None
    url: str | None = None


Keyboard = tuple[tuple[InlineButton, ...], ...]


@dataclass(frozen=True, slots=True)
class SendText:
    """A message to the chat, ≤ 4096 characters, plain text (no parse mode)."""

    text: str
    keyboard: Keyboard = ()


@dataclass(frozen=True, slots=True)
class RemoveButtons:
    """Take the inline keyboard off an earlier message of ours (one whose step is done)."""

    message_id: int


@dataclass(frozen=True, slots=True)
class AnswerCallback:
    """Answer a button press (stops the spinner); `text` shows as a short notice (≤ 200 chars)."""

    callback_id: str
    text: str | None = None


Reply = SendText | RemoveButtons | AnswerCallback

# ---------------------------------------------------------------- actions (need I/O beyond replies)


@dataclass(frozen=True, slots=True)
class CreateOrder:
    """Store a new order for this chat from the finished draft, with `ctx.new_reference`."""

    reference: str
    itinerary: Itinerary
    quantity: int = 1  # how many times the price it costs (its travellers, priced per traveller)


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Drop an order that is still awaiting payment (never a paid one)."""

    reference: str


@dataclass(frozen=True, slots=True)
class PayByCard:
    """Create (or reuse) the Stripe Checkout Session of this order and send its URL button."""

    reference: str


@dataclass(frozen=True, slots=True)
class PayWithUsdc:
    """Create (or reuse) the Circle payment intent of this order and start its poller."""

    reference: str


@dataclass(frozen=True, slots=True)
class PayWithStars:
    """Send a Telegram Stars invoice for this order."""

    reference: str


@dataclass(frozen=True, slots=True)
class ResendDocument:
    """Send the PDF of this paid order again."""

    reference: str


@dataclass(frozen=True, slots=True)
class DeepLinkReturn:
    """`/start <payload>` with a payload: the traveller came back from a payment page."""

    payload: str


@dataclass(frozen=True, slots=True)
class ChooseLanguage:
    """The traveller picked the language `code` (one of `i18n.LANGUAGES`): remember it."""

    code: str


Action = (
    CreateOrder
    | CancelOrder
    | PayByCard
    | PayWithUsdc
    | PayWithStars
    | ResendDocument
    | DeepLinkReturn
    | ChooseLanguage
)

# ---------------------------------------------------------------- context and outcome


@dataclass(frozen=True, slots=True)
class TripRules:
    """What one itinerary may hold (the shop's `trips` settings)."""

    max_flights: int = 16
    max_travellers: int = 9
    min_connection: timedelta = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class Context:
    """What the dialogue may know of the world, handed in by the caller."""

    now: datetime  # aware, UTC
    price: Decimal
    currency: str
    new_reference: str  # use it if this step creates an order
    orders: tuple[Order, ...] = ()  # this chat's orders, newest first
    card_enabled: bool = True
    usdc_enabled: bool = True
    stars_price: int | None = None  # the price in Telegram Stars when they are offered
    per_traveller: bool = False  # the prices are for each traveller, not for the document
    trips: TripRules = TripRules()
    texts: Texts = field(default_factory=english)  # the chat's language


@dataclass(frozen=True, slots=True)
class Outcome:
    state: str  # the new dialogue state, serialised (JSON text), stored as is
    replies: tuple[Reply, ...] = ()
    actions: tuple[Action, ...] = field(default=())
    #: the step left the question it stood at (so that question's buttons are done)
    moved_on: bool = False
