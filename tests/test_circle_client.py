"""CircleClient and RequestBudget against a fake Circle at the HTTP edge (httpx.MockTransport).

Timed tests run on `autojump_clock` and assert exact trio times.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from pydantic import SecretStr

from itinerabot.adapters.circle.budget import Lane, RequestBudget
from itinerabot.adapters.circle.client import (
    CircleClient,
    crypto_refund_request,
    parse_retry_after,
    payment_intent_request,
)
from itinerabot.adapters.circle.errors import CircleApiError, MalformedResponse
from itinerabot.adapters.circle.status import Outcome
from itinerabot.config import CircleSettings
from itinerabot.errors import ConfigError, RateLimited, TransientServiceError
from sandbox.circle import FakeCircle as SandboxCircle
from sandbox.circle import RefundScript, underpaid_then_expired_script
from sandbox.serve import InProcessTransport
from tests.circle_spec import (
    ADDRESS,
    INTENT_ID,
    operation_examples,
    payment_intent,
    timeline_entry,
    validate,
    validate_operation,
)

API_KEY = "SAND_API_KEY:0123456789abcdef:fedcba9876543210"
IDEMPOTENCY_KEY = "ba943ff1-ca16-49b2-ba55-1057e70ca5c7"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


@dataclass
class FakeCircle:
    """Answers with queued handlers (the last one repeats) and records each request's start."""

    handlers: list[Handler]
    requests: list[httpx.Request] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(trio.current_time())
        handler = self.handlers.pop(0) if len(self.handlers) > 1 else self.handlers[0]
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1


