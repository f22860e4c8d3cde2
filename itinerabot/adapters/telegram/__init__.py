"""The Telegram side: the Bot API adapter, the long-poll loop, update handling, the sender."""

import os

# Opt in to python-telegram-bot's coming API (durations as timedelta) and its warnings off.
os.environ.setdefault("PTB_TIMEDELTA", "1")
