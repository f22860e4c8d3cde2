"""`itinerabot orders` as an operator meets it, on the store of a real `serve` that keeps
running: the command runs in a worker thread (its own trio run, as in its own process) while
the bot goes on in the test's trio run with the sandbox fakes.
"""

from __future__ import annotations

import json
import queue
import re
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import yaml
from hypothesis import HealthCheck, given, settings

from itinerabot.cli import main
from itinerabot.config import Settings, settings_from_mapping
from itinerabot.models import OrderStatus, PaymentMethod
from itinerabot.operator.attention import Attention, needs_attention
from itinerabot.payments.fulfilment import record_payment
from itinerabot.store import money
from itinerabot.store.db import connect
from itinerabot.store.schema import MIGRATIONS
from sandbox.circle import Script, Step, paid_script, underpaid_then_expired_script
from sandbox.serve import ASGIApp, InProcessTransport
from sandbox.sns_signer import encode
from sandbox.telegram import DEFAULT_TOKEN
from tests.harness import (
    CHAT,
    CIRCLE_KEY,
    START,
    STRIPE_KEY,
    STRIPE_WHSEC,
    Bot,
    Fakes,
    amount_text,
    card_payment,
    eventually,
    on_loopback,
    open_checkout,
    orders,
    pay_usdc,
    running_bot,
    status_of,
    store_order,
)

REF = "IB-7K3Q9P"  # the reference open_checkout stores
CLI_URL = "http://127.0.0.1:9"  # the discard port: commands that must not call out


def raw_config(tmp_path: Path, *, stripe_base: str = CLI_URL, circle_base: str = CLI_URL) -> Any:
    """The config `make_settings` gives the bot, with the providers at the CLI's addresses."""
    return {
        "telegram": {"token": DEFAULT_TOKEN, "api_base": "http://telegram.test"},
        "server": {"host": "127.0.0.1", "port": 0},
        "store": {"path": str(tmp_path / "bot.sqlite3")},
        "sender": {"per_chat_interval": 1.0, "shutdown_grace": 10},
        "stripe": {
            "secret_key": STRIPE_KEY,
            "webhook_secret": STRIPE_WHSEC,
            "api_base": stripe_base,
            "refunds": "operator",
        },
        "circle": {
            "api_key": CIRCLE_KEY,
            "base_url": circle_base,
            "requests_per_second": 1_000_000,
        },
    }


def bot_settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    raw = raw_config(tmp_path, stripe_base="http://stripe.test", circle_base="http://circle.test")
    for name, values in sections.items():
        raw[name].update(values)
    return settings_from_mapping(raw, env={})


def config_file(tmp_path: Path, raw: Any, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


@asynccontextmanager
async def bot_and_config(
    tmp_path: Path, fakes: Fakes | None = None
) -> AsyncIterator[tuple[Bot, Path]]:
    async with running_bot(tmp_path, fakes, settings=bot_settings(tmp_path)) as bot:
        yield bot, config_file(tmp_path, raw_config(tmp_path))


async def deliver_card_payment(bot: Bot, session_id: str) -> None:
    """The traveller pays the Checkout Session; Stripe's signed event reaches the bot."""
    event = bot.stripe.complete(session_id)
    async with bot.web() as web:
        (answer,) = await bot.stripe.deliver_event(
            event, "http://bot.test/webhooks/stripe", STRIPE_WHSEC, client=web
        )
    assert answer.status_code == 200


async def deliver_usdc_payment(bot: Bot, intent: str) -> None:
    """The USDC payment lands on the intent; Circle's notification reaches the bot."""
    bot.circle.set_script(intent, paid_script(pending_after=0, paid_after=0))
    bot.circle.advance(intent)
    bot.circle.advance(intent)
    body = encode(bot.sns.notification(bot.circle.notification_message(intent)))
    async with bot.web() as web:
        assert (await web.post("/webhooks/circle", content=body)).status_code == 200


async def card_then_usdc(bot: Bot) -> tuple[int, str, str]:
    """An order paid by card, then paid again in USDC (owed back); (order id, session, intent)."""
    order_id, session_id = await open_checkout(bot)
    usdc = bot.rt.payments.usdc
    assert usdc is not None
    await usdc.pay_with_usdc(CHAT, REF)
    intent = bot.circle.intent_ids()[-1]
    await deliver_card_payment(bot, session_id)
    await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
    await deliver_usdc_payment(bot, intent)
    await eventually(lambda: any("second payment" in t for t in bot.api.sent_texts(CHAT)))
    return order_id, session_id, intent


# ------------------------------------------------------------------ no store, no order


async def test_a_missing_store_is_one_line_and_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, raw_config(tmp_path))
    store = tmp_path / "bot.sqlite3"
    for args in ([], ["show", REF], ["resend", REF], ["refund", REF, "--yes"]):
        code, out, err = await orders(capsys, config, *args)
        assert (code, out) == (1, "")
        assert err == f"no store at {store}: check store.path in the config, or start serve once\n"
    assert not store.exists()


async def test_unknown_reference_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    async with bot_and_config(tmp_path) as (_, config):
        for args in (["show", "ib-nope00"], ["resend", "IB-NOPE00"], ["refund", "IB-NOPE00"]):
            code, out, err = await orders(capsys, config, *args)
            assert (code, out, err) == (1, "", "no order IB-NOPE00\n")


async def test_nothing_needs_attention_on_a_clean_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    async with bot_and_config(tmp_path) as (bot, config):
        _, session_id = await open_checkout(bot)
        await deliver_card_payment(bot, session_id)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        assert await orders(capsys, config) == (0, "nothing needs attention\n", "")
        assert await orders(capsys, config, "--json") == (0, "[]\n", "")


# ------------------------------------------------------------------ show


