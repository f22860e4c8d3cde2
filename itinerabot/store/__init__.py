"""The store: `Store` is what the bot asks of one (`interface`); `SqliteStore` serves it from
SQLite (one connection, one writer, batched in a worker thread)."""

from itinerabot.store.db import SqliteStore, open_store
from itinerabot.store.interface import Store

__all__ = ["SqliteStore", "Store", "open_store"]
