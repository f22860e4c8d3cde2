"""itinerabot: a Telegram bot that sells PDF flight itineraries, paid in Telegram Stars, by card
or in USDC."""

__version__ = "0.1.0"