async def test_show_tells_the_whole_history_and_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    async with bot_and_config(tmp_path) as (bot, config):
        order_id, session_id = await usdc_then_card(bot)
        code, out, err = await orders(capsys, config, "show", REF.lower(), "--config", str(config))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    session = bot.stripe.sessions[session_id]
    conn = sqlite3.connect(bot.settings.store.path)
    ((checkout_url, paid_at),) = conn.execute(
        "SELECT url, paid_at FROM stripe_sessions, orders WHERE reference = ?", (REF,)
    ).fetchall()
    conn.close()
    paid_at = datetime.fromisoformat(paid_at).strftime("%Y-%m-%d %H:%M:%S UTC")
    (intent,) = bot.circle.intent_ids()
    address = bot.circle.intent(intent)["paymentMethods"][0]["address"]
    (circle_payment,) = bot.circle.payments.values()
    assert lines[0] == f"Order {REF}: delivered"
    assert lines[1] == f"  chat {CHAT}, price 10.00 USD"
    assert (
        lines[2].startswith("  created ") and ", paid " in lines[2] and ", delivered " in lines[2]
    )
    assert lines[3].startswith("  passenger ")
    assert lines[4].startswith("  flight ")
    payment = lines[lines.index("Payment") + 1 : lines.index("Payment") + 3]
    assert payment == [
        f"  usdc 10.00 USDC at {paid_at}: intent {intent}, payment {circle_payment['id']}",
        f"  transaction {circle_payment['transactionHash']}",
    ]
    card = lines[lines.index("Card sessions (Stripe Checkout)") + 1]
    assert card.startswith(f"  attempt 1: {session_id} complete, created ")
    usdc = lines[lines.index("USDC payment intents (Circle)") + 1]
    assert usdc.startswith(f"  attempt 1: {intent} paid, ETH address {address}, created ")
    extra = lines[lines.index("Extra payments (owed back)") + 1]
    assert extra.startswith("  #1 second: card 10.00 USD at ")
    assert extra.endswith(f": session {session_id}, payment intent {session['payment_intent']}")
    messages = lines[lines.index("Messages") + 1 :]
    ids = [int(line.split()[0].lstrip("#")) for line in messages]
    assert ids == sorted(ids)  # in the order queued
    assert [line.split(", queued ")[0] for line in messages] == [
        f"  #{ids[0]} text sent (1 attempt)",  # the amount and the address
        f"  #{ids[1]} photo_qr sent (1 attempt)",
        f"  #{ids[2]} text sent (1 attempt)",
        f"  #{ids[3]} document sent (1 attempt)",
        f"  #{ids[4]} text sent (1 attempt)",
    ]
    assert messages[2].endswith(
        ": 'Payment received: 10.00 USDC for order IB-7K3Q9P. Your itinerar…'"
    )
    assert ", sent " in messages[3]
    assert messages[4].endswith(
        ": 'We received a second payment of 10.00 USD for order IB-7K3Q9P, …'"
    )
    for secret in (STRIPE_KEY, STRIPE_WHSEC, CIRCLE_KEY, DEFAULT_TOKEN, checkout_url):
        assert secret not in out
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED


# ------------------------------------------------------------------ resend


async def test_resend_while_serve_runs_sends_the_same_pdf_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    async with bot_and_config(tmp_path) as (bot, config):
        order_id, session_id = await open_checkout(bot)
        await deliver_card_payment(bot, session_id)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        code, out, err = await orders(capsys, config, "resend", REF)
        asked = trio.current_time()
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 2)
        arrived = trio.current_time()
    assert (code, err) == (0, "")
    assert out.startswith(f"queued a copy of the PDF of {REF} for chat {CHAT} as message #")
    assert out.endswith("; the running bot sends it within a minute\n")
    assert arrived - asked <= 60 + 1  # the sender's rescan, then the chat's 1 s pace
    first, second = bot.api.sent_documents(CHAT)
    assert (second.data, second.file_name) == (first.data, first.file_name)
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED


async def test_resend_of_a_failed_delivery_delivers_it_and_clears_the_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    async with bot_and_config(tmp_path) as (bot, config):
        order_id, session_id = await open_checkout(bot)
        bot.api.fail_next("sendDocument", status=400, description="Bad Request: file is broken")
        await deliver_card_payment(bot, session_id)
        path = bot.settings.store.path
        await eventually(lambda: status_of(path, order_id) == OrderStatus.DELIVERY_FAILED)
        listed = await orders(capsys, config)
        code, out, err = await orders(capsys, config, "resend", REF)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await eventually(lambda: status_of(path, order_id) == OrderStatus.DELIVERED)
        after = await orders(capsys, config)
    (line,) = listed[1].splitlines()
    assert line.endswith(
        f"  {REF}  paid, PDF not delivered: File is broken  → itinerabot orders resend {REF}"
    )
    assert (code, err) == (0, "")
    assert out.startswith(f"queued the PDF of {REF} for chat {CHAT} as message #")
    assert "(the order is back to paid until it is delivered)" in out
    assert after == (0, "nothing needs attention\n", "")


async def test_a_pdf_given_up_after_an_outage_is_listed_and_resent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    """Finding 6: a delivery retried until `sender.give_up_after` then shows up in
    `itinerabot orders`, and `orders resend` delivers it once Telegram is back."""
    settings = bot_settings(tmp_path, sender={"give_up_after": 120, "backoff_cap": 10})
    async with running_bot(tmp_path, settings=settings) as bot:
        config = config_file(tmp_path, raw_config(tmp_path))
        order_id, session_id = await open_checkout(bot)
        bot.api.fail_share(["sendDocument"], 1.0, status=502)  # Telegram is down
        await deliver_card_payment(bot, session_id)
        path = bot.settings.store.path
        await eventually(
            lambda: status_of(path, order_id) == OrderStatus.DELIVERY_FAILED, timeout=300
        )
        listed = await orders(capsys, config)
        bot.api.fail_share(["sendDocument"], 0.0, status=502)  # and back
        code, out, _ = await orders(capsys, config, "resend", REF)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        after = await orders(capsys, config)
    (line,) = listed[1].splitlines()
    # the attempts and seconds are the sender's backoff schedule, not this command's
    assert re.fullmatch(
        rf".* UTC  {REF}  paid, PDF not delivered: gave up after \d+ attempts in 1[23]\d s:"
        rf" Bad Gateway  → itinerabot orders resend {REF}",
        line,
    ), line
    assert code == 0 and "the running bot sends it within a minute" in out
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED
    assert after == (0, "nothing needs attention\n", "")


