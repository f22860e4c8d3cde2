"""Telegram's deep links: `https://t.me/<bot>?start=<payload>` opens the chat with the bot
and sends it `/start <payload>`. Built with python-telegram-bot's own helper."""

from __future__ import annotations

from collections.abc import Callable

from telegram.helpers import create_deep_linked_url


def start_link(bot_username: str) -> Callable[[str], str]:
    """The deep-link maker of the bot `bot_username`: payload -> URL.

    The maker raises ValueError for a payload Telegram does not carry: empty, longer than 64
    characters, or with a character outside A-Z a-z 0-9 _ - (a real check, where an `assert`
    would vanish under `python -O`).
    """

    def link(payload: str) -> str:
        # the library's check is a `$`-anchored regex, which lets a trailing newline through,
        # and an empty payload would give a link with no payload at all
        if not payload or payload.endswith("\n"):
            raise ValueError(f"not a deep-link payload: {payload!r}")
        return create_deep_linked_url(bot_username, payload)

    return link
