"""The sandbox fakes (Telegram Bot API, Stripe, Circle) driven by the real client libraries.

Telegram through python-telegram-bot's `Bot`, Stripe through `stripe.StripeClient`, Circle through
httpx with responses validated against Circle's OpenAPI spec; in process and on loopback.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import stripe
import telegram
import trio
import trio.testing
from stripe.params.checkout import SessionCreateParams
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.request import HTTPXRequest

from sandbox.circle import (
    FakeCircle,
    expired_script,
    never_paid_script,
    paid_script,
    underpaid_then_paid_script,
)
from sandbox.serve import (
    InProcessTransport,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    serve_app,
    wait_for,
)
from sandbox.stripe import FakeStripe, decode_form, in_process_http_client
from sandbox.telegram import FakeBotApi
from tests.circle_spec import validate, validate_operation

CHAT = 4242


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns when RetryAfter.retry_after is read as an int; opt in to timedelta.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@asynccontextmanager
async def bot_for(
    api: FakeBotApi, *, base: str | None = None, token: str | None = None
) -> AsyncIterator[telegram.Bot]:
    """A real PTB Bot on `api`: in process, or on loopback at `base`. Never Bot.initialize()."""
    kwargs: dict[str, Any] = {} if base else {"transport": InProcessTransport(api)}
    root = base or "http://fake"
    request = HTTPXRequest(httpx_kwargs=kwargs)
    updates_request = HTTPXRequest(httpx_kwargs=dict(kwargs))
    await request.initialize()
    await updates_request.initialize()
    try:
        yield telegram.Bot(
            token or api.token,
            base_url=f"{root}/bot",
            base_file_url=f"{root}/file/bot",
            request=request,
            get_updates_request=updates_request,
        )
    finally:
        await request.shutdown()
        await updates_request.shutdown()


# ---------------------------------------------------------------- Telegram


async def test_get_me_answers_the_bot_user() -> None:
    api = FakeBotApi()
    with trio.fail_after(5):
        async with bot_for(api) as bot:
            me = await bot.get_me()
    assert me.is_bot and me.username == "itinerabot_sandbox_bot"
    assert api.violations == []


async def test_wrong_token_is_refused_as_invalid() -> None:
    api = FakeBotApi()
    with trio.fail_after(5):
        async with bot_for(api, token="1:AAwrongwrongwrongwrongwrong") as bot:
            with pytest.raises(InvalidToken):
                await bot.get_me()


async def test_get_updates_offset_confirms_and_drops_for_ever() -> None:
    api = FakeBotApi()
    first = api.user_command(CHAT, "/start")["update_id"]
    second = api.user_text(CHAT, "LHR to JFK")["update_id"]
    third = api.user_text(CHAT, "tomorrow")["update_id"]
    with trio.fail_after(5):
        async with bot_for(api) as bot:
            assert [u.update_id for u in await bot.get_updates()] == [first, second, third]
            # Nothing is confirmed until a later call passes a higher offset.
            assert [u.update_id for u in await bot.get_updates()] == [first, second, third]
            assert [u.update_id for u in await bot.get_updates(offset=third)] == [third]
            assert await bot.get_updates(offset=third + 1) == ()
            assert await bot.get_updates() == ()  # confirmed updates never come back
            fourth = api.user_text(CHAT, "hello again")["update_id"]
            updates = await bot.get_updates(limit=5)
    assert [u.update_id for u in updates] == [fourth]
    assert updates[0].message is not None and updates[0].message.text == "hello again"
    assert api.pending_updates == 1


async def test_long_poll_waits_out_its_timeout_exactly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeBotApi()
    async with bot_for(api) as bot:
        start = trio.current_time()
        with trio.fail_after(60):
            assert await bot.get_updates(timeout=30) == ()
    assert trio.current_time() - start == 30


async def test_long_poll_returns_when_an_update_arrives(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeBotApi()
    got: list[telegram.Update] = []

    async with bot_for(api) as bot:
        start = trio.current_time()

        async def poll() -> None:
            got.extend(await bot.get_updates(timeout=50))

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(poll)
                await trio.sleep(7)
                api.user_command(CHAT, "/start")
    assert trio.current_time() - start == 7
    assert got[0].message is not None and got[0].message.text == "/start"
    entities = got[0].message.entities
    assert entities[0].type == "bot_command" and entities[0].length == len("/start")


async def test_a_second_poller_ends_the_first_with_conflict(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeBotApi()
    async with bot_for(api) as bot, bot_for(api) as other:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:

                async def first_poller() -> None:
                    with pytest.raises(Conflict):
                        await bot.get_updates(timeout=50)

                nursery.start_soon(first_poller)
                await trio.sleep(1)
                assert await other.get_updates(timeout=2) == ()


async def test_allowed_updates_drops_unwanted_kinds() -> None:
    api = FakeBotApi()
    api.user_text(CHAT, "a message")
    with trio.fail_after(5):
        async with bot_for(api) as bot:
            sent = await bot.send_message(
                CHAT,
                "Pick one",
                reply_markup=telegram.InlineKeyboardMarkup(
                    [[telegram.InlineKeyboardButton("Go", callback_data="go")]]
                ),
            )
            api.user_press(CHAT, sent.message_id, "go")
            updates = await bot.get_updates(allowed_updates=["callback_query"])
    assert [u.callback_query.data for u in updates if u.callback_query] == ["go"]
    assert len(updates) == 1


async def test_keyboard_press_and_edits_behave_like_telegram() -> None:
    api = FakeBotApi()
    markup = telegram.InlineKeyboardMarkup(
        [
            [telegram.InlineKeyboardButton("Pay by card", callback_data="pay:card:17")],
            [telegram.InlineKeyboardButton("Pay in USDC", callback_data="pay:usdc:17")],
        ]
    )
    with trio.fail_after(5):
        async with bot_for(api) as bot:
            api.user_command(CHAT, "/start")
            sent = await bot.send_message(CHAT, "How would you like to pay?", reply_markup=markup)
            keyboard = api.last_keyboard(CHAT)
            assert keyboard is not None and keyboard.message_id == sent.message_id
            assert keyboard.labels() == ["Pay by card", "Pay in USDC"]

            update = api.press_button(CHAT, "Pay in USDC")
            (received,) = await bot.get_updates(offset=update["update_id"])
            query = received.callback_query
            assert query is not None and query.data == "pay:usdc:17"
            assert isinstance(query.message, telegram.Message)
            assert query.message.message_id == sent.message_id

            assert await bot.answer_callback_query(query.id, text="One moment")
            with pytest.raises(BadRequest, match=r"(?i)query is too old"):
                await bot.answer_callback_query(query.id)

            await bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=None)
            assert api.last_keyboard(CHAT) is None
            with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
                await bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=None)
            with pytest.raises(LookupError):
                api.user_press(CHAT, sent.message_id, "pay:card:17")  # the buttons are gone

    assert api.sent_texts(CHAT) == ["How would you like to pay?"]
    assert [str(line) for line in api.chat_log(CHAT)] == [
        "traveller │ /start",
        "      bot │ How would you like to pay?",
        "      bot │ [buttons: Pay by card | Pay in USDC]",
        "traveller │ [pressed: Pay in USDC]",
        "      bot │ [buttons removed]",
    ]
    assert api.violations == []


async def test_send_document_stores_the_upload() -> None:
    api = FakeBotApi()
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
    with trio.fail_after(5):
        async with bot_for(api) as bot:
            sent = await bot.send_document(
                CHAT, pdf, filename="itinerary-LHR-JFK.pdf", caption="Your itinerary"
            )
            document = sent.document
            assert document is not None
            assert (document.file_name, document.mime_type) == (
                "itinerary-LHR-JFK.pdf",
                "application/pdf",
            )
            assert document.file_size == len(pdf)
            downloaded = await (await bot.get_file(document.file_id)).download_as_bytearray()
    assert bytes(downloaded) == pdf
    (recorded,) = api.sent_documents(CHAT)
    assert (recorded.file_name, recorded.data, recorded.caption) == (
        "itinerary-LHR-JFK.pdf",
        pdf,
        "Your itinerary",
    )
    assert api.calls_to("sendDocument")[0].files["document"].filename == "itinerary-LHR-JFK.pdf"
    assert api.transcript(CHAT).endswith(
        f"[document itinerary-LHR-JFK.pdf, {len(pdf)} bytes] Your itinerary"
    )


async def test_every_answer_and_update_has_the_spec_shape() -> None:
    api = FakeBotApi()
    api.user_command(CHAT, "/start")
    api.user_photo(CHAT, caption="my passport?")
    api.group_text(-100123, "hi all", user={"id": 77, "is_bot": False, "first_name": "Ana"})
    with trio.fail_after(5):
        async with bot_for(api) as bot:
            await bot.set_my_commands([telegram.BotCommand("start", "Plan a trip")])
            await bot.send_photo(CHAT, b"\x89PNG\r\n\x1a\n" + bytes(8) + bytes(8), caption="QR")
            sent = await bot.send_message(
                CHAT,
                "<b>Total</b>: 12.00 USD",
                parse_mode="HTML",
                reply_markup=telegram.InlineKeyboardMarkup(
                    [[telegram.InlineKeyboardButton("OK", callback_data="ok")]]
                ),
            )
            assert sent.text == "Total: 12.00 USD"
            api.user_press(CHAT, sent.message_id, "ok")
            await bot.edit_message_text("Paid", CHAT, sent.message_id)
            await bot.get_updates()
            await bot.get_webhook_info()
            await bot.delete_webhook()
            await bot.delete_my_commands()
    for call in api.calls:
        returns = api.spec.methods[call.method]["returns"]
        assert api.spec.check(call.result, returns, call.method) == [], call.method
    assert api.violations == []


@pytest.mark.parametrize(
    ("fault", "error", "text"),
    [
        ({"status": 429, "retry_after": 7}, RetryAfter, "Flood control"),
        ({"status": 403}, Forbidden, "blocked by the user"),
        ({"status": 409}, Conflict, "terminated by other getUpdates"),
        ({"status": 500}, NetworkError, "Internal Server Error"),
        ({"drop": True}, NetworkError, "(?i)connection"),
    ],
)
async def test_injected_faults_reach_ptb_as_its_errors(
    fault: dict[str, Any], error: type[Exception], text: str
) -> None:
    api = FakeBotApi()
    api.fail_next("sendMessage", **fault)
    with trio.fail_after(5):
        async with bot_for(api) as bot:
            with pytest.raises(error, match=text) as caught:
                await bot.send_message(CHAT, "Your order")
            await bot.send_message(CHAT, "Your order")  # count=1: the next call goes through
    if isinstance(caught.value, RetryAfter):
        assert caught.value.retry_after == timedelta(seconds=7)
    assert api.sent_texts(CHAT) == ["Your order"]  # the faulted call had no effect


async def test_a_blocked_chat_answers_forbidden() -> None:
    api = FakeBotApi()
    api.block(CHAT)
    with trio.fail_after(5):
        async with bot_for(api) as bot:
            with pytest.raises(Forbidden):
                await bot.send_document(CHAT, b"%PDF", filename="x.pdf")


async def test_unknown_fields_methods_and_bad_markup_are_violations() -> None:
    api = FakeBotApi()
    with trio.fail_after(5):
        async with bot_for(api) as bot:
            with pytest.raises(BadRequest, match=r"(?i)no such field"):
                await bot.send_message(CHAT, "hi", api_kwargs={"colour": "red"})
            with pytest.raises(BadRequest, match=r"(?i)no such method"):
                await bot.do_api_request("sendTelepathy", api_kwargs={"chat_id": CHAT})
            with pytest.raises(BadRequest, match=r"(?i)can.t parse entities"):
                await bot.send_message(CHAT, "<blink>now</blink>", parse_mode="HTML")
            with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
                await bot.send_message(
                    CHAT,
                    "too much data",
                    reply_markup=telegram.InlineKeyboardMarkup(
                        [[telegram.InlineKeyboardButton("x", callback_data="x" * 65)]]
                    ),
                )
    assert api.violations == [
        "sendMessage.colour: no such field",
        "sendTelepathy: no such method in Bot API " + api.spec.version,
    ]
    assert api.sent_texts(CHAT) == []


async def test_loopback_server_serves_ptb_and_drops_connections() -> None:
    api = FakeBotApi()
    shutdown = trio.Event()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            base = await nursery.start(functools.partial(serve_app, api, shutdown=shutdown))
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base)
            async with bot_for(api, base=base) as bot:
                assert (await bot.get_me()).username == "itinerabot_sandbox_bot"
                api.fail_next("sendMessage", drop=True)
                with pytest.raises(NetworkError, match="RemoteProtocolError"):
                    await bot.send_message(CHAT, "lost")
                sent = await bot.send_message(CHAT, "Welcome aboard")
            shutdown.set()  # serve_app returns on its own: the nursery closes
    assert sent.text == "Welcome aboard"
    assert api.sent_texts(CHAT) == ["Welcome aboard"]


async def test_wait_for_polls_on_trio_time(autojump_clock: trio.testing.MockClock) -> None:
    api = FakeBotApi()

    async def later() -> None:
        await trio.sleep(2.5)  # between two polls, so which task wakes first cannot matter
        api.user_text(CHAT, "hi")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(later)
        start = trio.current_time()
        await wait_for(lambda: api.pending_updates == 1, 5, interval=1)
        assert trio.current_time() - start == 3
    with pytest.raises(trio.TooSlowError):
        await wait_for(lambda: api.pending_updates == 2, 5, interval=1)


# ---------------------------------------------------------------- Telegram Stars


def stars_price(amount: int = 250) -> list[telegram.LabeledPrice]:
    return [telegram.LabeledPrice("Itinerary PDF", amount)]


async def send_stars_invoice(bot: telegram.Bot, **changes: Any) -> telegram.Message:
    """An invoice shaped as the bot sends one, with `changes` to its arguments."""
    kwargs: dict[str, Any] = {
        "chat_id": CHAT,
        "title": "Flight itinerary IB-7K3Q9P",
        "description": "PDF itinerary of the flights you entered: FRA → JFK.",
        "payload": "IB-7K3Q9P:1",
        "currency": "XTR",
        "prices": stars_price(),
        "provider_token": "",
    }
    kwargs.update(changes)
    return await bot.send_invoice(**kwargs)


async def test_a_stars_invoice_is_sent_with_its_invoice_shape() -> None:
    api = FakeBotApi()
    with trio.fail_after(5):
        async with bot_for(api) as bot:
            sent = await send_stars_invoice(bot, title="T" * 32, payload="é" * 64)
    assert sent.invoice is not None
    assert (sent.invoice.currency, sent.invoice.total_amount) == ("XTR", 250)
    assert api.last_invoice(CHAT) == (sent.message_id, api.invoices[(CHAT, sent.message_id)])
    assert api.transcript(CHAT) == f"      bot │ [invoice: {'T' * 32} · 250 XTR]"
    (call,) = api.calls_to("sendInvoice")
    assert api.spec.check(call.result, api.spec.methods["sendInvoice"]["returns"], "sent") == []
    assert api.violations == []


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        (
            {"prices": [*stars_price(200), telegram.LabeledPrice("Fee", 50)]},
            "STARS_INVOICE_INVALID",
        ),
        ({"provider_token": "284685063:TEST:NjQ0ZjE0ZTA"}, "STARS_INVOICE_INVALID"),
        ({"max_tip_amount": 50}, "STARS_INVOICE_INVALID"),
        ({"payload": "é" * 64 + "a"}, "INVOICE_PAYLOAD_INVALID"),  # 65 characters, 129 bytes
        ({"title": "T" * 33}, "title must be 1-32 characters"),
        ({"prices": stars_price(0)}, "CURRENCY_TOTAL_AMOUNT_INVALID"),
        ({"currency": "USD", "prices": stars_price(1000)}, "PAYMENT_PROVIDER_INVALID"),
    ],
)
async def test_a_wrongly_shaped_stars_invoice_is_refused_like_telegram(
    changes: dict[str, Any], error: str
) -> None:
    api = FakeBotApi()
    with trio.fail_after(5):
        async with bot_for(api) as bot:
            with pytest.raises(BadRequest, match="(?i)" + re.escape(error)):
                await send_stars_invoice(bot, **changes)
    assert api.invoices == {} and api.chat_log(CHAT) == []
    assert api.violations == []  # the spec's shapes were right: Telegram's rules refused it


async def pre_checkout(bot: telegram.Bot, offset: int = 0) -> telegram.PreCheckoutQuery:
    """The next pre-checkout query the bot receives (long-polls for it)."""
    while True:
        for update in await bot.get_updates(offset=offset, timeout=30):
            offset = update.update_id + 1
            if update.pre_checkout_query is not None:
                return update.pre_checkout_query


async def test_paying_an_invoice_asks_pre_checkout_then_reports_the_payment(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeBotApi()
    charges: list[str | None] = []
    async with bot_for(api) as bot:
        sent = await send_stars_invoice(bot)
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:

                async def traveller_pays() -> None:
                    charges.append(await api.pay_invoice(CHAT, sent.message_id))

                nursery.start_soon(traveller_pays)
                query = await pre_checkout(bot)
                asked = trio.current_time()
                await trio.sleep(3)  # the bot checks the order
                assert await bot.answer_pre_checkout_query(query.id, ok=True)
            paid_at = trio.current_time()
            (update,) = await bot.get_updates(offset=-1)
    assert paid_at - asked == 3  # charged as soon as the bot said ok
    assert (query.currency, query.total_amount, query.invoice_payload) == (
        "XTR",
        250,
        "IB-7K3Q9P:1",
    )
    assert query.from_user.id == CHAT
    payment = update.message.successful_payment if update.message else None
    assert payment is not None
    assert (payment.currency, payment.total_amount, payment.invoice_payload) == (
        "XTR",
        250,
        "IB-7K3Q9P:1",
    )
    assert charges == [payment.telegram_payment_charge_id]
    assert api.star_charges == {
        payment.telegram_payment_charge_id: {"user_id": CHAT, "amount": 250, "refunded": False}
    }
    for call in api.calls_to("getUpdates"):
        assert api.spec.check(call.result, ["Array of Update"], "getUpdates") == []
    assert api.violations == []


async def test_a_pre_checkout_answer_after_10_seconds_is_too_old(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeBotApi()
    charges: list[str | None] = []
    async with bot_for(api) as bot:
        sent = await send_stars_invoice(bot)
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:

                async def traveller_pays() -> None:
                    charges.append(await api.pay_invoice(CHAT, sent.message_id))

                nursery.start_soon(traveller_pays)
                query = await pre_checkout(bot)
                asked = trio.current_time()
            assert trio.current_time() - asked == 10  # Telegram gave up at 10 s exactly
            with pytest.raises(BadRequest, match=r"(?i)query is too old"):
                await bot.answer_pre_checkout_query(query.id, ok=True)
            updates = await bot.get_updates(timeout=1)
    assert charges == [None]
    assert api.star_charges == {}
    # the query was all: no successful_payment followed
    assert [u.pre_checkout_query is not None for u in updates] == [True]
    assert api.chat_log(CHAT)[-1].what == "[purchase cancelled: no answer in 10 s]"


async def test_a_refusal_without_error_message_is_refused_and_the_query_stays_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeBotApi()
    charges: list[str | None] = []
    async with bot_for(api) as bot:
        sent = await send_stars_invoice(bot)
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:

                async def traveller_pays() -> None:
                    charges.append(await api.pay_invoice(CHAT, sent.message_id))

                nursery.start_soon(traveller_pays)
                query = await pre_checkout(bot)
                with pytest.raises(BadRequest, match=r"(?i)error_message is required"):
                    await bot.answer_pre_checkout_query(query.id, ok=False)
                assert await bot.answer_pre_checkout_query(
                    query.id, ok=False, error_message="Order IB-7K3Q9P is already paid."
                )
    assert charges == [None]
    assert api.star_charges == {}
    answer = api.pre_checkout_answers[query.id]
    assert answer is not None and answer["error_message"] == "Order IB-7K3Q9P is already paid."
    assert api.chat_log(CHAT)[-1].what == "[checkout refused: Order IB-7K3Q9P is already paid.]"


async def test_a_star_payment_is_refunded_once() -> None:
    api = FakeBotApi()
    update = api.successful_payment(CHAT, payload="IB-7K3Q9P:1", amount=250)
    charge = update["message"]["successful_payment"]["telegram_payment_charge_id"]
    with trio.fail_after(5):
        async with bot_for(api) as bot:
            with pytest.raises(BadRequest, match=r"(?i)CHARGE_NOT_FOUND"):
                await bot.refund_star_payment(CHAT + 1, charge)  # not the payer
            assert await bot.refund_star_payment(CHAT, charge)
            with pytest.raises(BadRequest, match=r"(?i)CHARGE_ALREADY_REFUNDED"):
                await bot.refund_star_payment(CHAT, charge)
    assert api.star_charges == {charge: {"user_id": CHAT, "amount": 250, "refunded": True}}
    assert [c.status for c in api.calls_to("refundStarPayment")] == [400, 200, 400]
    assert api.violations == []


# ---------------------------------------------------------------- Stripe

# stripe 16's HTTPXClient passes a str body as `data=`, which httpx 0.28 deprecates.
stripe_data_warning = pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning"
)


def checkout_params(fake: FakeStripe, order: str = "ord_17") -> SessionCreateParams:
    return {
        "mode": "payment",
        "client_reference_id": order,
        "metadata": {"order": order},
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 1200,
                    "product_data": {"name": "Flight itinerary LHR-JFK"},
                },
            }
        ],
        "success_url": "https://t.me/itinerabot_sandbox_bot",
        "expires_at": int(fake.clock()) + 3600,
    }


def stripe_client(base: str, http_client: stripe.HTTPXClient | None = None) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_sandbox",
        http_client=http_client or stripe.HTTPXClient(),
        base_addresses={"api": base},
    )


@stripe_data_warning
async def test_stripe_in_process_create_retrieve_and_idempotency() -> None:
    fake = FakeStripe()
    client = stripe_client("http://stripe.fake", in_process_http_client(fake))
    params = checkout_params(fake)
    with trio.fail_after(5):
        session = await client.v1.checkout.sessions.create_async(params, {"idempotency_key": "k1"})
        again = await client.v1.checkout.sessions.create_async(params, {"idempotency_key": "k1"})
        with pytest.raises(stripe.IdempotencyError):
            await client.v1.checkout.sessions.create_async(
                checkout_params(fake, "ord_18"), {"idempotency_key": "k1"}
            )
        fetched = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert again.id == session.id == fetched.id and session.id.startswith("cs_test_")
    assert (fetched.status, fetched.payment_status, fetched.payment_intent) == (
        "open",
        "unpaid",
        None,
    )
    assert fetched.amount_total == 1200 and fetched.currency == "usd"
    assert fetched.client_reference_id == "ord_17"
    assert fetched.metadata is not None and fetched.metadata.to_dict() == {"order": "ord_17"}
    assert fetched.url is not None and session.id in fetched.url
    first = fake.requests[0]
    assert first.headers["authorization"] == "Bearer sk_test_sandbox"
    assert first.headers["idempotency-key"] == "k1"
    assert first.form["line_items"][0]["price_data"]["currency"] == "usd"
    assert first.form["line_items"][0]["price_data"]["product_data"]["name"].startswith("Flight")
    assert first.form["metadata"] == {"order": "ord_17"}
    assert len(fake.sessions) == 1


@stripe_data_warning
async def test_stripe_refuses_bad_keys_unknown_params_and_injected_faults() -> None:
    fake = FakeStripe()
    good = stripe_client("http://stripe.fake", in_process_http_client(fake))
    bad = stripe.StripeClient(
        "sk_live_oops",
        http_client=in_process_http_client(fake),
        base_addresses={"api": "http://stripe.fake"},
    )
    with trio.fail_after(5):
        with pytest.raises(stripe.AuthenticationError):
            await bad.v1.checkout.sessions.create_async(checkout_params(fake))
        with pytest.raises(stripe.InvalidRequestError, match="unknown parameter: colour"):
            unknown: Any = {**checkout_params(fake), "colour": "red"}
            await good.v1.checkout.sessions.create_async(unknown)
        with pytest.raises(stripe.InvalidRequestError, match=r"No such checkout\.session"):
            await good.v1.checkout.sessions.retrieve_async("cs_test_missing")
        fake.fail_next(status=429)
        with pytest.raises(stripe.RateLimitError):
            await good.v1.checkout.sessions.create_async(checkout_params(fake))
        fake.fail_next(status=500)
        with pytest.raises(stripe.APIError):
            await good.v1.checkout.sessions.create_async(checkout_params(fake))
    assert fake.sessions == {}


@stripe_data_warning
async def test_stripe_over_loopback() -> None:
    fake = FakeStripe()
    http_client = stripe.HTTPXClient()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            base = await nursery.start(serve_app, fake)
            client = stripe_client(base, http_client)
            session = await client.v1.checkout.sessions.create_async(
                checkout_params(fake), {"idempotency_key": "loop-1"}
            )
            fake.complete(session.id)
            fetched = await client.v1.checkout.sessions.retrieve_async(session.id)
            await http_client.close_async()  # type: ignore[no-untyped-call]
            nursery.cancel_scope.cancel()
    assert fetched.status == "complete" and fetched.payment_status == "paid"
    assert fetched.payment_intent is not None and str(fetched.payment_intent).startswith("pi_")


async def test_completed_session_event_is_delivered_signed() -> None:
    fake = FakeStripe()
    received: list[tuple[bytes, str]] = []

    async def webhook(scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        received.append((body, header(scope, "stripe-signature") or ""))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    fake.sessions["cs_test_x"] = {"id": "cs_test_x", "status": "open", "object": "x"}
    event = fake.complete("cs_test_x")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(webhook)) as client:
        responses = await fake.deliver_event(
            event, "http://bot/webhooks/stripe", "whsec_test", client=client, times=2
        )
    assert [r.status_code for r in responses] == [200, 200]
    for body, signature in received:
        verified = stripe.Webhook.construct_event(body, signature, "whsec_test")
        assert verified.id == event["id"] and verified.type == "checkout.session.completed"
        assert verified.data.object.payment_status == "paid"
    assert event["object"] == "event" and event["livemode"] is False
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(received[0][0], received[0][1], "whsec_other")
    expired = FakeStripe()
    expired.sessions["cs_test_y"] = {"id": "cs_test_y", "status": "open"}
    assert expired.expire("cs_test_y")["type"] == "checkout.session.expired"


def test_decode_form_builds_nested_dicts_and_lists() -> None:
    encoded = (
        "line_items[0][price_data][currency]=usd&line_items[1][quantity]=2"
        "&metadata[order]=ord_1&expand[0]=payment_intent&mode=payment"
    )
    assert decode_form(encoded) == {
        "line_items": [{"price_data": {"currency": "usd"}}, {"quantity": "2"}],
        "metadata": {"order": "ord_1"},
        "expand": ["payment_intent"],
        "mode": "payment",
    }


# ---------------------------------------------------------------- Circle

INTENT_REQUEST = {
    "idempotencyKey": "ba943ff1-ca16-49b2-ba55-1057e70ca5c7",
    "amount": {"amount": "12.00", "currency": "USD"},
    "settlementCurrency": "USD",
    "paymentMethods": [{"type": "blockchain", "chain": "ETH"}],
}
AUTH = {"Authorization": "Bearer SAND_API_KEY:abc:def"}
FIXED_NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def circle_client(fake: FakeCircle, timeout: float = 10) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=InProcessTransport(fake),
        base_url="https://api-sandbox.circle.com",
        headers=AUTH,
        timeout=timeout,
    )


async def create_intent(client: httpx.AsyncClient, key: str | None = None) -> dict[str, Any]:
    body = {**INTENT_REQUEST, "idempotencyKey": key or INTENT_REQUEST["idempotencyKey"]}
    validate_operation("/v1/paymentIntents", "post", body)
    response = await client.post("/v1/paymentIntents", json=body)
    assert response.status_code == 201
    validate_operation("/v1/paymentIntents", "post", response.json(), response=201)
    data: dict[str, Any] = response.json()["data"]
    return data


async def get_intent(client: httpx.AsyncClient, intent_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/paymentIntents/{intent_id}")
    assert response.status_code == 200
    validate_operation("/v1/paymentIntents/{id}", "get", response.json(), response=200)
    data: dict[str, Any] = response.json()["data"]
    validate("PaymentIntent", data)
    return data


def latest(intent: dict[str, Any]) -> tuple[str, str | None]:
    entry = max(intent["timeline"], key=lambda e: e["time"])
    return entry["status"], entry.get("context")


async def test_circle_intent_follows_the_paid_script() -> None:
    fake = FakeCircle(clock=lambda: FIXED_NOW, default_script=paid_script(paid_after=3))
    with trio.fail_after(5):
        async with circle_client(fake) as client:
            created = await create_intent(client)
            validate("PaymentIntent", created)
            assert "address" not in created["paymentMethods"][0]
            assert [e["status"] for e in created["timeline"]] == ["created"]
            seen = [await get_intent(client, created["id"]) for _ in range(3)]
            again = await create_intent(client)  # same idempotencyKey: same intent
    assert again["id"] == created["id"] and len(fake.intent_ids()) == 1
    pending, still_pending, paid = seen
    assert latest(pending) == ("pending", None)
    assert re.fullmatch(r"0x[0-9a-f]{40}", pending["paymentMethods"][0]["address"])
    assert latest(still_pending) == ("pending", None)
    assert latest(paid) == ("complete", "paid")
    assert paid["amountPaid"] == {"amount": "12.00", "currency": "USD"}
    assert [e["status"] for e in paid["timeline"]] == ["complete", "pending", "created"]
    assert paid["timeline"][0]["time"] == "2026-03-01T12:00:00.000000Z"
    assert fake.gets[created["id"]] == 3 and fake.requests_total == 5


@pytest.mark.parametrize(
    ("script", "checks", "final", "paid"),
    [
        (underpaid_then_paid_script(), 4, ("complete", "paid"), "12.00"),
        (underpaid_then_paid_script(), 2, ("pending", "underpaid"), "6.00"),
        (expired_script(expired_after=2), 2, ("expired", None), "0.00"),
        (never_paid_script(), 9, ("pending", None), "0.00"),
    ],
)
async def test_circle_alternative_scripts(
    script: tuple[Any, ...], checks: int, final: tuple[str, str | None], paid: str
) -> None:
    fake = FakeCircle()
    fake.script_next(script)
    with trio.fail_after(5):
        async with circle_client(fake) as client:
            created = await create_intent(client)
            for _ in range(checks):
                intent = await get_intent(client, created["id"])
    assert latest(intent) == final
    assert intent["amountPaid"]["amount"] == paid


async def test_circle_script_by_trio_time(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeCircle(default_script=paid_script(pending_after=30, paid_after=90, by_time=True))
    async with circle_client(fake) as client:
        created = await create_intent(client)
        await trio.sleep(29)
        assert latest(await get_intent(client, created["id"])) == ("created", None)
        await trio.sleep(1)
        assert latest(await get_intent(client, created["id"])) == ("pending", None)
        await trio.sleep(60)
        assert latest(await get_intent(client, created["id"])) == ("complete", "paid")


async def test_circle_list_filters_by_status_and_pages() -> None:
    fake = FakeCircle(max_page_size=2, default_script=never_paid_script(pending_after=1))
    with trio.fail_after(5):
        async with circle_client(fake) as client:
            ids = [
                (await create_intent(client, f"00000000-0000-4000-8000-00000000000{i}"))["id"]
                for i in range(5)
            ]
            await get_intent(client, ids[0])  # only the oldest is pending
            pending = (await client.get("/v1/paymentIntents", params={"status": "pending"})).json()
            page1 = (await client.get("/v1/paymentIntents", params={"status": "created"})).json()
            after = page1["data"][-1]["id"]
            page2 = (
                await client.get(
                    "/v1/paymentIntents", params={"status": "created", "pageAfter": after}
                )
            ).json()
    validate_operation("/v1/paymentIntents", "get", pending, response=200)
    assert [i["id"] for i in pending["data"]] == [ids[0]]
    # Newest first; a page holds at most max_page_size.
    assert [i["id"] for i in page1["data"]] == [ids[4], ids[3]]
    assert [i["id"] for i in page2["data"]] == [ids[2], ids[1]]
    assert fake.list_calls == 3


async def test_circle_faults(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeCircle(retry_after=4, slow_seconds=300)
    async with circle_client(fake, timeout=10) as client:
        created = await create_intent(client)
        url = f"/v1/paymentIntents/{created['id']}"
        fake.fail_next("rate_limit")
        limited = await client.get(url)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "4"
        assert limited.json() == {"code": 429, "message": "Too many requests."}
        fake.fail_next("server_error")
        assert (await client.get(url)).status_code == 500
        fake.fail_next("garbage")
        garbage = await client.get(url)
        with pytest.raises(json.JSONDecodeError):
            garbage.json()
        fake.fail_next("slow")
        start = trio.current_time()
        with pytest.raises(httpx.ReadTimeout):
            await client.get(url)
        assert trio.current_time() - start == 10
        assert (await client.get(url)).status_code == 200
    assert fake.gets[created["id"]] == 1  # faulted requests never reached the intent
    assert fake.faults_injected == {"rate_limit": 1, "server_error": 1, "garbage": 1, "slow": 1}


async def test_circle_fault_share_is_repeatable_with_a_seed() -> None:
    async def statuses(seed: int) -> list[int]:
        fake = FakeCircle(seed=seed)
        fake.fault_share(0.5, kinds=["rate_limit", "server_error"])
        async with circle_client(fake) as client:
            return [(await client.get("/v1/paymentIntents")).status_code for _ in range(40)]

    with trio.fail_after(5):
        first, second = await statuses(7), await statuses(7)
    assert first == second
    assert {200, 429, 500} == set(first)


async def test_circle_auth_subscriptions_and_notifications() -> None:
    fake = FakeCircle(clock=lambda: FIXED_NOW)
    with trio.fail_after(5):
        async with circle_client(fake) as client:
            refused = await client.get("/v1/paymentIntents", headers={"Authorization": ""})
            created = await create_intent(client)
            fake.advance(created["id"])
            subscribed = await client.post(
                "/v1/notifications/subscriptions",
                json={"endpoint": "https://bot.example/webhooks/circle"},
            )
    assert refused.status_code == 401 and refused.json()["code"] == 401
    validate_operation("/v1/notifications/subscriptions", "post", subscribed.json(), response=200)
    assert len(subscribed.json()["data"]["subscriptionDetails"]) == 2

    envelope = fake.notification_envelope(created["id"])
    assert envelope["Type"] == "Notification"
    assert re.fullmatch(
        r"arn:aws:sns:us-east-1:908968368384:sandbox_platform-notifications-topic",
        envelope["TopicArn"],
    )
    assert envelope["Timestamp"] == "2026-03-01T12:00:00.000Z"
    message = json.loads(envelope["Message"])
    assert message["notificationType"] == "paymentIntents" and message["version"] == 1
    validate("PaymentIntent", message["paymentIntent"])
    assert message["paymentIntent"]["paymentMethods"][0]["address"].startswith("0x")
    assert fake.latest_status(created["id"]) == "pending"
    assert Decimal(message["paymentIntent"]["amount"]["amount"]) == Decimal("12.00")