async def test_resend_refuses_an_unpaid_order_and_never_repeats_a_waiting_pdf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    async with bot_and_config(tmp_path) as (bot, config):
        order_id, session_id = await open_checkout(bot)
        refused = await orders(capsys, config, "resend", REF)
        # Telegram is down: the PDF waits in the outbox, being retried
        bot.api.fail_next("sendDocument", status=502, count=1000)
        await deliver_card_payment(bot, session_id)
        await trio.sleep(30)
        waiting = await orders(capsys, config, "resend", REF)
    assert refused == (
        1,
        "",
        f"order {REF} is awaiting payment: only a paid order has a PDF to send\n",
    )
    assert waiting[0] == 0
    assert waiting[1].startswith(f"the PDF of {REF} is already waiting to be sent (message #")
    assert waiting[1].endswith("the running bot sends it, nothing added\n")
    conn = sqlite3.connect(bot.settings.store.path)
    (documents,) = conn.execute(
        "SELECT COUNT(*) FROM outbox WHERE order_id = ? AND kind LIKE 'document%'", (order_id,)
    ).fetchone()
    conn.close()
    assert documents == 1


# ------------------------------------------------------------------ the list


async def test_the_list_names_each_problem_oldest_first_with_the_command_for_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    async with bot_and_config(tmp_path) as (bot, config):
        order_id, session_id = await open_checkout(bot)
        usdc = bot.rt.payments.usdc
        assert usdc is not None
        await usdc.pay_with_usdc(CHAT, REF)
        intent = bot.circle.intent_ids()[-1]
        await deliver_card_payment(bot, session_id)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await trio.sleep(60)
        # a Payment Link on the same Stripe account names the order: an anomaly
        foreign = bot.stripe.foreign_session(
            amount=1, currency="eur", metadata={"order_reference": REF}
        )
        await deliver_card_payment(bot, foreign["id"])
        await trio.sleep(60)
        # the traveller blocks the bot, then pays again in USDC: owed back, and not told
        bot.api.block(CHAT)
        await deliver_usdc_payment(bot, intent)
        path = bot.settings.store.path
        await eventually(lambda: _outbox_statuses(path)[-1] == "failed")
        code, out, err = await orders(capsys, config)
        code_json, out_json, _ = await orders(capsys, config, "--json")
    assert (code, err, code_json) == (0, "", 0)
    anomaly, owed, message = out.splitlines()
    assert anomaly.endswith(
        f"  {REF}  anomaly #1 from stripe: unknown_session, {foreign['id']} (1 eur, payment_status"
        " paid); it paid nothing  → look it up in Stripe and refund it there if money was taken"
    )
    assert owed.endswith(
        f"  {REF}  second payment #1 of 10.00 USDC by usdc ({intent}) is owed back"
        f"  → itinerabot orders refund {REF} --extra 1 --address ADDRESS --chain CHAIN"
    )
    assert f"  {REF}  text message #" in message
    assert message.endswith(
        f"to chat {CHAT} failed after 1 attempt: Forbidden: bot was blocked by the user"
        f"  → itinerabot orders show {REF} (the chat may have blocked the bot)"
    )
    times = [line[:23] for line in (anomaly, owed, message)]
    assert times == sorted(times) and times[0] < times[1]  # oldest first
    items = json.loads(out_json)
    assert [i["kind"] for i in items] == ["anomaly", "owed_back", "message"]
    assert [i["what"] for i in items] == [line.split("  ")[2] for line in out.splitlines()]
    assert {i["reference"] for i in items} == {REF}
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED


def _outbox_statuses(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT status FROM outbox ORDER BY id").fetchall()
    conn.close()
    return [r[0] for r in rows]


# ------------------------------------------------------------------ refund


async def usdc_then_card(bot: Bot) -> tuple[int, str]:
    """An order paid in USDC, then paid again by card (owed back); (order id, session id)."""
    order_id, session_id = await open_checkout(bot)
    usdc = bot.rt.payments.usdc
    assert usdc is not None
    bot.circle.script_next(paid_script(pending_after=1, paid_after=3))
    await usdc.pay_with_usdc(CHAT, REF)  # the poller finds the address, then the payment
    await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
    await deliver_card_payment(bot, session_id)
    await eventually(lambda: any("second payment" in t for t in bot.api.sent_texts(CHAT)))
    return order_id, session_id


def refund_requests(bot: Bot) -> list[Any]:
    return [r for r in bot.stripe.requests if r.path == "/v1/refunds"]


def stored_refunds(bot: Bot) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(bot.settings.store.path)
    rows = conn.execute(
        "SELECT id, extra_payment_id, amount, status, idempotency_key FROM refunds ORDER BY id"
    ).fetchall()
    conn.close()
    return rows


async def test_refund_of_a_second_card_payment_reaches_stripe_once_and_the_traveller(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path, settings=bot_settings(tmp_path)) as bot:
        order_id, session_id = await usdc_then_card(bot)
        listed = await orders(capsys, config_file(tmp_path, raw_config(tmp_path)))
        async with on_loopback(bot.stripe) as stripe_url:
            config = config_file(tmp_path, raw_config(tmp_path, stripe_base=stripe_url))
            code, out, err = await orders(capsys, config, "refund", REF, "--yes")
            again = await orders(capsys, config, "refund", REF, "--extra", "1", "--yes")
        await eventually(lambda: any("We refunded" in t for t in bot.api.sent_texts(CHAT)))
        after = await orders(capsys, config)
    payment_intent = bot.stripe.sessions[session_id]["payment_intent"]
    assert f"→ itinerabot orders refund {REF} --extra 1" in listed[1]
    assert (code, err) == (0, "")
    plan, result, told = out.splitlines()
    assert plan == (
        f"refund 10.00 USD of the second payment #1 of {REF} (10.00 USD by card,"
        f" {payment_intent}) through Stripe"
    )
    ((stripe_refund_id, stripe_refund),) = bot.stripe.refunds.items()
    assert result == f"refund #1 of 10.00 USD: succeeded (Stripe refund {stripe_refund_id})"
    assert told == "the running bot tells the traveller within 60 seconds"
    (request,) = refund_requests(bot)
    assert request.form["payment_intent"] == payment_intent
    assert request.form["amount"] == "1000"
    ((_, extra_id, amount, status, key),) = stored_refunds(bot)
    assert (extra_id, amount, status) == (1, "10.00", "succeeded")
    assert request.headers["idempotency-key"] == key
    assert stripe_refund["amount"] == 1000
    assert again == (
        1,
        "",
        f"the second payment #1 of {REF} (10.00 USD) is refunded already\n",
    )
    assert after == (0, "nothing needs attention\n", "")
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED


def listed_after(bot: Bot, *, minutes: tuple[int, ...]) -> list[list[Attention]]:
    """What `orders` would list that many minutes after the last refund's last update."""
    conn = connect(bot.settings.store.path)
    (updated,) = conn.execute("SELECT MAX(updated_at) FROM refunds").fetchone()
    at = datetime.fromisoformat(updated)
    lists = [needs_attention(conn, at + timedelta(minutes=m)) for m in minutes]
    conn.close()
    return lists


@pytest.mark.slow  # real time: Stripe's client waits between its network retries
async def test_a_refund_whose_answer_was_lost_is_asked_again_with_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path, settings=bot_settings(tmp_path)) as bot:
        await usdc_then_card(bot)
        # Stripe refunds, but its answer is lost: on the call and on both network retries
        bot.stripe.lose_next_answers(3)
        async with on_loopback(bot.stripe) as stripe_url:
            config = config_file(tmp_path, raw_config(tmp_path, stripe_base=stripe_url))
            first = await orders(capsys, config, "refund", REF, "--yes")
            stuck = stored_refunds(bot)
            listed_soon, listed_later = listed_after(bot, minutes=(14, 15))
            second = await orders(capsys, config, "refund", REF, "--yes")
    code, out, err = first
    assert code == 1
    assert out.splitlines()[1] == (
        "refund #1 of 10.00 USD: still requested, Stripe gave no answer; run the same command"
        " again to ask with the same key"
    )
    assert err == "stripe: refunding a card payment: Sandbox: the answer was lost.\n"
    assert [row[3] for row in stuck] == ["requested"]
    assert listed_soon == []  # the bot or a running command may still be asking
    (unanswered,) = listed_later
    assert (unanswered.kind, unanswered.action) == (
        "refund_unanswered",
        f"itinerabot orders refund {REF} --extra 1 (asks Stripe again without refunding"
        " twice: the same key within 23 h, after that a look-up at Stripe first)",
    )
    assert unanswered.what == "refund #1 of 10.00 USD was asked of Stripe with no answer recorded"
    code, out, err = second
    assert (code, err) == (0, "")
    assert out.splitlines()[0].endswith("through Stripe (asking again for refund #1)")
    assert out.splitlines()[1].startswith("refund #1 of 10.00 USD: succeeded (Stripe refund re_")
    assert len(bot.stripe.refunds) == 1  # one refund, however often it was asked
    keys = {r.headers["idempotency-key"] for r in refund_requests(bot)}
    assert len(refund_requests(bot)) == 4 and keys == {stuck[0][4]}
    assert [row[3] for row in stored_refunds(bot)] == ["succeeded"]


async def test_a_payment_is_refunded_in_parts_never_beyond_what_was_paid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path, settings=bot_settings(tmp_path)) as bot:
        _, session_id = await open_checkout(bot)
        await deliver_card_payment(bot, session_id)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        async with on_loopback(bot.stripe) as stripe_url:
            config = config_file(tmp_path, raw_config(tmp_path, stripe_base=stripe_url))
            unchosen = await orders(capsys, config, "refund", REF, "--yes")
            part = await orders(capsys, config, "refund", REF, "--payment", "--amount", "4", "-y")
            too_much = await orders(
                capsys, config, "refund", REF, "--payment", "--amount", "6.01", "--yes"
            )
            rest = await orders(capsys, config, "refund", REF, "--payment", "--yes")
    assert unchosen == (
        1,
        "",
        f"order {REF} has no extra payment owed back; to refund the payment of the order"
        " itself, add --payment\n",
    )
    assert part[0] == 0 and part[1].splitlines()[0].startswith(
        f"refund 4.00 USD of the payment of {REF} (10.00 USD by card, pi_"
    )
    assert too_much == (
        1,
        "",
        f"6.01 USD is more than is left to refund of the payment of {REF}: 6.00"
        " (paid 10.00, refunded 4.00)\n",
    )
    assert rest[0] == 0 and rest[1].splitlines()[1].startswith("refund #2 of 6.00 USD: succeeded")
    assert [r.form["amount"] for r in refund_requests(bot)] == ["400", "600"]
    assert [row[2:4] for row in stored_refunds(bot)] == [
        ("4.00", "succeeded"),
        ("6.00", "succeeded"),
    ]