def answer(
    status: int, body: Any = None, *, delay: float = 0, headers: dict[str, str] | None = None
) -> Handler:
    async def handler(request: httpx.Request) -> httpx.Response:
        if delay:
            await trio.sleep(delay)
        if isinstance(body, bytes):
            return httpx.Response(status, content=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return handler


def fail(exc: Exception) -> Handler:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def intent_body(**kwargs: Any) -> dict[str, Any]:
    intent = payment_intent(**kwargs)
    validate("PaymentIntent", intent)
    return {"data": intent}


def make_client(
    fake: FakeCircle, *, rate: float = 1000.0, connections: int = 10, **kwargs: Any
) -> CircleClient:
    settings = CircleSettings(
        api_key=SecretStr(API_KEY), requests_per_second=rate, max_connections=connections
    )
    return CircleClient(
        settings, transport=httpx.MockTransport(fake), wall_clock=lambda: NOW, **kwargs
    )


async def create(client: CircleClient) -> Any:
    return await client.create_payment_intent(
        idempotency_key=IDEMPOTENCY_KEY,
        amount=Decimal("10.00"),
        currency="USD",
        chain="ETH",
        lane=Lane.TRAVELLER,
    )


# --- requests have Circle's shapes -------------------------------------------------------------


async def test_create_sends_a_body_that_fits_circles_schema() -> None:
    fake = FakeCircle([answer(201, intent_body())])
    async with make_client(fake) as client:
        view = await create(client)
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.url == "https://api-sandbox.circle.com/v1/paymentIntents"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Accept"] == "application/json"
    body = json.loads(request.content)
    validate("PaymentIntentCreationRequest", body)
    validate_operation("/v1/paymentIntents", "post", body)  # the oneOf: transient, not continuous
    assert body == {
        "idempotencyKey": IDEMPOTENCY_KEY,
        "amount": {"amount": "10.00", "currency": "USD"},
        "settlementCurrency": "USD",
        "paymentMethods": [{"type": "blockchain", "chain": "ETH"}],
        "type": "transient",
    }
    assert view.id == INTENT_ID and view.address is None and view.outcome is Outcome.PENDING


def test_amounts_are_sent_with_cents() -> None:
    body = payment_intent_request(
        idempotency_key=IDEMPOTENCY_KEY, amount=Decimal("7"), currency="USD", chain="SOL"
    )
    assert body["amount"] == {"amount": "7.00", "currency": "USD"}
    with pytest.raises(ValueError, match="two decimal places"):
        payment_intent_request(
            idempotency_key=IDEMPOTENCY_KEY, amount=Decimal("7.001"), currency="USD", chain="SOL"
        )


async def test_get_payment_intent_and_its_latest_status() -> None:
    timeline = [
        timeline_entry("complete", "2022-07-21T20:19:24.859052Z", "paid"),
        timeline_entry("created", "2022-07-21T20:13:35.579331Z"),
        timeline_entry("pending", "2022-07-21T20:14:02.000Z"),
    ]
    body = intent_body(address=ADDRESS, amount_paid="10.00", timeline=timeline)
    validate_operation("/v1/paymentIntents/{id}", "get", body, response=200)
    fake = FakeCircle([answer(200, body)])
    async with make_client(fake) as client:
        view = await client.get_payment_intent(INTENT_ID, lane=Lane.ROUTINE)
        entry = (await client.get_payment_intent(INTENT_ID, lane=Lane.ROUTINE)).latest
    assert [str(r.url) for r in fake.requests] == [
        f"https://api-sandbox.circle.com/v1/paymentIntents/{INTENT_ID}"
    ] * 2
    assert view.address == ADDRESS and view.outcome is Outcome.PAID
    assert entry is not None and (entry.status, entry.context) == ("complete", "paid")


async def test_create_subscription_and_get_payment() -> None:
    subscription = {
        "id": "b8627ae8-732b-4d25-b947-1df8f4007a29",
        "endpoint": "https://bot.example.org/webhooks/circle",
        "subscriptionDetails": [
            {"url": "arn:aws:sns:us-east-1:908968368384:x", "status": "pending"}
        ],
    }
    payment: dict[str, Any] = {
        "id": "69808f36-3e5e-4f37-bf82-ca79e4d70fc1",
        "type": "payment",
        "merchantId": "fc988ed5-c129-4f70-a064-e5beb7eb8e32",
        "amount": {"amount": "10.00", "currency": "USD"},
        "status": "paid",
        "transactionHash": "0x7351585460bd657f320b9afa02a52c26d89272d0d10cc29913eb8b28e64fd906",
    }
    validate("SubscriptionResponse", subscription)
    validate("CryptoPayment", payment)
    fake = FakeCircle([answer(200, {"data": subscription}), answer(200, {"data": payment})])
    async with make_client(fake) as client:
        created = await client.create_subscription("https://bot.example.org/webhooks/circle")
        paid = await client.get_payment(payment["id"], lane=Lane.TRAVELLER)
    sub_request, payment_request = fake.requests
    assert sub_request.url.path == "/v1/notifications/subscriptions"
    validate("SubscriptionRequest", json.loads(sub_request.content))
    assert created == subscription
    assert payment_request.url.path == f"/v1/payments/{payment['id']}"
    assert paid.transaction_hash == payment["transactionHash"]


# --- expire and refund (findings 4: a superseded intent is expired; USDC is refunded) -----------


async def test_expire_posts_to_the_intent_and_returns_it_as_circle_shows_it() -> None:
    timeline = [
        timeline_entry("created", "2022-07-21T20:13:35.579331Z"),
        timeline_entry("expired", "2022-07-21T20:19:24.859052Z"),
    ]
    body = intent_body(timeline=timeline)
    validate_operation("/v1/paymentIntents/{id}/expire", "post", body, response=201)
    fake = FakeCircle([answer(201, body)])
    async with make_client(fake) as client:
        view = await client.expire_payment_intent(INTENT_ID, lane=Lane.TRAVELLER)
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.url == f"https://api-sandbox.circle.com/v1/paymentIntents/{INTENT_ID}/expire"
    validate_operation("/v1/paymentIntents/{id}/expire", "post", json.loads(request.content))
    assert view.id == INTENT_ID and view.outcome is Outcome.EXPIRED


async def test_expire_refused_by_circle_is_an_api_error() -> None:
    refusal = {"code": 2, "message": "The payment intent has already ended."}
    fake = FakeCircle([answer(400, refusal)])
    async with make_client(fake) as client:
        with pytest.raises(CircleApiError) as caught:
            await client.expire_payment_intent(INTENT_ID, lane=Lane.TRAVELLER)
    assert (caught.value.status, caught.value.code) == (400, 2)
    assert caught.value.message == "The payment intent has already ended."


async def test_refund_sends_a_crypto_refund_request_that_fits_circles_schema() -> None:
    example = operation_examples("/v1/paymentIntents/{id}/refund", "post", 201)["response"]
    fake = FakeCircle([answer(201, example)])
    async with make_client(fake) as client:
        refund = await client.refund_payment_intent(
            INTENT_ID,
            idempotency_key=IDEMPOTENCY_KEY,
            address=ADDRESS,
            chain="ETH",
            amount=Decimal("5"),
            lane=Lane.TRAVELLER,
        )
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.url.path == f"/v1/paymentIntents/{INTENT_ID}/refund"
    body = json.loads(request.content)
    validate("CryptoRefundCreationRequest", body)
    validate_operation("/v1/paymentIntents/{id}/refund", "post", body)
    assert body == {
        "idempotencyKey": IDEMPOTENCY_KEY,
        "destination": {"address": ADDRESS, "chain": "ETH"},
        "amount": {"currency": "USD"},
        "toAmount": {"amount": "5.00", "currency": "USD"},
    }
    assert (refund.id, refund.status) == (example["data"]["id"], "pending")
    assert refund.payment_intent_id == example["data"]["paymentIntentId"]


def test_a_refund_needs_a_positive_amount_in_cents_an_address_and_a_chain() -> None:
    good = {"idempotency_key": IDEMPOTENCY_KEY, "address": ADDRESS, "chain": "ETH"}
    for amount in (Decimal(0), Decimal("-1"), Decimal("1.001"), Decimal("NaN")):
        with pytest.raises(ValueError):
            crypto_refund_request(amount=amount, **good)
    for missing in ("address", "chain"):
        with pytest.raises(ValueError, match="address and chain"):
            crypto_refund_request(amount=Decimal(1), **{**good, missing: ""})


async def test_the_sandbox_answers_expire_and_refund_in_circles_shapes(
    autojump_clock: trio.abc.Clock,
) -> None:
    sandbox = SandboxCircle(
        api_key=API_KEY,
        clock=lambda: NOW,
        default_script=underpaid_then_expired_script(
            pending_after=1, underpaid_after=2, expired_after=3
        ),
    )
    async with httpx.AsyncClient(
        transport=InProcessTransport(sandbox),
        base_url="https://api-sandbox.circle.com",
        headers={"Authorization": f"Bearer {API_KEY}"},
    ) as http:
        create = {
            "idempotencyKey": IDEMPOTENCY_KEY,
            "amount": {"amount": "10.00", "currency": "USD"},
            "settlementCurrency": "USD",
            "paymentMethods": [{"type": "blockchain", "chain": "ETH"}],
        }
        other = dict(create, idempotencyKey="5c4b7f0e-0d2a-4b7e-9d6e-1f2a3b4c5d6e")
        paid_in_part = (await http.post("/v1/paymentIntents", json=create)).json()["data"]["id"]
        unpaid = (await http.post("/v1/paymentIntents", json=other)).json()["data"]["id"]
        for _ in range(3):  # pending, underpaid 5.00, expired
            await http.get(f"/v1/paymentIntents/{paid_in_part}")
        expired = await http.post(f"/v1/paymentIntents/{unpaid}/expire", json={})
        again = await http.post(f"/v1/paymentIntents/{unpaid}/expire", json={})
        request = {
            "idempotencyKey": "a2f2a5a8-3c2e-4b4f-9d0b-8a8f5f3f1c11",
            "destination": {"address": ADDRESS, "chain": "ETH"},
            "amount": {"currency": "USD"},
            "toAmount": {"amount": "5.00", "currency": "USD"},
        }
        refunded = await http.post(f"/v1/paymentIntents/{paid_in_part}/refund", json=request)
        repeated = await http.post(f"/v1/paymentIntents/{paid_in_part}/refund", json=request)
        nothing_paid = await http.post(
            f"/v1/paymentIntents/{unpaid}/refund",
            json=dict(request, idempotencyKey="0d7e1c36-57b3-4a3c-8f7e-3d1b5c8a9e21"),
        )
        intent = (await http.get(f"/v1/paymentIntents/{paid_in_part}")).json()
    assert expired.status_code == 201
    validate_operation("/v1/paymentIntents/{id}/expire", "post", expired.json(), response=201)
    assert expired.json()["data"]["timeline"][0]["status"] == "expired"
    assert again.status_code == 400  # it has ended already
    assert refunded.status_code == repeated.status_code == 201
    validate_operation("/v1/paymentIntents/{id}/refund", "post", refunded.json(), response=201)
    assert refunded.json() == repeated.json()  # the same key: the same refund
    assert nothing_paid.status_code == 400
    validate("PaymentIntent", intent["data"])
    assert intent["data"]["amountRefunded"] == {"amount": "5.00", "currency": "USD"}
    assert intent["data"]["refundIds"] == [refunded.json()["data"]["id"]]
    assert intent["data"]["timeline"][0]["status"] == "refunded"
    (recorded,) = sandbox.refunds.values()
    assert recorded["destination"] == {"address": ADDRESS, "chain": "ETH"}
    assert [i for _, i in sandbox.expire_requests] == [unpaid, unpaid]


async def test_get_refund_reads_circles_refund_payment() -> None:
    """A refund is looked up with `GET /v1/payments/{id}`: Circle's CryptoPayment of type
    refund, its status, transaction and failure reason; anything else is malformed."""
    example = operation_examples("/v1/paymentIntents/{id}/refund", "post", 201)["response"]
    # the spec's example settles in ETH, which its own schema refuses; USDC settles in USD
    refund = {**example["data"], "settlementAmount": {"amount": "1.00", "currency": "USD"}}
    tx_hash = "0x7351585460bd657f320b9afa02a52c26d89272d0d10cc29913eb8b28e64fd906"
    paid = {"data": {**refund, "status": "paid", "transactionHash": tx_hash}}
    failed = {"data": {**refund, "status": "failed", "errorCode": "payment_failed"}}
    a_payment = {"data": {**refund, "type": "payment"}}
    another = {"data": {**refund, "id": INTENT_ID}}
    for body in (paid, failed, a_payment, another):
        validate("CryptoPayment", body["data"])
    fake = FakeCircle([answer(200, body) for body in (paid, failed, a_payment, another)])
    refund_id = example["data"]["id"]
    async with make_client(fake) as client:
        sent = await client.get_refund(refund_id, lane=Lane.ROUTINE)
        refused = await client.get_refund(refund_id, lane=Lane.ROUTINE)
        with pytest.raises(MalformedResponse):
            await client.get_refund(refund_id, lane=Lane.ROUTINE)
        with pytest.raises(MalformedResponse):
            await client.get_refund(refund_id, lane=Lane.ROUTINE)
    assert [(r.method, r.url.path) for r in fake.requests] == [
        ("GET", f"/v1/payments/{refund_id}")
    ] * 4
    assert (sent.status, sent.transaction_hash, sent.error_code) == ("paid", tx_hash, None)
    assert (refused.status, refused.transaction_hash) == ("failed", None)
    assert refused.error_code == "payment_failed"


async def test_the_sandbox_sends_or_fails_a_refund_on_its_script_or_when_told(
    autojump_clock: trio.abc.Clock,
) -> None:
    """The sandbox's refunds stay pending until their script (here: paid 600 s after being
    asked) or `settle_refund` concludes them; `GET /v1/payments/{id}` shows each in
    Circle's shape. A failed refund sent nothing, so the intent may be refunded again."""
    sandbox = SandboxCircle(
        api_key=API_KEY,
        clock=lambda: NOW,
        default_script=underpaid_then_expired_script(
            pending_after=1, underpaid_after=2, expired_after=3
        ),
    )
    sandbox.script_next_refunds(RefundScript("paid", after_seconds=600))
    async with httpx.AsyncClient(
        transport=InProcessTransport(sandbox),
        base_url="https://api-sandbox.circle.com",
        headers={"Authorization": f"Bearer {API_KEY}"},
    ) as http:
        create = {
            "idempotencyKey": IDEMPOTENCY_KEY,
            "amount": {"amount": "10.00", "currency": "USD"},
            "settlementCurrency": "USD",
            "paymentMethods": [{"type": "blockchain", "chain": "ETH"}],
        }
        intent = (await http.post("/v1/paymentIntents", json=create)).json()["data"]["id"]
        for _ in range(3):  # pending, underpaid 5.00, expired
            await http.get(f"/v1/paymentIntents/{intent}")

        async def refund(key: str, amount: str) -> str:
            request = {
                "idempotencyKey": key,
                "destination": {"address": ADDRESS, "chain": "ETH"},
                "amount": {"currency": "USD"},
                "toAmount": {"amount": amount, "currency": "USD"},
            }
            answer = await http.post(f"/v1/paymentIntents/{intent}/refund", json=request)
            assert answer.status_code == 201
            return str(answer.json()["data"]["id"])

        async def look_up(refund_id: str) -> dict[str, Any]:
            answer = await http.get(f"/v1/payments/{refund_id}")
            assert answer.status_code == 200
            data: dict[str, Any] = answer.json()["data"]
            validate("CryptoPayment", data)
            return data

        sent = await refund("a2f2a5a8-3c2e-4b4f-9d0b-8a8f5f3f1c11", "2.00")
        await trio.sleep(599)
        before = await look_up(sent)
        await trio.sleep(1)
        after = await look_up(sent)
        failing = await refund("0d7e1c36-57b3-4a3c-8f7e-3d1b5c8a9e21", "3.00")
        still = await look_up(failing)
        sandbox.settle_refund(failing, "failed", error_code="payment_failed")
        failed = await look_up(failing)
        left = (await http.get(f"/v1/paymentIntents/{intent}")).json()["data"]
    assert (before["type"], before["status"]) == ("refund", "pending")
    assert after["status"] == "paid" and after["transactionHash"].startswith("0x")
    assert after["settlementAmount"] == {"amount": "2.00", "currency": "USD"}
    assert still["status"] == "pending"
    assert (failed["status"], failed["errorCode"]) == ("failed", "payment_failed")
    assert "transactionHash" not in failed
    assert left["amountRefunded"] == {"amount": "2.00", "currency": "USD"}


async def test_ids_that_would_change_the_path_are_refused_before_sending() -> None:
    fake = FakeCircle([answer(200, intent_body())])
    async with make_client(fake) as client:
        for bad in ("../v1/payouts", "a/b", "", "x\n"):
            with pytest.raises(ValueError):
                await client.get_payment_intent(bad, lane=Lane.ROUTINE)
    assert fake.requests == []


async def test_a_key_is_required() -> None:
    with pytest.raises(ConfigError):
        CircleClient(CircleSettings(enabled=False))


# --- errors become project errors ----------------------------------------------------------------


async def test_circle_error_body_becomes_the_message() -> None:
    fake = FakeCircle([answer(404, {"code": 2, "message": "Resource not found."})])
    async with make_client(fake) as client:
        with pytest.raises(CircleApiError) as info:
            await client.get_payment_intent(INTENT_ID, lane=Lane.ROUTINE)
    assert info.value.message == "Resource not found."
    assert (info.value.status, info.value.code) == (404, 2)
    assert str(info.value) == "circle: Resource not found."


async def test_create_does_not_retry_a_refusal() -> None:
    fake = FakeCircle([answer(400, {"code": 2, "message": "Invalid entity."})])
    async with make_client(fake) as client:
        with pytest.raises(CircleApiError, match="Invalid entity"):
            await create(client)
    assert len(fake.requests) == 1


async def test_a_4xx_without_circles_body_still_says_what_happened() -> None:
    fake = FakeCircle([answer(401, b"<html>nope</html>")])
    async with make_client(fake) as client:
        with pytest.raises(CircleApiError, match="HTTP 401"):
            await client.get_payment_intent(INTENT_ID, lane=Lane.ROUTINE)


@pytest.mark.parametrize(
    "handler",
    [
        answer(500, {"code": -1, "message": "Something went wrong."}),
        answer(503, b"upstream unavailable"),
        fail(httpx.ReadTimeout("read timed out")),
        fail(httpx.ConnectTimeout("connect timed out")),
        fail(httpx.ConnectError("connection refused")),
        fail(httpx.RemoteProtocolError("server disconnected")),
    ],
)
async def test_5xx_network_errors_and_timeouts_are_transient(handler: Handler) -> None:
    fake = FakeCircle([handler])
    async with make_client(fake) as client:
        with pytest.raises(TransientServiceError) as info:
            await client.get_payment_intent(INTENT_ID, lane=Lane.ROUTINE)
    assert not isinstance(info.value, RateLimited | MalformedResponse)
    assert len(fake.requests) == 1  # a check is one request: the poller's schedule retries


async def test_the_timeout_from_settings_applies_on_a_silent_loopback_server() -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, silent, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        settings = CircleSettings(
            api_key=SecretStr(API_KEY), base_url=f"http://127.0.0.1:{port}", request_timeout=0.2
        )
        with trio.fail_after(5):
            async with CircleClient(settings) as client:
                started = trio.current_time()
                with pytest.raises(TransientServiceError, match="timed out"):
                    await client.get_payment_intent(INTENT_ID, lane=Lane.ROUTINE)
                assert 0.2 <= trio.current_time() - started < 2
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b'{"data": [1, 2]}',
        b'{"data": {"id": "8755d0ea-14f9-4259-b092-de23c14b6568"}}',
        b'{"data": {"id": "8755d0ea',
    ],
)
async def test_garbage_bodies_are_malformed_and_transient(body: bytes) -> None:
    fake = FakeCircle([answer(200, body)])
    async with make_client(fake) as client:
        with pytest.raises(MalformedResponse) as info:
            await client.get_payment_intent(INTENT_ID, lane=Lane.ROUTINE)
    assert isinstance(info.value, TransientServiceError)


