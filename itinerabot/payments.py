"""Wiring of the payment methods into a running `serve`: webhook routes, chat actions,
and the pollers resumed at start-up. Each payment module stays unaware of the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from itinerabot.bot.handler import NoPayments, PaymentActions

if TYPE_CHECKING:
    from itinerabot.runtime import Runtime


async def wire(**kwargs: Any) -> PaymentActions:
    """Build the payment actions for the enabled methods and register their routes."""
    return NoPayments()


async def resume(rt: Runtime) -> None:
    """Bring back what was in flight when the process last stopped."""
