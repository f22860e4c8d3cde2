"""Telegram deep links for the Checkout return: the library's URL, and a payload Telegram
cannot carry refused with ValueError, under `python -O` too."""

from __future__ import annotations

import subprocess
import sys

import pytest

from itinerabot.adapters.telegram.links import start_link


def test_a_return_payload_becomes_telegrams_start_link() -> None:
    link = start_link("itinerabot_sandbox_bot")
    assert link("ok_IB-7K3Q9P") == "https://t.me/itinerabot_sandbox_bot?start=ok_IB-7K3Q9P"
    assert link("x" * 64).endswith("?start=" + "x" * 64)


@pytest.mark.parametrize("payload", ["", "x" * 65, "ok IB-7K3Q9P", "ok_IB-7K3Q9P\n", "ok_ü", "a=b"])
def test_a_payload_telegram_cannot_carry_is_refused(payload: str) -> None:
    with pytest.raises(ValueError):
        start_link("itinerabot_sandbox_bot")(payload)


@pytest.mark.process
def test_the_refusal_survives_python_dash_o() -> None:
    code = (
        "from itinerabot.adapters.telegram.links import start_link\n"
        "try:\n    start_link('itinerabot_sandbox_bot')('bad payload')\n"
        "except ValueError:\n    print('refused')\n"
    )
    run = subprocess.run(
        [sys.executable, "-O", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert run.stdout.strip() == "refused", run.stderr