async def test_an_answer_about_another_intent_is_malformed() -> None:
    fake = FakeCircle([answer(200, intent_body(intent_id="00000000-0000-4000-8000-000000000000"))])
    async with make_client(fake) as client:
        with pytest.raises(MalformedResponse, match="got 00000000"):
            await client.get_payment_intent(INTENT_ID, lane=Lane.ROUTINE)


async def test_the_api_key_is_never_in_logs_reprs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeCircle(
        [
            answer(500, {"code": -1, "message": "Something went wrong."}),
            fail(httpx.ConnectError("refused")),
            answer(401, {"code": 401, "message": "Malformed authorization."}),
        ]
    )
    messages: list[str] = []
    async with make_client(fake, retry_backoff=0) as client:
        messages.append(repr(client))
        for _ in range(2):
            try:
                await create(client)
            except (TransientServiceError, CircleApiError) as exc:
                messages.append(f"{exc!r} {exc} {exc.__cause__!r}")
    assert API_KEY not in caplog.text
    assert all(API_KEY not in m for m in messages)
    assert "SAND_API_KEY" not in " ".join(messages) + caplog.text


# --- retries of create ---------------------------------------------------------------------------


async def test_create_retries_transient_failures_with_the_same_key(
    autojump_clock: trio.abc.Clock,
) -> None:
    fake = FakeCircle(
        [
            answer(500, {"code": -1, "message": "Something went wrong."}),
            fail(httpx.ReadTimeout("slow")),
            answer(201, intent_body()),
        ]
    )
    async with make_client(fake) as client:
        view = await create(client)
    assert view.id == INTENT_ID
    assert fake.times == [0.0, 1.0, 3.0]  # backoff 1 s, then 2 s
    keys = {json.loads(r.content)["idempotencyKey"] for r in fake.requests}
    assert keys == {IDEMPOTENCY_KEY}


