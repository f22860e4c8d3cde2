"""The web edge under hostile clients: bad webhook input and slow clients.

Bad input goes through `httpx.ASGITransport` to the real WebApp of a running bot, with its real
Stripe and Circle routes. Slow clients talk to a real hypercorn on 127.0.0.1, port 0, over real
sockets with short real timeouts.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import hypothesis
import pytest
import stripe
import trio
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from itinerabot.web.app import Request, Response, WebApp
from itinerabot.web.server import GRACEFUL_TIMEOUT, run_web_server
from tests.harness import Bot, dump, running_bot, unix_now

ROUTES = ("/webhooks/circle", "/webhooks/stripe")

# --- bad input ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One unauthenticated request to a webhook route."""

    method: str
    path: str
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


@contextmanager
def one_refusal(caplog: pytest.LogCaptureFixture, attempt: Attempt) -> Iterator[None]:
    """The block logs what a refusal should: no traceback, nothing above WARNING, and one
    WARNING line."""
    caplog.clear()
    yield
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "Traceback" not in caplog.text, (attempt, caplog.text[-2000:])
    assert not [r for r in records if r.exc_info or r.levelno > logging.WARNING], attempt
    assert len(records) == 1, (attempt, [r.getMessage() for r in records])


async def send(bot: Bot, attempt: Attempt) -> httpx.Response:
    async with bot.web() as web:
        with trio.fail_after(10):
            return await web.request(
                attempt.method, attempt.path, content=attempt.body, headers=list(attempt.headers)
            )


def sns_shaped(bot: Bot, **changes: object) -> bytes:
    """A genuinely signed SNS notification of the bot's test signer, with `changes` made."""
    fields: dict[str, object] = dict(bot.sns.notification('{"notificationType": "paymentIntents"}'))
    fields.update(changes)
    return json.dumps(fields).encode()


