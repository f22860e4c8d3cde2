"""The SQLite store: one connection, one writer, run in a worker thread."""

from itinerabot.store.db import Store

__all__ = ["Store"]
