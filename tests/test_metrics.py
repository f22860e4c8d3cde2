"""/metrics as Prometheus scrapes it: a running bot does some work, the real hypercorn server
answers on loopback, and the figures parsed with prometheus_client's own parser moved as the
work implies."""

from __future__ import annotations

from pathlib import Path

import httpx
import stripe
import trio
from prometheus_client.parser import text_string_to_metric_families

from sandbox.sns_signer import encode
from tests.harness import (
    CHAT,
    STRIPE_WHSEC,
    Bot,
    eventually,
    open_checkout,
    pay_usdc,
    running_bot,
    unix_now,
)

#: a chat whose user blocked the bot: every send there is refused (403)
BLOCKED = 5151

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(bot: Bot) -> Samples:
    """Every sample of /metrics, by name and labels, read over a real socket."""
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{bot.rt.address}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_move_with_the_work_done(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_bot(tmp_path) as bot:
            before = await scrape(bot)
            assert value(before, "itinerabot_pollers_running") == 0
            assert value(before, "itinerabot_outbox_messages", status="pending") == 0

            # an update, and one from a chat whose user blocked the bot
            bot.api.block(BLOCKED)
            bot.api.user_command(CHAT, "/start")
            bot.api.user_command(BLOCKED, "/start")
            await eventually(lambda: len(bot.api.sent_texts(CHAT)) == 1)

            # a card payment, its webhook delivered twice, and a forged one
            _, session_id = await open_checkout(bot)
            stripe_url = f"{bot.rt.address}/webhooks/stripe"
            async with httpx.AsyncClient() as client:
                answers = await bot.stripe.deliver_event(
                    bot.stripe.complete(session_id),
                    stripe_url,
                    STRIPE_WHSEC,
                    client=client,
                    times=2,
                )
                forged = stripe.WebhookSignature.generate_signature_header(
                    '{"id": "evt_forged"}', "whsec_not_ours", int(unix_now())
                )
                refused = await client.post(
                    stripe_url,
                    content=b'{"id": "evt_forged"}',
                    headers={"stripe-signature": forged},
                )
            assert [a.status_code for a in answers] == [200, 200] and refused.status_code == 400
            await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)

            # a USDC payment: the intent is created and its poller checks it; Circle's
            # notification of it comes once, then again
            _, intent = await pay_usdc(bot)
            await eventually(lambda: len(bot.fakes.circle_gets(intent)) >= 1)
            body = encode(bot.sns.notification(bot.circle.notification_message(intent)))
            async with httpx.AsyncClient() as client:
                circle_url = f"{bot.rt.address}/webhooks/circle"
                notified = [(await client.post(circle_url, content=body)).status_code]
                notified.append((await client.post(circle_url, content=body)).status_code)
            assert notified == [200, 200]
            await eventually(lambda: any(c.status == 403 for c in bot.api.calls_to("sendMessage")))
            await eventually(lambda: bot.rt.sender.busy == 0)  # every queued message is out
            sent = [c for c in bot.api.calls_to("sendMessage") if c.status == 200]
            after = await scrape(bot)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("itinerabot_updates_handled_total") == 2
    # each text the fake accepted was timed from the call's start to Telegram's answer
    assert moved("itinerabot_telegram_send_seconds_count", kind="text") == len(sent) > 1
    assert moved("itinerabot_telegram_send_seconds_count", kind="document") == 1
    assert value(after, "itinerabot_telegram_send_seconds_bucket", kind="document", le="+Inf") == 1
    assert value(after, "itinerabot_telegram_send_seconds_sum", kind="document") > 0

    hook = "itinerabot_webhook_results_total"
    assert moved(hook, webhook="stripe", outcome="accepted") == 1
    assert moved(hook, webhook="stripe", outcome="duplicate") == 1
    assert moved(hook, webhook="stripe", outcome="refused-signature") == 1
    assert moved(hook, webhook="circle", outcome="accepted") == 1
    assert moved(hook, webhook="circle", outcome="duplicate") == 1

    circle_log = bot.fakes.circle_log
    assert moved("itinerabot_circle_requests_total", status="201") + moved(
        "itinerabot_circle_requests_total", status="200"
    ) == len(circle_log)
    assert moved("itinerabot_circle_budget_wait_seconds_count") == len(circle_log)

    assert value(after, "itinerabot_pollers_running") == 1
    assert value(after, "itinerabot_outbox_messages", status="failed") == 1  # the blocked chat
    assert value(after, "itinerabot_outbox_messages", status="unconfirmed") == 0
    assert 0 <= value(after, "itinerabot_get_updates_age_seconds") < 60
