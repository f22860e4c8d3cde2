"""Airline names by IATA designator ("LH" → "Lufthansa").

Placeholder until the airline data lands: knows no airline, so every code counts as unknown.
"""

from __future__ import annotations


def airline_name(code: str) -> str | None:
    """The airline whose IATA designator is `code` (two characters), or None when unknown."""
    return None
