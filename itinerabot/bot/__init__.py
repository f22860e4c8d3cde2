"""The Telegram side: the Bot API adapter, the long-poll loop, update handling, the sender."""