async def test_create_gives_up_after_its_attempts(autojump_clock: trio.abc.Clock) -> None:
    fake = FakeCircle([answer(502, b"bad gateway")])
    async with make_client(fake) as client:
        with pytest.raises(TransientServiceError) as info:
            await create(client)
    assert info.value.status == 502
    assert fake.times == [0.0, 1.0, 3.0]


async def test_create_after_a_429_waits_for_retry_after_only(
    autojump_clock: trio.abc.Clock,
) -> None:
    fake = FakeCircle(
        [
            answer(
                429, {"code": 429, "message": "Too many requests."}, headers={"Retry-After": "7"}
            ),
            answer(201, intent_body()),
        ]
    )
    async with make_client(fake) as client:
        await create(client)
    assert fake.times == [0.0, 7.0]


# --- 429 and the shared budget -------------------------------------------------------------------


async def test_429_raises_rate_limited_and_pauses_every_caller_exactly(
    autojump_clock: trio.abc.Clock,
) -> None:
    # One connection: the first check is in flight for 1 s and gets a 429 asking for 5 s; the
    # three checks queued behind it must not start before t = 1 + 5, then go one per 1/rate.
    fake = FakeCircle(
        [
            answer(
                429,
                {"code": 429, "message": "Too many requests."},
                delay=1,
                headers={"Retry-After": "5"},
            ),
            answer(200, intent_body()),
        ]
    )
    errors: list[BaseException] = []
    async with make_client(fake, rate=4, connections=1) as client:

        async def check() -> None:
            try:
                await client.get_payment_intent(INTENT_ID, lane=Lane.ROUTINE)
            except RateLimited as exc:
                errors.append(exc)

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for _ in range(4):
                    nursery.start_soon(check)
                    await trio.testing.wait_all_tasks_blocked()  # keep the start order
    (error,) = errors
    assert isinstance(error, RateLimited) and error.retry_after == 5.0
    assert error.message == "Too many requests."
    assert fake.times == [0.0, 6.0, 6.25, 6.5]


