"""The runtime skeleton: serve starts, answers /healthz and /start, and stops cleanly."""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx
import trio

from tests.harness import CHAT, eventually, running_bot


async def test_serve_answers_healthz_and_start(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path) as bot:
        async with bot.web() as web:
            health = await web.get("/healthz")
        assert health.status_code == 200
        body = health.json()
        assert body["store"] is True
        assert body["pollers"] == 0
        bot.api.user_command(CHAT, "/start")
        await eventually(lambda: len(bot.api.sent_texts(CHAT)) >= 1)
        assert "name" in bot.api.sent_texts(CHAT)[0].lower()
        assert [c["command"] for c in bot.api.commands] == [
            "start",
            "help",
            "cancel",
            "status",
            "orders",
            "language",
        ]
    assert bot.api.violations == []


def _poll_times(bot_api: object) -> list[tuple[float, int]]:
    from sandbox.telegram import FakeBotApi

    assert isinstance(bot_api, FakeBotApi)
    return [(c.at, c.status) for c in bot_api.calls_to("getUpdates")]


async def test_restart_neither_loses_nor_rehandles_updates(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    from tests.harness import Fakes

    fakes = Fakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        bot.api.user_command(CHAT, "/start")
        await eventually(lambda: len(bot.api.sent_texts(CHAT)) == 1)
    # while the bot is down, the traveller answers the question
    fakes.api.user_text(CHAT, "Maria Schneider")
    async with running_bot(tmp_path, fakes) as bot:
        await eventually(lambda: len(bot.api.sent_texts(CHAT)) == 2)
        await trio.sleep(5)
        texts = bot.api.sent_texts(CHAT)
    assert len(texts) == 2, texts  # /start answered once, the name once
    assert "anyone else travelling" in texts[1]


async def test_update_redelivered_after_a_crash_is_not_handled_twice(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Killed before confirming the offset: Telegram sends the update again; it is skipped."""
    from tests.harness import Fakes

    fakes = Fakes.make()
    with trio.CancelScope() as crash:
        async with running_bot(tmp_path, fakes) as bot:
            await eventually(lambda: len(bot.api.calls_to("getUpdates")) == 1)
            # the poll after the update fails, so Telegram never sees the higher offset
            bot.api.fail_next("getUpdates", drop=True)
            bot.api.user_command(CHAT, "/start")
            await eventually(lambda: any(c.status == -1 for c in bot.api.calls_to("getUpdates")))
            await eventually(lambda: len(bot.api.sent_texts(CHAT)) == 1)
            crash.cancel()  # no graceful shutdown, no confirming getUpdates
    assert fakes.api.pending_updates == 1  # Telegram still holds it
    async with running_bot(tmp_path, fakes) as bot:
        await eventually(lambda: fakes.api.pending_updates == 0)
        await trio.sleep(5)
    assert len(fakes.api.sent_texts(CHAT)) == 1


async def test_getupdates_429_waits_retry_after_exactly(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    from tests.harness import Fakes

    fakes = Fakes.make()
    fakes.api.fail_next("getUpdates", status=429, retry_after=7)
    async with running_bot(tmp_path, fakes) as bot:
        await eventually(lambda: len(bot.api.calls_to("getUpdates")) >= 2)
        (t0, s0), (t1, _) = _poll_times(bot.api)[:2]
    assert s0 == 429
    assert t1 - t0 == 7


async def test_getupdates_409_backs_off_and_network_errors_retry(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    from tests.harness import Fakes, make_settings

    fakes = Fakes.make()
    fakes.api.fail_next("getUpdates", status=409)
    fakes.api.fail_next("getUpdates", drop=True)
    fakes.api.fail_next("getUpdates", drop=True)
    settings = make_settings(tmp_path, telegram={"conflict_backoff": 30, "backoff_initial": 1})
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        bot.api.user_command(CHAT, "/start")
        await eventually(lambda: len(bot.api.sent_texts(CHAT)) == 1)
        calls = _poll_times(bot.api)
    statuses = [s for _, s in calls[:4]]
    assert statuses == [409, -1, -1, 200]
    gaps = [round(b[0] - a[0], 3) for a, b in itertools.pairwise(calls[:4])]
    assert gaps == [30, 1, 2]  # conflict backoff, then doubling network backoff


async def test_cancelled_serve_ends_every_task(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path) as bot:
        bot.api.user_command(CHAT, "/start")
        await eventually(lambda: len(bot.api.sent_texts(CHAT)) == 1)
        bot.rt.shutdown()
        with trio.fail_after(1):
            await bot.stopped.wait()
    # the last getUpdates confirmed the offset: nothing left for a next instance
    assert bot.api.pending_updates == 0
    assert bot.rt.store.closed


async def test_healthz_over_a_real_socket(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        async with httpx.AsyncClient() as client:
            r = await client.get(f"{bot.rt.address}/healthz")
            big = await client.post(f"{bot.rt.address}/webhooks/stripe", content=b"x" * 70000)
        assert r.status_code == 200 and r.json()["store"] is True
        assert big.status_code == 413
