"""`itinerabot serve` as a real process against the sandbox Bot API on loopback."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
import trio

from sandbox.process import ServeProcess, write_config
from sandbox.serve import serve_app, wait_for
from sandbox.telegram import DEFAULT_TOKEN, FakeBotApi
from tests.harness import CHAT

pytestmark = pytest.mark.process

SECRETS = {
    "stripe_key": "sk_test_process_secret_123",
    "whsec": "whsec_process_secret_456",
    "circle": "SAND_API_KEY:process:secret789",
}


def _config(
    tmp_path: Path, api_base: str, token: str = DEFAULT_TOKEN, level: str = "DEBUG"
) -> Path:
    return write_config(
        tmp_path / "config.yaml",
        telegram={"token": token, "api_base": api_base},
        server={"host": "127.0.0.1", "port": 0},
        store={"path": str(tmp_path / "bot.sqlite3")},
        stripe={
            "secret_key": SECRETS["stripe_key"],
            "webhook_secret": SECRETS["whsec"],
            "api_base": "http://127.0.0.1:9",
        },
        circle={"api_key": SECRETS["circle"], "base_url": "http://127.0.0.1:9"},
        logging={"level": level},
    )


async def test_sigterm_exits_zero_promptly_and_secrets_stay_out_of_logs(tmp_path: Path) -> None:
    api = FakeBotApi()
    async with trio.open_nursery() as nursery:
        base = await nursery.start(serve_app, api)
        proc: ServeProcess = await nursery.start(ServeProcess(_config(tmp_path, base)).run)
        await proc.wait_for_line(' msg="ready" ')
        api.user_command(CHAT, "/start")
        await wait_for(lambda: bool(api.sent_texts(CHAT)), 10)
        start = trio.current_time()
        proc.signal(signal.SIGTERM)
        code = await proc.wait(timeout=5)
        took = trio.current_time() - start
        nursery.cancel_scope.cancel()
    assert code == 0, proc.log
    assert took < 1.5, took
    assert "update offset confirmed" in proc.log
    assert api.pending_updates == 0
    for secret in [DEFAULT_TOKEN, DEFAULT_TOKEN.split(":")[1], *SECRETS.values()]:
        assert secret not in proc.log
    assert api.violations == []


async def test_invalid_token_stops_with_a_clear_message(tmp_path: Path) -> None:
    api = FakeBotApi()
    async with trio.open_nursery() as nursery:
        base = await nursery.start(serve_app, api)
        other = "987654321:" + "Z" * 35
        proc: ServeProcess = await nursery.start(
            ServeProcess(_config(tmp_path, base, token=other, level="INFO")).run
        )
        code = await proc.wait(timeout=20)
        nursery.cancel_scope.cancel()
    assert code == 1
    assert "Telegram refused the bot token" in proc.log
    assert "Traceback" not in proc.log
    assert other.split(":")[1] not in proc.log


async def test_a_second_signal_exits_at_once(tmp_path: Path) -> None:
    api = FakeBotApi()
    async with trio.open_nursery() as nursery:
        base = await nursery.start(serve_app, api)
        proc: ServeProcess = await nursery.start(ServeProcess(_config(tmp_path, base)).run)
        await proc.wait_for_line(' msg="ready" ')
        proc.signal(signal.SIGINT)
        proc.signal(signal.SIGTERM)
        code = await proc.wait(timeout=5)
        nursery.cancel_scope.cancel()
    assert code == 0, proc.log
    assert "Traceback" not in proc.log


async def test_circle_subscribe_creates_the_subscription(tmp_path: Path) -> None:
    from sandbox.circle import FakeCircle

    circle = FakeCircle(api_key=SECRETS["circle"])
    async with trio.open_nursery() as nursery:
        base = await nursery.start(serve_app, circle)
        config = write_config(
            tmp_path / "config.yaml",
            telegram={"token": DEFAULT_TOKEN},
            circle={"api_key": SECRETS["circle"], "base_url": base},
        )
        done = await trio.run_process(
            [
                sys.executable,
                "-m",
                "itinerabot",
                "circle",
                "subscribe",
                "https://bot.example.com/webhooks/circle",
                "--config",
                str(config),
            ],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        nursery.cancel_scope.cancel()
    assert done.returncode == 0, done.stderr
    assert [s["endpoint"] for s in circle.subscriptions] == [
        "https://bot.example.com/webhooks/circle"
    ]
    assert b"subscribed" in done.stdout
    assert SECRETS["circle"].encode() not in done.stdout + done.stderr
