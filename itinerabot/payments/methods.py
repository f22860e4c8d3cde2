"""The payment methods as a chat sees them: what a tap on "Pay" does, whichever are enabled.

A channel adapter calls these with the chat's `Texts`; each returns the messages to queue for
the chat in the update's own transaction. A method that is not enabled answers with a sentence
saying so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from itinerabot.i18n import N_, Texts, english
from itinerabot.messages import Message, Text

if TYPE_CHECKING:
    from itinerabot.payments.card.checkout import CardPayments
    from itinerabot.payments.usdc.usdc import UsdcPayments

#: a long-running task of a payment method: `await nursery.start(service)`, reports started()
Service = Callable[..., Awaitable[None]]

CARD_OFF = N_("Card payments are not available right now.")
USDC_OFF = N_("USDC payments are not available right now.")


class PaymentActions(Protocol):
    """What the payment methods do for the chat. Each returns messages to queue, said in
    `texts` (English if None)."""

    async def pay_by_card(
        self, chat_id: int, reference: str, texts: Texts | None = None
    ) -> Sequence[Message]: ...

    async def pay_with_usdc(
        self, chat_id: int, reference: str, texts: Texts | None = None
    ) -> Sequence[Message]: ...

    async def deep_link_return(
        self, chat_id: int, payload: str, texts: Texts | None = None
    ) -> Sequence[Message]: ...


@dataclass
class Payments:
    """The enabled payment methods (None: not enabled) and the services they need."""

    card: CardPayments | None = None
    usdc: UsdcPayments | None = None
    #: (name, task) of each background service the methods need, started in the root nursery
    services: list[tuple[str, Service]] = field(default_factory=list)

    async def pay_by_card(
        self, chat_id: int, reference: str, texts: Texts | None = None
    ) -> Sequence[Message]:
        if self.card is None:
            return [Text((texts or english()).gettext(CARD_OFF))]
        return await self.card.pay_by_card(chat_id, reference, texts)

    async def pay_with_usdc(
        self, chat_id: int, reference: str, texts: Texts | None = None
    ) -> Sequence[Message]:
        if self.usdc is None:
            return [Text((texts or english()).gettext(USDC_OFF))]
        return await self.usdc.pay_with_usdc(chat_id, reference, texts)

    async def deep_link_return(
        self, chat_id: int, payload: str, texts: Texts | None = None
    ) -> Sequence[Message]:
        if self.card is None:
            return []
        return await self.card.deep_link_return(chat_id, payload, texts)

    async def resume(self) -> None:
        """Bring back the pollers of intents still in their window when the process last
        stopped (the late watcher, a service, takes the others in its first round)."""
        if self.usdc is not None:
            await self.usdc.resume()