async def test_refusals_are_one_line_and_ask_no_provider(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    async with bot_and_config(tmp_path) as (bot, config):
        await card_then_usdc(bot)  # IB-7K3Q9P: card, then 10.00 USDC owed back as #1
        store_order(bot.settings.store.path, reference="IB-UNPAID")
        no_circle = raw_config(tmp_path)
        no_circle["circle"] = {"enabled": False}
        without_usdc = config_file(tmp_path, no_circle, "no-circle.yaml")
        answers = {
            "unpaid": await orders(capsys, config, "refund", "IB-UNPAID", "--yes"),
            "unpaid payment": await orders(capsys, config, "refund", "IB-UNPAID", "--payment"),
            "no address": await orders(capsys, config, "refund", REF, "--yes"),
            "disabled": await orders(
                capsys, without_usdc, "refund", REF, "--address", "0xabc", "--chain", "ETH"
            ),
            "no such extra": await orders(capsys, config, "refund", REF, "--extra", "9"),
            "not a number": await orders(capsys, config, "refund", REF, "--amount", "ten"),
            "card with address": await orders(
                capsys, config, "refund", REF, "--payment", "--address", "0xabc", "--chain", "ETH"
            ),
            # no --yes, and no terminal to answer the question
            "unconfirmed": await orders(capsys, config, "refund", REF, "--payment"),
        }
    assert {name: (code, err) for name, (code, _, err) in answers.items()} == {
        "unpaid": (1, "order IB-UNPAID is not paid and nothing is owed back: nothing to refund\n"),
        "unpaid payment": (1, "order IB-UNPAID is not paid: there is no payment to refund\n"),
        "no address": (
            1,
            "a USDC refund goes to the traveller's own address: add --address ADDRESS and"
            " --chain CHAIN (ask the traveller for both)\n",
        ),
        "disabled": (
            1,
            "usdc payments are disabled in the config (circle.enabled), so the bot cannot"
            " refund this one: refund it in the provider's dashboard\n",
        ),
        "no such extra": (1, f"order {REF} has no extra payment #9\n"),
        "not a number": (1, "--amount 'ten' is not a number\n"),
        "card with address": (
            1,
            "--address and --chain are for USDC refunds; a card refund goes to the card\n",
        ),
        "unconfirmed": (1, ""),
    }
    assert answers["unconfirmed"][1].endswith("nothing refunded\n")
    assert refund_requests(bot) == []
    assert stored_refunds(bot) == []


async def test_a_usdc_payment_owed_back_goes_to_the_address_the_operator_gives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    address = "0x" + "ab" * 20
    async with running_bot(tmp_path, settings=bot_settings(tmp_path)) as bot:
        _, _, intent = await card_then_usdc(bot)
        async with on_loopback(bot.circle) as circle_url:
            config = config_file(tmp_path, raw_config(tmp_path, circle_base=circle_url))
            args = ("refund", REF, "--address", address, "--chain", "ETH", "--yes")
            code, out, err = await orders(capsys, config, *args)
            by_default = await orders(capsys, config, *args)
            again = await orders(capsys, config, *args, "--extra", "1")
        listed = await orders(capsys, config)
    assert (code, err) == (0, "")
    ((circle_refund_id, circle_refund),) = bot.circle.refunds.items()
    assert out.splitlines() == [
        f"refund 10.00 USDC of the second payment #1 of {REF} (10.00 USDC by usdc, {intent})"
        " through Circle",
        f"refund #1 of 10.00 USDC: pending (Circle refund {circle_refund_id}); Circle completes"
        " it on its own",
    ]
    assert circle_refund["paymentIntentId"] == intent
    assert circle_refund["destination"] == {"address": address, "chain": "ETH"}
    assert circle_refund["settlementAmount"]["amount"] == "10.00"
    ((_, extra_id, amount, status, _),) = stored_refunds(bot)
    assert (extra_id, amount, status) == (1, "10.00", "pending")
    assert by_default == (
        1,
        "",
        f"order {REF} owes nothing back: its extra payments are refunded or being refunded"
        f" (itinerabot orders show {REF}); to refund the payment of the order itself, add"
        " --payment\n",
    )
    assert again == (
        1,
        "",
        f"the second payment #1 of {REF} (10.00 USDC) is being refunded already: 10.00 is"
        " pending at Circle\n",
    )
    assert listed == (0, "nothing needs attention\n", "")


async def test_a_refund_stripe_refuses_is_listed_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path, settings=bot_settings(tmp_path)) as bot:
        _, session_id = await usdc_then_card(bot)
        payment_intent = bot.stripe.sessions[session_id]["payment_intent"]
        # someone refunded it in the Stripe dashboard already
        async with httpx.AsyncClient(
            transport=InProcessTransport(bot.stripe), base_url="http://stripe.test"
        ) as dashboard:
            answer = await dashboard.post(
                "/v1/refunds",
                data={"payment_intent": payment_intent},
                headers={"Authorization": f"Bearer {STRIPE_KEY}"},
            )
            assert answer.status_code == 200
        async with on_loopback(bot.stripe) as stripe_url:
            config = config_file(tmp_path, raw_config(tmp_path, stripe_base=stripe_url))
            code, out, err = await orders(capsys, config, "refund", REF, "--yes")
        listed = await orders(capsys, config)
    (charge,) = {r["charge"] for r in bot.stripe.refunds.values()}
    refused = (
        f"stripe: refunding a card payment: Charge {charge} has already been refunded."
        " (charge_already_refunded)"
    )
    assert (code, err) == (1, "")
    assert out.splitlines()[1] == f"refund #1 of 10.00 USD: failed: {refused}"
    assert len(bot.stripe.refunds) == 1  # the dashboard's
    (line,) = listed[1].splitlines()
    assert line.endswith(
        f"  {REF}  second payment #1 of 10.00 USD by card ({session_id}) is owed back;"
        f" refund #1 failed: {refused}  → itinerabot orders refund {REF} --extra 1"
    )


async def test_half_a_price_paid_before_the_intent_expired_is_sent_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    """The order was never paid, yet 5.00 USDC arrived: the one payment owed back is refunded."""
    address = "0x" + "cd" * 20
    fakes = Fakes.make()
    fakes.circle.script_next(underpaid_then_expired_script())
    async with running_bot(tmp_path, fakes, settings=bot_settings(tmp_path)) as bot:
        order_id, intent = await pay_usdc(bot, reference=REF)
        path = bot.settings.store.path
        await eventually(lambda: bool(stored_extra_payments(path)), timeout=600)
        config = config_file(tmp_path, raw_config(tmp_path))
        listed = await orders(capsys, config)
        async with on_loopback(bot.circle) as circle_url:
            config = config_file(tmp_path, raw_config(tmp_path, circle_base=circle_url))
            args = ("refund", REF, "--address", address, "--chain", "BASE", "--yes")
            code, out, _ = await orders(capsys, config, *args)
    (line,) = listed[1].splitlines()
    assert line.endswith(
        f"  {REF}  partial payment #1 of 5.00 USDC by usdc ({intent}) is owed back"
        f"  → itinerabot orders refund {REF} --extra 1 --address ADDRESS --chain CHAIN"
    )
    assert code == 0
    assert out.splitlines()[0] == (
        f"refund 5.00 USDC of the partial payment #1 of {REF} (5.00 USDC by usdc, {intent})"
        " through Circle"
    )
    (circle_refund,) = bot.circle.refunds.values()
    assert circle_refund["destination"] == {"address": address, "chain": "BASE"}
    assert circle_refund["settlementAmount"]["amount"] == "5.00"
    assert status_of(path, order_id) == OrderStatus.AWAITING_PAYMENT


def stored_extra_payments(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT id, kind, amount FROM extra_payments").fetchall()
    conn.close()
    return rows


# ------------------------------------------------------------------ review of the commands

ADDRESS = "0x" + "ef" * 20
USDC_TO = ("--address", ADDRESS, "--chain", "ETH")
OTHER_REF = "IB-OVER22"


def overpaid_script(share: str = "1.5") -> Script:
    """The intent shows its address, then `share` × its amount arrives: complete/overpaid."""
    return (
        Step("pending", after_checks=1),
        Step("complete", "overpaid", Decimal(share), after_checks=3),
    )


async def pay_too_much(bot: Bot, reference: str, chat: int) -> tuple[int, str]:
    """An order paid 15.00 USDC for its 10.00 price: delivered, 5.00 owed back; (id, intent)."""
    bot.circle.script_next(overpaid_script())
    order_id, intent = await pay_usdc(bot, reference=reference, chat=chat)
    path = bot.settings.store.path
    await eventually(lambda: status_of(path, order_id) == OrderStatus.DELIVERED)
    await eventually(lambda: any("more than the price" in t for t in bot.api.sent_texts(chat)))
    return order_id, intent


def circle_refunds(bot: Bot) -> list[tuple[str, str]]:
    """(intent, amount) of every refund Circle made, in the order asked."""
    return [
        (r["paymentIntentId"], r["settlementAmount"]["amount"]) for r in bot.circle.refunds.values()
    ]


async def test_an_overpaid_intent_is_refunded_once_whichever_payment_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    """Finding 1: 15.00 USDC on a 10.00 order is one pot of 15.00. Refunding the payment
    (15.00) then the overpaid extra (5.00) asked Circle for 20.00; now the extra is no longer
    owed once the payment is refunded, and the payment is capped at 10.00 after the extra."""
    async with running_bot(tmp_path, settings=bot_settings(tmp_path)) as bot:
        _, intent = await pay_too_much(bot, REF, CHAT)  # overpaid #1
        _, other_intent = await pay_too_much(bot, OTHER_REF, CHAT + 1)  # overpaid #2
        listed_before = await orders(capsys, config_file(tmp_path, raw_config(tmp_path)))
        async with on_loopback(bot.circle) as circle_url:
            config = config_file(tmp_path, raw_config(tmp_path, circle_base=circle_url))
            # the payment first, then the overpaid part of it
            whole = await orders(capsys, config, "refund", REF, "--payment", *USDC_TO, "-y")
            listed_after = await orders(capsys, config)
            by_default = await orders(capsys, config, "refund", REF, *USDC_TO, "--yes")
            named = await orders(capsys, config, "refund", REF, "--extra", "1", *USDC_TO, "-y")
            # the overpaid part first, then the payment
            part = await orders(capsys, config, "refund", OTHER_REF, *USDC_TO, "--yes")
            too_much = await orders(
                capsys, config, "refund", OTHER_REF, "--payment", "--amount", "15", *USDC_TO
            )
            rest = await orders(capsys, config, "refund", OTHER_REF, "--payment", *USDC_TO, "-y")
            again = await orders(capsys, config, "refund", OTHER_REF, "--payment", *USDC_TO)
    assert [line.split("  ")[2] for line in listed_before[1].splitlines()] == [
        f"overpaid payment #1 of 5.00 USDC by usdc ({intent}) is owed back",
        f"overpaid payment #2 of 5.00 USDC by usdc ({other_intent}) is owed back",
    ]
    assert whole[0] == 0 and whole[1].splitlines()[0] == (
        f"refund 15.00 USDC of the payment of {REF} (15.00 USDC by usdc, {intent}) through Circle"
    )
    assert [line.split("  ")[1] for line in listed_after[1].splitlines()] == [OTHER_REF]
    assert by_default == (
        1,
        "",
        f"order {REF} owes nothing back: its extra payments are refunded or being refunded"
        f" (itinerabot orders show {REF}); to refund the payment of the order itself, add"
        " --payment\n",
    )
    assert named == (
        1,
        "",
        f"nothing is left to refund of the overpaid payment #1 of {REF} (5.00 USDC): refunds on"
        f" {intent} take all 15.00 USDC received on it, 15.00 of it still pending at Circle"
        f" (itinerabot orders show {REF})\n",
    )
    assert part[0] == 0 and part[1].splitlines()[0] == (
        f"refund 5.00 USDC of the overpaid payment #2 of {OTHER_REF} (5.00 USDC by usdc,"
        f" {other_intent}) through Circle"
    )
    assert too_much == (
        1,
        "",
        f"15 USDC is more than is left to refund of the payment of {OTHER_REF}: 10.00"
        " (paid 15.00, refunded 5.00)\n",
    )
    assert rest[0] == 0 and rest[1].splitlines()[0] == (
        f"refund 10.00 USDC of the payment of {OTHER_REF} (15.00 USDC by usdc, {other_intent})"
        " through Circle"
    )
    assert again[0] == 1 and again[2].startswith(
        f"nothing is left to refund of the payment of {OTHER_REF} (15.00 USDC): refunds on"
        f" {other_intent} take all 15.00 USDC received on it"
    )
    assert circle_refunds(bot) == [
        (intent, "15.00"),
        (other_intent, "5.00"),
        (other_intent, "10.00"),
    ]


class Terminal:
    """The operator's terminal (`sys.stdin` for `input`): the answer to the prompt comes
    when the test gives it."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self._answers: queue.Queue[str] = queue.Queue()

    def readline(self, size: int = -1) -> str:
        self.asked.set()
        return self._answers.get(timeout=60)

    def answer(self, line: str) -> None:
        self._answers.put(line)


async def test_the_refund_made_is_the_one_confirmed(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.abc.Clock,
) -> None:
    """Finding 2: more USDC landed while the operator read the plan (5.00 owed back became
    10.00) and the command refunded the new 10.00 it never showed; now it refunds nothing."""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdin", terminal)
    answers: list[tuple[int, str, str]] = []
    async with running_bot(tmp_path, settings=bot_settings(tmp_path)) as bot:
        _, intent = await pay_too_much(bot, REF, CHAT)
        path = bot.settings.store.path
        async with on_loopback(bot.circle) as circle_url:
            config = config_file(tmp_path, raw_config(tmp_path, circle_base=circle_url))

            async def operator() -> None:
                answers.append(await orders(capsys, config, "refund", REF, *USDC_TO))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(operator)
                assert await trio.to_thread.run_sync(partial(terminal.asked.wait, 60))
                # the traveller sends 5.00 more to the intent; Circle tells the bot
                bot.circle.set_script(intent, (Step("complete", "overpaid", Decimal(2)),))
                bot.circle.advance(intent)
                body = encode(bot.sns.notification(bot.circle.notification_message(intent)))
                async with bot.web() as web:
                    assert (await web.post("/webhooks/circle", content=body)).status_code == 200
                await eventually(lambda: stored_extra_payments(path) == [(1, "overpaid", "10.00")])
                terminal.answer("y\n")
    ((code, out, err),) = answers
    assert out == (
        f"refund 5.00 USDC of the overpaid payment #1 of {REF} (5.00 USDC by usdc, {intent})"
        " through Circle\nrefund it? [y/N] "
    )
    assert (code, err) == (
        1,
        f"nothing refunded: the refund of {REF} changed since you confirmed it; run the command"
        " again\n",
    )
    assert bot.circle.refunds == {}
    assert stored_refunds(bot) == []


def paid_store(tmp_path: Path) -> Path:
    """A config whose store holds order REF paid 10.00 by card, as serve records it."""
    path = tmp_path / "bot.sqlite3"
    order_id = store_order(path, reference=REF)
    conn = connect(path)
    conn.execute("BEGIN IMMEDIATE")
    record_payment(conn, order_id, card_payment(), "stripe", START)
    conn.execute("COMMIT")
    conn.close()
    return config_file(tmp_path, raw_config(tmp_path))


@pytest.mark.parametrize(
    ("typed", "refused"),
    [
        ("1e30", "1E+30 USD is more than is left to refund of the payment of"),
        ("1" * 29, f"{'1' * 29} USD is more than is left to refund of the payment of"),
        ("4.005", "--amount 4.005 has more decimal places than the payment (10.00 USD)"),
        ("Infinity", "--amount Infinity must be a number more than zero"),
    ],
)
def test_a_mistyped_amount_is_one_line_and_refunds_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], typed: str, refused: str
) -> None:
    """Finding 3: `--amount 1e30` or a 29-digit amount printed decimal.InvalidOperation's
    traceback."""
    config = paid_store(tmp_path)
    code = main(["orders", "--config", str(config), "refund", REF, "--payment", "--amount", typed])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err.startswith(refused) and err.count("\n") == 1


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=amount_text)
def test_whatever_amount_is_typed_the_command_prints_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    """Finding 3: whatever follows --amount, the command answers with one line or the plan
    (then asks, and with no terminal to answer refunds nothing)."""
    config = tmp_path / "config.yaml"
    if not config.exists():
        paid_store(tmp_path)
    capsys.readouterr()
    code = main(["orders", "--config", str(config), "refund", REF, "--payment", f"--amount={text}"])
    out, err = capsys.readouterr()
    assert code == 1
    if err:
        assert out == "" and err.count("\n") == 1
    else:
        assert out.startswith("refund ") and out.endswith("nothing refunded\n")


def store_at_version(path: Path, version: int) -> None:
    """A store as a `serve` of schema `version` left it (WAL, closed)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for script in MIGRATIONS[: min(version, len(MIGRATIONS))]:
        conn.executescript(script)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()


@pytest.mark.parametrize("version", [1, len(MIGRATIONS) + 1])
def test_a_store_of_another_schema_is_refused_and_left_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: int
) -> None:
    """Finding 4: `orders resend` and `orders refund` migrated the live store (a newer CLI
    would upgrade the schema under an older running serve), and so did `render --order`."""
    raw = raw_config(tmp_path)
    path = Path(raw["store"]["path"])
    store_at_version(path, version)
    config = str(config_file(tmp_path, raw))
    before = path.read_bytes()
    commands = [
        ["orders", "--config", config],
        ["orders", "--config", config, "--json"],
        ["orders", "--config", config, "show", REF],
        ["orders", "--config", config, "resend", REF],
        ["orders", "--config", config, "refund", REF, "--payment", "--yes"],
        ["render", "--order", REF, "--config", config, "--out", str(tmp_path / "x.pdf")],
    ]
    refused = (
        f"store error: the store has schema version {version} and this program knows"
        f" {len(MIGRATIONS)}: run this version's `itinerabot serve` once to migrate it (or use"
        " the matching itinerabot)\n"
    )
    for command in commands:
        code = main(command)
        assert (code, *capsys.readouterr()) == (1, "", refused), command
    assert path.read_bytes() == before
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (version,)
    conn.close()
    assert not (tmp_path / "x.pdf").exists()


def supersede_on_lookup(app: ASGIApp, path: Path) -> ASGIApp:
    """Stripe as the command meets it, while the running bot, at that very moment, replaces
    refund #1 by one with a fresh key (`money.supersede_refund`), as its own retry does."""

    async def stripe(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) == ("GET", "/v1/refunds"):
            conn = connect(path)
            conn.execute("BEGIN IMMEDIATE")
            money.supersede_refund(conn, 1, datetime.now(UTC), "asked again by the bot")
            conn.execute("COMMIT")
            conn.close()
        await app(scope, receive, send)

    return stripe


async def test_a_refund_superseded_meanwhile_is_shown_as_the_one_that_replaced_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    """Finding 5: the command printed "failed: superseded by refund #2" for a refund that
    was only replaced meanwhile; it shows the refund that stands for it now."""
    async with running_bot(tmp_path, settings=bot_settings(tmp_path)) as bot:
        order_id, session_id = await usdc_then_card(bot)  # 10.00 USD by card owed back as #1
        payment_intent = bot.stripe.sessions[session_id]["payment_intent"]
        path = bot.settings.store.path
        # a day ago a command stored refund #1 and stopped before Stripe was asked
        conn = connect(path)
        conn.execute("BEGIN IMMEDIATE")
        money.begin_refund(
            conn,
            order_id=order_id,
            method=PaymentMethod.CARD,
            provider_ref=payment_intent,
            amount=Decimal("10.00"),
            currency="USD",
            now=datetime.now(UTC) - timedelta(hours=24),
            extra_payment_id=1,
        )
        conn.execute("COMMIT")
        conn.close()
        async with on_loopback(supersede_on_lookup(bot.stripe, path)) as stripe_url:
            config = config_file(tmp_path, raw_config(tmp_path, stripe_base=stripe_url))
            first = await orders(capsys, config, "refund", REF, "--yes")
            second = await orders(capsys, config, "refund", REF, "--yes")
    assert first[0] == 1 and first[1].splitlines() == [
        f"refund 10.00 USD of the second payment #1 of {REF} (10.00 USD by card,"
        f" {payment_intent}) through Stripe (asking again for refund #1)",
        "refund #2 of 10.00 USD (in place of refund #1): not answered yet; run the same command"
        " again to ask Stripe for it",
    ]
    assert second[0] == 0
    assert second[1].splitlines()[0].endswith("through Stripe (asking again for refund #2)")
    ((stripe_refund_id, _),) = bot.stripe.refunds.items()
    assert second[1].splitlines()[1] == (
        f"refund #2 of 10.00 USD: succeeded (Stripe refund {stripe_refund_id})"
    )
    assert [row[3] for row in stored_refunds(bot)] == ["failed", "succeeded"]


async def test_a_usdc_refund_pending_for_a_day_is_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    """Finding 5: Circle answers a refund pending and nothing looks it up yet; after 24 h
    the operator is told to check it."""
    async with running_bot(tmp_path, settings=bot_settings(tmp_path)) as bot:
        _, _, intent = await card_then_usdc(bot)
        async with on_loopback(bot.circle) as circle_url:
            config = config_file(tmp_path, raw_config(tmp_path, circle_base=circle_url))
            code, _, _ = await orders(capsys, config, "refund", REF, *USDC_TO, "--yes")
    assert code == 0
    ((circle_refund_id, _),) = bot.circle.refunds.items()
    conn = connect(bot.settings.store.path)
    (asked,) = conn.execute("SELECT created_at FROM refunds").fetchone()
    at = datetime.fromisoformat(asked)
    within, after = (needs_attention(conn, at + timedelta(hours=h)) for h in (24 - 1 / 60, 25))
    conn.close()
    assert within == []
    (pending,) = after
    assert (pending.kind, pending.reference, pending.at) == ("refund_pending", REF, at)
    assert pending.what == "refund #1 of 10.00 USDC by usdc pending at Circle for 25 h: check it"
    assert (
        pending.action
        == f"look up refund {circle_refund_id} of intent {intent} in Circle's dashboard"
    )


async def test_a_text_that_never_reached_a_delivered_order_leaves_the_list_after_a_week(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    """Finding 5: a failed text (no PDF) of a delivered order stayed listed for ever, as
    nothing can clear it; it is listed for a week after it failed."""
    async with bot_and_config(tmp_path) as (bot, _):
        _, session_id = await open_checkout(bot)
        usdc = bot.rt.payments.usdc
        assert usdc is not None
        await usdc.pay_with_usdc(CHAT, REF)
        intent = bot.circle.intent_ids()[-1]
        await deliver_card_payment(bot, session_id)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        bot.api.block(CHAT)  # then a second payment arrives: owed back, and not told
        await deliver_usdc_payment(bot, intent)
        path = bot.settings.store.path
        await eventually(lambda: _outbox_statuses(path)[-1] == "failed")
    conn = connect(path)
    (failed_at,) = conn.execute("SELECT first_failed_at FROM outbox WHERE status = 'failed'")
    at = datetime.fromisoformat(failed_at[0])
    week, later = (
        [i.kind for i in needs_attention(conn, at + d)]
        for d in (timedelta(days=7), timedelta(days=7, seconds=1))
    )
    conn.close()
    assert week == ["owed_back", "message"]
    assert later == ["owed_back"]  # the money is still owed back
