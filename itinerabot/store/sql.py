"""Small pieces of SQL the store modules share: placeholders for an `IN` list, so a set of
statuses is always bound as parameters (one value or many), never pasted into the text.
"""

from __future__ import annotations

from collections.abc import Collection


def marks(values: Collection[object]) -> str:
    """`?, ?, …`, one placeholder per value, for `IN (…)`: bind `values` alongside.

    Raises ValueError for no values (`IN ()` would match nothing, silently)."""
    if not values:
        raise ValueError("an IN list needs at least one value")
    return ", ".join("?" * len(values))