async def test_after_a_pause_later_callers_wait_too(autojump_clock: trio.abc.Clock) -> None:
    fake = FakeCircle(
        [
            answer(
                429, {"code": 429, "message": "Too many requests."}, headers={"Retry-After": "30"}
            ),
            answer(200, intent_body()),
        ]
    )
    async with make_client(fake, rate=10) as client:
        with pytest.raises(RateLimited):
            await client.get_payment_intent(INTENT_ID, lane=Lane.ROUTINE)
        await trio.sleep(10)
        await client.get_payment_intent(INTENT_ID, lane=Lane.ROUTINE)
    assert fake.times == [0.0, 30.0]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"Retry-After": "12"}, 12.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": format_datetime(NOW + timedelta(seconds=42), usegmt=True)}, 42.0),
        ({"Retry-After": format_datetime(NOW - timedelta(seconds=42), usegmt=True)}, 0.0),
        ({}, 5.0),
        ({"Retry-After": "soon"}, 5.0),
        ({"Retry-After": "inf"}, 5.0),
        ({"Retry-After": "86400"}, 600.0),
    ],
)
async def test_retry_after_in_seconds_or_as_a_date(header: dict[str, str], expected: float) -> None:
    fake = FakeCircle([answer(429, {"code": 429, "message": "Too many requests."}, headers=header)])
    async with make_client(fake) as client:
        with pytest.raises(RateLimited) as info:
            await client.get_payment_intent(INTENT_ID, lane=Lane.ROUTINE)
    assert info.value.retry_after == expected


