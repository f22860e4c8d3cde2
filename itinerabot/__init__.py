"""itinerabot: a Telegram bot that sells PDF flight itineraries, paid by card or in USDC."""

__version__ = "0.1.0"
