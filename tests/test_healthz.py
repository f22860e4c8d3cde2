"""/healthz as a supervisor sees it: 503 with a reason once getUpdates has failed for longer
than `telegram.healthy_within`, 200 again once it succeeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from tests.harness import CHAT, Bot, eventually, make_settings, running_bot


async def health(bot: Bot) -> tuple[int, dict[str, Any]]:
    async with bot.web() as web:
        answer = await web.get("/healthz")
    return answer.status_code, answer.json()


async def test_healthz_is_503_while_get_updates_fails_past_the_setting_and_recovers(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    settings = make_settings(
        tmp_path, telegram={"healthy_within": 120, "backoff_initial": 1, "backoff_cap": 60}
    )
    async with running_bot(tmp_path, settings=settings) as bot:
        await eventually(lambda: bot.rt.longpoll.last_success is not None)
        assert (await health(bot))[0] == 200
        # Telegram's servers fail the next nine getUpdates: at +0, 1, 3, 7, 15, 31, 63, 123
        # and 183 s (the backoff doubles up to 60 s); the tenth, at +243 s, succeeds
        bot.api.fail_next("getUpdates", status=502, count=9)
        await eventually(lambda: bot.api.calls_to("getUpdates")[-1].status == 502)
        last_ok = bot.rt.longpoll.last_success
        assert last_ok is not None

        await trio.sleep_until(last_ok + 119.9)
        status, body = await health(bot)
        assert status == 200 and body["status"] == "ok"

        await trio.sleep_until(last_ok + 120.1)
        status, body = await health(bot)
        assert status == 503
        assert body["status"] == "unhealthy" and body["store"] is True
        assert "getUpdates has not succeeded for 120 s" in body["reason"]
        assert "telegram.healthy_within: 120 s" in body["reason"]
        async with bot.web() as web:
            assert (await web.head("/healthz")).status_code == 503

        # the failures run out; the traveller's message comes with the next getUpdates
        bot.api.user_command(CHAT, "/start")
        await eventually(lambda: len(bot.api.sent_texts(CHAT)) == 1, timeout=300)
        recovered = trio.current_time()
        status, body = await health(bot)
        assert status == 200 and "reason" not in body
    statuses = [c.status for c in bot.api.calls_to("getUpdates")]
    assert statuses.count(502) == 9
    # the update came with the first getUpdates after the ninth failure
    assert 243 <= recovered - last_ok < 244


async def test_a_bot_that_never_reached_telegram_is_unhealthy_after_the_setting(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    from tests.harness import Fakes

    fakes = Fakes.make()
    fakes.api.fail_next("getUpdates", status=502, count=1000)  # from the very first one
    settings = make_settings(tmp_path, telegram={"healthy_within": 60, "backoff_cap": 10})
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        started = bot.rt.longpoll.started_at
        assert started is not None and bot.rt.longpoll.last_success is None
        await trio.sleep_until(started + 59)
        assert (await health(bot))[0] == 200
        await trio.sleep_until(started + 61)
        status, body = await health(bot)
        assert status == 503 and "getUpdates has not succeeded" in body["reason"]
