"""Structured logs: key=value or JSON, and no secret in any line whatever a library logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from itinerabot.logs import setup_logging

TOKEN = "123456789:AAsecretTokenPartThatMustNotLeak00"
KEY = "sk_test_do_not_print_me"


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root")
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_are_masked_everywhere(fmt: str) -> None:
    out = io.StringIO()
    setup_logging(level="DEBUG", fmt=fmt, secrets=[TOKEN, KEY], stream=out)
    log = logging.getLogger("itinerabot.test")
    log.info("calling https://api.telegram.org/bot%s/getMe", TOKEN)
    log.warning("stripe said no", extra={"key": KEY, "order": "IB-7K3Q9P"})
    log.info("a token of another bot: https://x/bot987:ABCdef_ghi-123/sendMessage")
    try:
        raise RuntimeError(f"failed with {KEY}")
    except RuntimeError:
        log.exception("boom")
    text = out.getvalue()
    assert TOKEN not in text and KEY not in text and "ABCdef_ghi-123" not in text
    assert "IB-7K3Q9P" in text and "***" in text
    if fmt == "json":
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        assert lines[1]["order"] == "IB-7K3Q9P" and lines[1]["level"] == "WARNING"
    else:
        assert "order=IB-7K3Q9P" in text


@pytest.mark.usefixtures("restore_root")
def test_httpx_request_lines_are_not_logged_at_info() -> None:
    out = io.StringIO()
    setup_logging(level="INFO", secrets=[TOKEN], stream=out)
    logging.getLogger("httpx").info("HTTP Request: POST https://api.telegram.org/bot%s/x", TOKEN)
    assert out.getvalue() == ""


def _logfmt_pairs(line: str) -> dict[str, str]:
    """The key=value pairs of a logfmt line, as a logfmt parser reads them (quoted values
    are JSON strings); bare words that are not pairs are skipped."""
    pairs: dict[str, str] = {}
    rest = line
    decoder = json.JSONDecoder()
    while rest:
        rest = rest.lstrip(" ")
        word_end = min((i for i in (rest.find(" "), rest.find("=")) if i >= 0), default=len(rest))
        if word_end < len(rest) and rest[word_end] == "=":
            key, rest = rest[:word_end], rest[word_end + 1 :]
            if rest.startswith('"'):
                value, end = decoder.raw_decode(rest)
                rest = rest[end:]
            else:
                value, _, rest = rest.partition(" ")
            pairs[key] = value
        else:
            rest = rest[word_end:]
    return pairs


@pytest.mark.usefixtures("restore_root")
def test_text_lines_are_logfmt_with_the_message_always_quoted() -> None:
    out = io.StringIO()
    setup_logging(level="INFO", fmt="text", stream=out)
    log = logging.getLogger("itinerabot.test")
    log.warning("sender paused for a chat", extra={"chat": 42, "error": "disk I/O error"})
    log.info("ready")
    log.info('a message that says error=none and "quotes"\nover two lines', extra={"k": "a\tb"})
    lines = out.getvalue().splitlines()
    assert len(lines) == 3  # a newline in a message does not start a new line
    first = lines[0].split(" ", 3)
    assert first[1:3] == ["WARNING", "itinerabot.test"]
    assert first[3].startswith('msg="sender paused for a chat" ')
    assert _logfmt_pairs(lines[0]) == {
        "msg": "sender paused for a chat",
        "chat": "42",
        "error": "disk I/O error",
    }
    assert _logfmt_pairs(lines[1]) == {"msg": "ready"}
    assert ' msg="ready"' in lines[1]
    # the message's words are never read as keys of their own
    assert _logfmt_pairs(lines[2]) == {
        "msg": 'a message that says error=none and "quotes"\nover two lines',
        "k": "a\tb",
    }