def test_parse_retry_after_without_a_header() -> None:
    assert parse_retry_after(None, now=NOW) is None


# --- the budget on its own -----------------------------------------------------------------------


async def test_budget_spaces_starts_exactly_to_the_rate(autojump_clock: trio.abc.Clock) -> None:
    budget = RequestBudget(rate_per_second=10, max_concurrent=100)
    starts: list[float] = []

    async def one() -> None:
        async with budget.slot(Lane.ROUTINE):
            starts.append(trio.current_time())
            await trio.sleep(0.05)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for _ in range(25):
                nursery.start_soon(one)
    assert starts == [n / 10 for n in range(25)]  # exact grid: no accumulated drift


async def test_budget_through_the_client(autojump_clock: trio.abc.Clock) -> None:
    fake = FakeCircle([answer(200, intent_body(), delay=0.3)])
    async with make_client(fake, rate=4, connections=10) as client, trio.open_nursery() as nursery:
        for _ in range(9):
            nursery.start_soon(
                functools.partial(client.get_payment_intent, lane=Lane.ROUTINE), INTENT_ID
            )
    assert fake.times == [n / 4 for n in range(9)]
    assert fake.most_in_flight == 2  # each takes 0.3 s, one starts every 0.25 s


async def test_budget_caps_requests_in_flight_outside_httpx(
    autojump_clock: trio.abc.Clock,
) -> None:
    fake = FakeCircle([answer(200, intent_body(), delay=1)])
    async with (
        make_client(fake, rate=1000, connections=3) as client,
        trio.open_nursery() as nursery,
    ):
        for _ in range(7):
            nursery.start_soon(
                functools.partial(client.get_payment_intent, lane=Lane.ROUTINE), INTENT_ID
            )
        await trio.sleep(0.5)
        assert client.budget.in_flight == 3
        assert fake.in_flight == 3
    assert fake.most_in_flight == 3
    assert fake.times == [0.0, 0.001, 0.002, 1.0, 1.001, 1.002, 2.0]


