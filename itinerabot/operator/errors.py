"""Why an operator command did nothing: one sentence the command prints as it is."""

from __future__ import annotations

from itinerabot.errors import ItinerabotError


class Refused(ItinerabotError):
    """The command cannot do what was asked (unknown order, unpaid, too much, …); the message
    says why and, where there is one, what to type instead."""


class UnknownOrder(Refused):
    """No order has the reference given."""

    def __init__(self, reference: str) -> None:
        super().__init__(f"no order {reference}")
        self.reference = reference
