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