async def test_budget_gives_no_burst_after_idling(autojump_clock: trio.abc.Clock) -> None:
    budget = RequestBudget(rate_per_second=4, max_concurrent=10)
    starts: list[float] = []

    async def one() -> None:
        async with budget.slot(Lane.ROUTINE):
            starts.append(trio.current_time())

    await one()
    await trio.sleep(10)
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(one)
    assert starts == [0.0, 10.0, 10.25, 10.5]


async def test_budget_pause_holds_a_caller_already_waiting(autojump_clock: trio.abc.Clock) -> None:
    budget = RequestBudget(rate_per_second=1, max_concurrent=10)
    starts: list[float] = []

    async def one() -> None:
        async with budget.slot(Lane.ROUTINE):
            starts.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one)  # starts at 0
        nursery.start_soon(one)  # due at 1, sleeping when the pause arrives
        await trio.sleep(0.5)
        budget.pause_until(trio.current_time() + 4)
        budget.pause_until(1.0)  # a shorter pause never shortens the longer one
    assert starts == [0.0, 4.5]


async def test_a_cancelled_waiter_does_not_use_up_a_start(autojump_clock: trio.abc.Clock) -> None:
    budget = RequestBudget(rate_per_second=1, max_concurrent=10)
    starts: list[tuple[str, float]] = []

    async def one(name: str) -> None:
        async with budget.slot(Lane.ROUTINE):
            starts.append((name, trio.current_time()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, "a")
        await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(0.5):
            await one("cancelled")
        nursery.start_soon(one, "b")
    assert starts == [("a", 0.0), ("b", 1.0)]


def test_budget_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        RequestBudget(rate_per_second=0, max_concurrent=1)
    with pytest.raises(ValueError):
        RequestBudget(rate_per_second=float("nan"), max_concurrent=1)
    with pytest.raises(ValueError):
        RequestBudget(rate_per_second=1, max_concurrent=0)
