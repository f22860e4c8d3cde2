"""The SQLite store: one connection, one writer, run in a worker thread."""

from itinerabot.store.db import Store, open_store

__all__ = ["Store", "open_store"]