def deep(depth: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return opener * depth + closer * depth


def hostile_attempts(bot: Bot) -> list[Attempt]:
    """The review's two reproductions and their relatives, each on the route it targets."""
    stripe_header = stripe.WebhookSignature.generate_signature_header(
        "{}", "whsec_wrong", int(unix_now())
    ).encode()
    circle = "/webhooks/circle"
    stripe_route = "/webhooks/stripe"
    return [
        Attempt("POST", circle, b'{"Type": ["Notification"]}'),
        Attempt("POST", circle, b'{"Type": {"Notification": true}}'),
        Attempt("POST", circle, deep(60_000)),
        Attempt("POST", circle, b'{"Type": "Notification", "a": ' + deep(5_000) + b"}"),
        Attempt("POST", circle, b'{"Type": ' + b"9" * 10_000 + b"}"),
        Attempt("POST", circle, b'{"Type": "Notification", "Message": "\xff\xfe"}'),
        Attempt("POST", circle, sns_shaped(bot, Message="paid \ud800")),
        Attempt("POST", circle, sns_shaped(bot, Timestamp=["2026"])),
        Attempt("POST", circle, sns_shaped(bot, Type="Notification " * 5000)),
        Attempt("POST", circle, sns_shaped(bot, SigningCertURL="https://[::1/x.pem")),
        Attempt(
            "POST",
            circle,
            sns_shaped(
                bot, SigningCertURL="https://sns.s3.amazonaws.com/SimpleNotificationService-1.pem"
            ),
        ),
        Attempt("POST", circle, b"{}", ((b"content-length", b"\xb2"),)),  # "²".isdigit()
        Attempt("POST", circle, b"{}", ((b"content-length", b"9" * 5000),)),
        Attempt("GET", circle, b""),
        Attempt("POST", stripe_route, b"{}", ((b"stripe-signature", b"t=1,v1=\xe9"),)),
        Attempt("POST", stripe_route, b"{}", ((b"stripe-signature", b"t=\xff\xfe,v1=0"),)),
        Attempt("POST", stripe_route, deep(60_000), ((b"stripe-signature", stripe_header),)),
        Attempt("POST", stripe_route, b"\xff", ((b"stripe-signature", stripe_header),)),
        Attempt("POST", stripe_route, b"x" * 70_000, ((b"stripe-signature", stripe_header),)),
        Attempt("PUT", stripe_route, b"{}"),
    ]


async def test_hostile_webhook_requests_get_a_4xx_and_one_log_line(
    tmp_path: Path, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 9: `{"Type": ["Notification"]}`, deep nesting and their relatives got a 500
    with a traceback; now each gets a 4xx, one WARNING line and no change to the store."""
    caplog.set_level(logging.INFO)
    async with running_bot(tmp_path) as bot:
        before = dump(bot.settings.store.path)
        for attempt in hostile_attempts(bot):
            with one_refusal(caplog, attempt):
                answer = await send(bot, attempt)
            assert 400 <= answer.status_code < 500, (attempt, answer.status_code, answer.text)
        assert dump(bot.settings.store.path) == before


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(st.characters(codec="utf-8") | st.sampled_from(["\ud800", "\udfff", "\x00"])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
SNS_KEYS = [
    "Type",
    "MessageId",
    "TopicArn",
    "Message",
    "Timestamp",
    "Subject",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
    "SubscribeURL",
    "Token",
]
header_values = st.binary(max_size=80) | st.sampled_from(
    [b"t=1,v1=" + b"\xe9" * 64, b"t=,v1=", b"v1=abc", b"t=1e9,v1=00", b",,,=", b"t=1,v1=\x00"]
)


@st.composite
def attempts(draw: st.DrawFn, signed_body: bytes) -> Attempt:
    path = draw(st.sampled_from(ROUTES))
    method = draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH"]))
    body = draw(
        st.one_of(
            st.binary(max_size=300),
            st.builds(lambda v: json.dumps(v).encode(), json_values),
            # a genuine SNS message with some keys replaced by anything
            st.builds(
                lambda changes: json.dumps({**json.loads(signed_body), **changes}).encode(),
                st.dictionaries(st.sampled_from(SNS_KEYS), json_values, max_size=3),
            ),
            st.builds(
                deep, st.integers(0, 30_000), st.sampled_from([b"[", b'{"a":[']), st.just(b"]")
            ),
            st.builds(lambda n: b'{"Type": ' + b"1" * n + b"}", st.integers(1, 20_000)),
        )
    )
    headers = draw(
        st.lists(
            st.tuples(
                st.sampled_from(
                    [b"stripe-signature", b"content-type", b"x-amz-sns-message-type", b"x-any"]
                ),
                header_values,
            ),
            max_size=3,
        )
    )
    return Attempt(method, path, body, tuple(headers))


@pytest.mark.slow
async def test_random_webhook_requests_get_a_4xx_and_change_nothing(
    tmp_path: Path, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 9, as a property: whatever an unauthenticated client sends to either webhook,
    the answer is a 4xx with at most one WARNING line and no traceback, and the store is
    unchanged. Hypothesis runs in a worker thread; each request runs in this trio run."""
    caplog.set_level(logging.INFO)
    async with running_bot(tmp_path) as bot:
        before = dump(bot.settings.store.path)
        signed_body = sns_shaped(bot)
        failures: list[BaseException] = []
        seen: Counter[tuple[str, int]] = Counter()

        @hypothesis.settings(
            max_examples=250,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(attempts(signed_body))
        def property_holds(attempt: Attempt) -> None:
            with one_refusal(caplog, attempt):
                answer = trio.from_thread.run(send, bot, attempt)
            assert 400 <= answer.status_code < 500, (attempt, answer.status_code, answer.text)
            seen[attempt.path, answer.status_code] += 1

        def run() -> None:
            try:
                property_holds()
            except BaseException as exc:  # re-raised in the trio thread, with hypothesis' report
                failures.append(exc)

        await trio.to_thread.run_sync(run)
        if failures:
            raise failures[0]
        assert dump(bot.settings.store.path) == before
    assert {path for path, _ in seen} == set(ROUTES)
    assert sum(seen.values()) >= 200


# --- slow clients, on real sockets and real time -------------------------------------------------

READ_TIMEOUT = 0.5
CAP = 5


async def _hello(request: Request) -> Response:
    return Response.text(200, "hello")


async def _slow(request: Request) -> Response:
    await trio.sleep(2 * READ_TIMEOUT)
    return Response.text(200, "slow but sure")


@asynccontextmanager
async def serving(
    max_connections: int = CAP, read_timeout: float = READ_TIMEOUT
) -> AsyncIterator[int]:
    """A real hypercorn on 127.0.0.1 serving a WebApp with /healthz, /webhook and /slow."""
    app = WebApp(max_body_bytes=65536, read_timeout=read_timeout)
    app.route("/healthz", {"GET"}, _hello)
    app.route("/webhook", {"POST"}, _hello)
    app.route("/slow", {"POST"}, _slow)
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        address: str = await nursery.start(
            partial(
                run_web_server,
                app,
                "127.0.0.1",
                0,
                shutdown,
                read_timeout=read_timeout,
                max_connections=max_connections,
            )
        )
        try:
            yield int(address.rsplit(":", 1)[1])
        finally:
            shutdown.set()


@dataclass
class Outcome:
    """What a client saw: the status line's code (None if closed without one) and when."""

    status: int | None
    at: float


async def client(port: int, head: bytes, *, dribble: bytes = b"", every: float = 0.1) -> Outcome:
    """Send `head` at once, then `dribble` a byte every `every` seconds; the server's answer."""
    start = trio.current_time()
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    received = b""
    async with stream, trio.open_nursery() as nursery:

        async def trickle() -> None:
            try:
                await stream.send_all(head)
                for i in range(len(dribble)):
                    await trio.sleep(every)
                    await stream.send_all(dribble[i : i + 1])
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the server hung up: what `received` shows is the outcome

        nursery.start_soon(trickle)
        try:
            while chunk := await stream.receive_some(4096):
                received += chunk
        except trio.BrokenResourceError:
            pass  # reset: closed with data unread
        nursery.cancel_scope.cancel()
    status = int(received.split(b" ")[1]) if received.startswith(b"HTTP/1.1 ") else None
    return Outcome(status, trio.current_time() - start)


def post(path: str, length: int) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\n\r\n".encode()


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


async def clients(port: int, count: int, head: bytes, dribble: bytes = b"") -> list[Outcome]:
    """`count` clients like `client`, all at once."""
    outcomes: list[Outcome] = []

    async def one() -> None:
        outcomes.append(await client(port, head, dribble=dribble))

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)
    return outcomes


def about(at: float, expected: float) -> bool:
    """`at` is `expected` seconds, give or take what a busy machine adds."""
    return expected - 0.05 <= at < expected + 0.75


@pytest.mark.slow
async def test_a_body_sent_a_byte_at_a_time_is_cut_off_with_408() -> None:
    """Finding 10: each byte arrives well within hypercorn's per-read timeout, so only a
    deadline on the whole body stops these clients; they used to be held for ever."""
    with trio.fail_after(4):
        async with serving() as port:
            outcomes = await clients(port, CAP, post("/webhook", 1000), dribble=b"x" * 1000)
    assert [o.status for o in outcomes] == [408] * CAP
    assert all(about(o.at, READ_TIMEOUT) for o in outcomes), outcomes


@pytest.mark.slow
async def test_a_client_silent_after_its_headers_is_cut_off() -> None:
    """Finding 10: a body that never comes holds the connection for the read timeout only."""
    with trio.fail_after(4):
        async with serving() as port:
            (outcome,) = await clients(port, 1, post("/webhook", 10))
    assert outcome.status in (408, None)
    assert about(outcome.at, READ_TIMEOUT), outcome


@pytest.mark.slow
async def test_headers_sent_a_byte_at_a_time_are_cut_off() -> None:
    """Finding 10: the headers too must be complete within the read timeout."""
    head = post("/webhook", 0)
    with trio.fail_after(4):
        async with serving() as port:
            outcome = await client(port, head[:1], dribble=head[1:] * 10, every=0.05)
    assert outcome.status is None  # hypercorn hangs up: nothing to answer yet
    assert about(outcome.at, READ_TIMEOUT), outcome


@pytest.mark.slow
async def test_past_the_cap_healthz_waits_until_the_slow_clients_are_cut_off() -> None:
    """Finding 10: `max_connections` slow clients fill the server; /healthz waits in the
    backlog (it is not accepted, so it holds no descriptor) and is answered as soon as the
    slow ones are cut off by the read timeout. Under the cap it is answered at once."""
    with trio.fail_after(4):
        async with serving() as port:
            assert (await client(port, HEALTHZ)).at < 0.25  # the server is idle
            async with trio.open_nursery() as nursery:
                slow: list[Outcome] = []

                async def fill() -> None:
                    slow.extend(await clients(port, CAP, post("/webhook", 1000), b"x" * 1000))

                nursery.start_soon(fill)
                await trio.sleep(0.1)  # the slow ones are in
                health = await client(port, HEALTHZ)
    assert [o.status for o in slow] == [408] * CAP
    assert health.status == 200
    assert about(health.at, READ_TIMEOUT - 0.1), health  # not before: the cap held it back


@pytest.mark.slow
async def test_under_the_cap_healthz_is_answered_at_once() -> None:
    """Finding 10: slow clients below the cap do not delay anyone."""
    with trio.fail_after(4):
        async with serving(max_connections=CAP + 1) as port, trio.open_nursery() as nursery:
            nursery.start_soon(clients, port, CAP, post("/webhook", 1000), b"x" * 1000)
            await trio.sleep(0.1)
            health = await client(port, HEALTHZ)
    assert health.status == 200
    assert health.at < 0.25, health


@pytest.mark.slow
async def test_a_handler_slower_than_the_read_timeout_still_answers() -> None:
    """hypercorn's read timeout also runs while a client waits for its answer; the
    connection stays open until the handler is done, so the answer is not lost."""
    with trio.fail_after(4):
        async with serving() as port:
            (outcome,) = await clients(port, 1, post("/slow", 0))
    assert outcome.status == 200


@pytest.mark.slow
async def test_shutdown_waits_for_requests_in_progress_the_grace_period_at_most() -> None:
    """Stopping the server closes its idle connections and cuts requests still in progress
    after the grace period (here with a read timeout too long to end them first)."""
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            async with serving(read_timeout=10) as port:
                idle = await trio.open_tcp_stream("127.0.0.1", port)
                await idle.send_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                answer = b""
                while not answer.endswith(b"hello"):  # answered; the connection stays open
                    answer += await idle.receive_some(4096)
                nursery.start_soon(clients, port, CAP, post("/webhook", 1000), b"x" * 1000)
                # long enough for every client to be accepted, even on a busy machine (a
                # client still in the backlog when the server stops is reset, not in progress)
                await trio.sleep(0.5)
                start = trio.current_time()  # the stop begins as the block ends
            stopped = trio.current_time() - start
            async with idle:
                assert await idle.receive_some(4096) == b""  # closed by the server
    assert GRACEFUL_TIMEOUT <= stopped < GRACEFUL_TIMEOUT + 0.75
