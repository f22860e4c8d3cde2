"""A running `serve` in the test's trio run, against the sandbox fakes over in-process ASGI
transports (no sockets, so trio's mock clock stays exact). Wall-clock time is tied to trio's
clock: `START` at trio time 0.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio

from itinerabot.clock import trio_linked_clock
from itinerabot.config import Settings, settings_from_mapping
from itinerabot.dialogue.types import InlineButton
from itinerabot.messages import Message, Text
from itinerabot.runtime import Runtime, serve
from itinerabot.wiring import Transports
from sandbox.circle import FakeCircle
from sandbox.serve import InProcessTransport
from sandbox.sns_signer import SnsSigner
from sandbox.stripe import FakeStripe
from sandbox.telegram import DEFAULT_TOKEN, FakeBotApi

#: wall-clock time at trio time 0: the real minute the test session began, so signatures that
#: libraries check against the real clock (Stripe's 300 s tolerance) are fresh
START = datetime.now(UTC).replace(second=0, microsecond=0)
STRIPE_KEY = "sk_test_itinerabot_harness"
STRIPE_WHSEC = "whsec_harness_secret"
CIRCLE_KEY = "SAND_API_KEY:harness:secret"
CHAT = 4242


def wall_clock() -> datetime:
    return trio_linked_clock(START)()


def unix_now() -> float:
    return wall_clock().timestamp()


def make_settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    """Settings for tests: store in tmp_path, port 0, both payment methods on."""
    raw: dict[str, Any] = {
        "telegram": {"token": DEFAULT_TOKEN, "api_base": "http://telegram.test"},
        "server": {"host": "127.0.0.1", "port": 0},
        "store": {"path": str(tmp_path / "bot.sqlite3")},
        "sender": {"per_chat_interval": 1.0, "shutdown_grace": 10},
        "stripe": {
            "secret_key": STRIPE_KEY,
            "webhook_secret": STRIPE_WHSEC,
            "api_base": "http://stripe.test",
        },
        "circle": {
            "api_key": CIRCLE_KEY,
            "base_url": "http://circle.test",
            "requests_per_second": 1_000_000,
        },
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return settings_from_mapping(raw, env={})


@dataclass
class Bot:
    """A running bot and the fakes around it."""

    rt: Runtime
    api: FakeBotApi
    stripe: FakeStripe
    circle: FakeCircle
    sns: SnsSigner
    settings: Settings
    stopped: trio.Event
    fakes: Fakes

    async def stop(self) -> None:
        self.rt.shutdown()
        await self.stopped.wait()

    def web(self) -> httpx.AsyncClient:
        """A client of the bot's ASGI app, in process."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.rt.app), base_url="http://bot.test"
        )


@dataclass
class Fakes:
    api: FakeBotApi
    stripe: FakeStripe
    circle: FakeCircle
    sns: SnsSigner
    amazon_requests: list[str] = field(default_factory=list)
    #: every request that reached the fake Circle: (trio time, method, path)
    circle_log: list[tuple[float, str, str]] = field(default_factory=list)

    async def circle_app(self, scope: Any, receive: Any, send: Any) -> None:
        """The fake Circle, with each request's trio time written down first."""
        if scope["type"] == "http":
            self.circle_log.append((trio.current_time(), scope["method"], scope["path"]))
        await self.circle(scope, receive, send)

    def circle_gets(self, intent_id: str) -> list[float]:
        """Trio times of the GETs of one payment intent."""
        path = f"/v1/paymentIntents/{intent_id}"
        return [t for t, m, p in self.circle_log if m == "GET" and p == path]

    @classmethod
    def make(cls) -> Fakes:
        return cls(
            api=FakeBotApi(clock=unix_now),
            stripe=FakeStripe(api_key=STRIPE_KEY, clock=unix_now),
            circle=FakeCircle(api_key=CIRCLE_KEY, clock=wall_clock),
            sns=SnsSigner.generate(not_before=START - timedelta(days=1)),
        )

    def amazon(self, request: httpx.Request) -> httpx.Response:
        """Amazon SNS as the bot sees it: the signing certificate and subscription confirms."""
        self.amazon_requests.append(str(request.url))
        if str(request.url) == self.sns.cert_url:
            return httpx.Response(200, content=self.sns.cert_pem)
        if request.url.params.get("Action") == "ConfirmSubscription":
            return httpx.Response(200, text="<ConfirmSubscriptionResponse/>")
        return httpx.Response(404)

    def transports(self) -> Transports:
        return Transports(
            telegram=InProcessTransport(self.api),
            stripe=InProcessTransport(self.stripe),
            circle=InProcessTransport(self.circle_app),
            sns=httpx.MockTransport(self.amazon),
        )


@asynccontextmanager
async def running_bot(
    tmp_path: Path,
    fakes: Fakes | None = None,
    *,
    settings: Settings | None = None,
    clock: Callable[[], datetime] = wall_clock,
) -> AsyncIterator[Bot]:
    """Start `serve` in a nursery; stop it (gracefully) when the block ends."""
    fakes = fakes or Fakes.make()
    settings = settings or make_settings(tmp_path)
    stopped = trio.Event()
    async with trio.open_nursery() as nursery:

        async def run(*, task_status: trio.TaskStatus[Runtime]) -> None:
            try:
                await serve(
                    settings,
                    transports=fakes.transports(),
                    clock=clock,
                    handle_signals=False,
                    task_status=task_status,
                )
            finally:
                stopped.set()

        rt: Runtime = await nursery.start(partial(run))
        bot = Bot(rt, fakes.api, fakes.stripe, fakes.circle, fakes.sns, settings, stopped, fakes)
        try:
            yield bot
        finally:
            if not stopped.is_set():
                await bot.stop()


async def eventually(
    predicate: Callable[[], bool], *, timeout: float = 120.0, max_step: float = 1.0
) -> None:
    """Wait (on trio's clock) until `predicate()` holds; fail after `timeout` seconds.

    Looks again after 10 ms, then ever less often (up to `max_step`), so long waits on the
    mock clock take few real jumps. Only an observer: what tests assert on are the times
    the fakes recorded.
    """
    step = 0.01
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(step)
            step = min(step * 2, max_step)


def text_of(message: Message) -> str:
    """The text of a message a payment action returned (it must be a text message)."""
    assert isinstance(message, Text), message
    return message.text


def button(message: Message, row: int = 0, col: int = 0) -> InlineButton:
    """A button under a text message a payment action returned."""
    assert isinstance(message, Text), message
    return message.keyboard[row][col]
