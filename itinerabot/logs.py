"""Structured logging: logfmt lines for a terminal or one JSON object per line.

A text line is `<time> <LEVEL> <logger> msg="<message>" key=value …`: the message is always
quoted, so a logfmt parser does not read its words as keys.

Every record passes a redactor that replaces each configured secret (and any Telegram bot
token in a URL) with `***`, so a secret never reaches a log line whatever a library logs.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

_BOT_TOKEN_IN_URL = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class Redactor(logging.Filter):
    """Masks secrets in the message, its arguments and every extra field of a record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        longest_first = sorted({s for s in secrets if s}, key=len, reverse=True)
        # one pass over each text, whatever the number of secrets (it runs on every record)
        self._pattern = re.compile(
            "|".join([_BOT_TOKEN_IN_URL.pattern, *map(re.escape, longest_first)])
        )

    def _mask(self, match: re.Match[str]) -> str:
        return "/bot***" if match.group().startswith("/bot") else "***"

    def scrub(self, text: str) -> str:
        return self._pattern.sub(self._mask, text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.scrub(value))
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


def _quote(value: Any) -> str:
    """The value as is when it is one printable word, else a double-quoted JSON string."""
    text = str(value)
    if text == "" or not text.isprintable() or any(c.isspace() or c in '="' for c in text):
        return json.dumps(text)
    return text


class KeyValueFormatter(logging.Formatter):
    """`2026-11-26T10:00:00.00Z INFO itinerabot.poller msg="payment confirmed" order=IB-7K3Q9P`"""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        message = f"msg={json.dumps(record.getMessage())}"
        parts = [ts[:-4] + "Z", record.levelname, record.name, message]
        parts += [f"{k}={_quote(v)}" for k, v in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        obj.update(
            {
                k: v if isinstance(v, int | float | bool) else str(v)
                for k, v in _fields(record).items()
            }
        )
        if record.exc_text:
            obj["exc"] = record.exc_text
        return json.dumps(obj, ensure_ascii=False)


def setup_logging(
    *,
    level: str = "INFO",
    fmt: str = "text",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Install one handler on the root logger with the redactor; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(Redactor(secrets))
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_itinerabot", False):
            root.removeHandler(old)
    handler._itinerabot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL at INFO, and the Bot API URL holds the token.
    for noisy in ("httpx", "httpcore", "hpack", "telegram", "hypercorn.access", "stripe"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler
