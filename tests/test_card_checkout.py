"""Card payments: the Checkout Session request, the signed webhook, the deep-link return."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import stripe
import trio

from itinerabot.models import OrderStatus
from itinerabot.store import card_sessions
from itinerabot.store.db import connect
from tests.harness import (
    CARD_REF,
    CHAT,
    STRIPE_WHSEC,
    Bot,
    Fakes,
    button,
    dump,
    eventually,
    open_checkout,
    running_bot,
    status_of,
    store_order,
    text_of,
)


async def post(bot: Bot, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with bot.web() as web:
        return await web.post("/webhooks/stripe", content=body, headers=headers)


def signed(
    event: dict[str, Any], secret: str = STRIPE_WHSEC, at: int | None = None
) -> tuple[bytes, dict[str, str]]:
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(
        payload, secret, at if at is not None else int(time.time())
    )
    return payload.encode(), {"Stripe-Signature": header, "Content-Type": "application/json"}


async def test_checkout_request_carries_the_order(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path) as bot:
        order_id, session_id = await open_checkout(bot)
        card = bot.rt.payments.card
        assert card is not None
        again = await card.pay_by_card(CHAT, CARD_REF)  # a double tap
    creates = [r for r in bot.stripe.requests if r.method == "POST"]
    assert len(creates) == 1
    form, headers = creates[0].form, creates[0].headers
    assert form["mode"] == "payment"
    assert form["client_reference_id"] == CARD_REF
    assert form["metadata"]["order_reference"] == CARD_REF
    item = form["line_items"][0]
    assert item["quantity"] == "1"
    assert item["price_data"]["currency"] == "usd"
    assert item["price_data"]["unit_amount"] == "1000"
    assert CARD_REF in item["price_data"]["product_data"]["name"]
    expires = int(form["expires_at"])
    assert 30 * 60 <= expires - int(bot.stripe.sessions[session_id]["created"]) <= 24 * 3600
    assert headers["idempotency-key"].startswith("itinerabot-")
    for key in ("success_url", "cancel_url"):
        m = re.fullmatch(r"https://t\.me/itinerabot_sandbox_bot\?start=(.+)", form[key])
        assert m and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", m.group(1)), form[key]
    assert button(again[0]).text == "Pay 10.00 USD by card"
    conn = connect(bot.settings.store.path)
    stored = card_sessions.latest(conn, order_id)
    assert stored is not None and stored.idempotency_key == headers["idempotency-key"]
    assert stored.params["expires_at"] == expires


async def test_a_retry_after_a_crash_sends_the_same_request(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The key and parameters were stored, then the process died before Stripe answered."""
    fakes = Fakes.make()
    # the first tap: Stripe fails the request and both network retries (max_network_retries=2)
    fakes.stripe.fail_next(status=500, count=3)
    async with running_bot(tmp_path, fakes) as bot:
        store_order(bot.settings.store.path, reference=CARD_REF)
        card = bot.rt.payments.card
        assert card is not None
        first = await card.pay_by_card(CHAT, CARD_REF)
        assert "not available" in text_of(first[0])
        await card.pay_by_card(CHAT, CARD_REF)
    creates = [r for r in fakes.stripe.requests if r.method == "POST"]
    keys = {r.headers["idempotency-key"] for r in creates}
    assert len(keys) == 1
    assert all(r.form == creates[0].form for r in creates)
    assert len(fakes.stripe.sessions) == 1


async def test_completed_event_sends_one_pdf_however_often_it_comes(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path) as bot:
        order_id, session_id = await open_checkout(bot)
        completed = bot.stripe.complete(session_id)
        async with bot.web() as web:
            answers = await bot.stripe.deliver_event(
                completed, "http://bot.test/webhooks/stripe", STRIPE_WHSEC, client=web, times=3
            )
        # a second event for the same session, and the traveller coming back through the link
        body, headers = signed(bot.stripe.async_payment_succeeded(session_id))
        assert (await post(bot, body, headers)).status_code == 200
        card = bot.rt.payments.card
        assert card is not None
        await card.deep_link_return(CHAT, f"ok_{CARD_REF}")
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await trio.sleep(60)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len(bot.api.sent_documents(CHAT)) == 1
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED


async def test_deep_link_return_races_the_webhook(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path) as bot:
        _, session_id = await open_checkout(bot)
        body, headers = signed(bot.stripe.complete(session_id))
        card = bot.rt.payments.card
        assert card is not None
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(post, bot, body, headers)
                nursery.start_soon(card.deep_link_return, CHAT, f"ok_{CARD_REF}")
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await trio.sleep(60)
    assert len(bot.api.sent_documents(CHAT)) == 1


async def test_deep_link_before_payment_says_not_confirmed(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path) as bot:
        order_id, _ = await open_checkout(bot)
        card = bot.rt.payments.card
        assert card is not None
        reply = await card.deep_link_return(CHAT, f"ok_{CARD_REF}")
    assert "not confirmed yet" in text_of(reply[0])
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.AWAITING_PAYMENT


async def test_forged_and_malformed_webhooks_get_400_and_change_nothing(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path) as bot:
        order_id, session_id = await open_checkout(bot)
        event = bot.stripe.complete(session_id)
        body, headers = signed(event)
        before = dump(bot.settings.store.path)
        forged = body.replace(b'"paid"', b'"PAID"')
        cases = {
            "forged body": (forged, headers),
            "wrong secret": signed(event, secret="whsec_not_ours"),
            "stale timestamp": signed(event, at=int(time.time()) - 301),
            "missing header": (body, {"Content-Type": "application/json"}),
            "garbage header": (body, {"Stripe-Signature": "t=abc,v1=zz"}),
            "not JSON": signed_raw(b"this is not json"),
        }
        answers = {name: (await post(bot, b, h)).status_code for name, (b, h) in cases.items()}
        after = dump(bot.settings.store.path)
        await trio.sleep(30)
    assert answers == dict.fromkeys(cases, 400)
    assert after == before
    assert bot.api.sent_documents(CHAT) == []
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.AWAITING_PAYMENT


def signed_raw(payload: bytes) -> tuple[bytes, dict[str, str]]:
    header = stripe.WebhookSignature.generate_signature_header(
        payload.decode(), STRIPE_WHSEC, int(time.time())
    )
    return payload, {"Stripe-Signature": header}


async def test_expired_after_completed_does_not_undo_a_paid_order(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path) as bot:
        order_id, session_id = await open_checkout(bot)
        expired = bot.stripe.event(
            "checkout.session.expired", {**bot.stripe.sessions[session_id], "status": "expired"}
        )
        completed = bot.stripe.complete(session_id)
        for event in (completed, expired):
            body, headers = signed(event)
            assert (await post(bot, body, headers)).status_code == 200
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await trio.sleep(30)
        texts = bot.api.sent_texts(CHAT)
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED
    assert not any("expired" in t for t in texts)


async def test_expired_unpaid_session_offers_a_new_payment(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path) as bot:
        order_id, session_id = await open_checkout(bot)
        body, headers = signed(bot.stripe.expire(session_id))
        assert (await post(bot, body, headers)).status_code == 200
        await eventually(lambda: any("expired" in t for t in bot.api.sent_texts(CHAT)))
        keyboard = bot.api.last_keyboard(CHAT)
        unknown = signed(bot.stripe.event("customer.created", {"id": "cus_1"}))
        assert (await post(bot, *unknown)).status_code == 200
    assert (
        keyboard is not None
        and keyboard.data_for("Pay 10.00 USD by card") == f"pay:card:{CARD_REF}"
    )
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.AWAITING_PAYMENT
