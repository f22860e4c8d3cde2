"""The one home of helpers the tests share: a running `serve` against the sandbox fakes over
in-process ASGI transports (no sockets, so trio's mock clock stays exact), and the orders,
payments and store reads the tests build on. Wall-clock time is tied to trio's clock: `START`
at trio time 0.
"""

from __future__ import annotations

import math
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache, partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import trio
import trio.testing
from hypothesis import strategies as st

from itinerabot.cli import main
from itinerabot.config import Settings, settings_from_mapping
from itinerabot.dialogue.types import InlineButton
from itinerabot.messages import Message, Text
from itinerabot.models import OrderStatus, Payment, PaymentMethod
from itinerabot.pdf import sample_order
from itinerabot.runtime import Runtime, serve
from itinerabot.store import circle_intents, money
from itinerabot.store import orders as order_rows
from itinerabot.store.db import connect
from itinerabot.wiring import Transports
from sandbox.circle import FakeCircle
from sandbox.serve import ASGIApp, InProcessTransport, serve_app
from sandbox.sns_signer import SnsSigner
from sandbox.stripe import FakeStripe
from sandbox.telegram import DEFAULT_TOKEN, FakeBotApi

T = TypeVar("T")

# ---------------------------------------------------------------- clock and credentials

#: wall-clock time at trio time 0: the real minute the test session began, so signatures that
#: libraries check against the real clock (Stripe's 300 s tolerance) are fresh
START = datetime.now(UTC).replace(second=0, microsecond=0)
STRIPE_KEY = "sk_test_itinerabot_harness"
STRIPE_WHSEC = "whsec_harness_secret"
CIRCLE_KEY = "SAND_API_KEY:harness:secret"
CHAT = 4242
#: the reference of the order the card tests pay, and of the one the USDC tests pay
CARD_REF = "IB-7K3Q9P"
USDC_REF = "IB-USDC42"
STRIPE_WEBHOOK = "http://bot.test/webhooks/stripe"


def wall_clock() -> datetime:
    """The wall clock of tests: START at trio time 0, advancing with trio's (mock) clock."""
    return START + timedelta(seconds=trio.current_time())


def order_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many orders the store holds in each status."""
    rows = conn.execute("SELECT status, COUNT(*) FROM orders GROUP BY status").fetchall()
    return {r[0]: r[1] for r in rows}


def unix_now() -> float:
    return wall_clock().timestamp()


# ---------------------------------------------------------------- the mock clock and worker threads

#: real idleness after which the mock clock jumps while no worker thread works: none, as in
#: trio's own `autojump_clock` (with threads accounted for, nothing else needs the wait)
AUTOJUMP_THRESHOLD = 0.0


class StillWhileThreadsWork:
    """trio's MockClock with autojump, standing still while the run waits for a worker thread.

    trio's autojump jumps whenever the run loop is idle, and the loop is idle while a thread
    runs a SQLite transaction or renders a PDF: trio time then leapt to the next deadline,
    by as much as the thread's real duration let it (a 429's retry, due 11 s later, went out
    at 12.24 s under load, and at 600 s while another process held the store's write lock).
    Installed over `trio.to_thread.run_sync`, it counts the threads this run waits for and
    switches autojump off while any works: real work takes no trio time. So a worker thread
    must never wait for trio time to pass (a lock the test holds across a `trio.sleep`).
    """

    def __init__(self, clock: trio.testing.MockClock) -> None:
        self.clock = clock
        self._working = 0
        self._run_sync = trio.to_thread.run_sync

    async def run_sync(self, sync_fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`trio.to_thread.run_sync`, with the clock held still meanwhile (see the class)."""
        if trio.lowlevel.current_clock() is not self.clock:
            return await self._run_sync(sync_fn, *args, **kwargs)
        self._working += 1
        self.clock.autojump_threshold = math.inf
        try:
            return await self._run_sync(sync_fn, *args, **kwargs)
        finally:
            self._working -= 1
            if self._working == 0:
                self.clock.autojump_threshold = AUTOJUMP_THRESHOLD


# ---------------------------------------------------------------- settings


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
            # the tests count checks on the poll_interval grid (quick address checks apart)
            "address_check_interval": None,
        },
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return settings_from_mapping(raw, env={})


# ---------------------------------------------------------------- a running bot and its fakes


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


@cache
def sns_signer() -> SnsSigner:
    """The SNS signing key and certificate, made once: a 2048-bit RSA key takes 30 ms, and
    every test's fakes need one (the signer holds no state)."""
    return SnsSigner.generate(not_before=START - timedelta(days=1))


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
            sns=sns_signer(),
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
    new_inbox: bool = False,
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
                    new_inbox=new_inbox,
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


async def orders(
    capsys: pytest.CaptureFixture[str], config: Path, *args: str
) -> tuple[int, str, str]:
    """Run `itinerabot orders --config CONFIG ARGS…` in a worker thread: (exit, out, err)."""
    capsys.readouterr()
    code = await trio.to_thread.run_sync(main, ["orders", "--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


@asynccontextmanager
async def on_loopback(app: ASGIApp) -> AsyncIterator[str]:
    """Serve a fake on 127.0.0.1 from its own thread and trio run, on the real clock: an
    operator's command reaches it over a socket from its own trio run, and the test's mock
    clock must not time out the command's connections. Yields the base URL. The bot keeps
    its in-process transport to the same fake; the test makes sure only one of them calls
    it at a time."""
    urls: queue.Queue[str] = queue.Queue()
    stop = threading.Event()

    async def serve() -> None:
        shutdown = trio.Event()
        async with trio.open_nursery() as nursery:
            urls.put(await nursery.start(partial(serve_app, app, shutdown=shutdown)))
            await trio.to_thread.run_sync(stop.wait)
            shutdown.set()

    thread = threading.Thread(target=trio.run, args=(serve,), daemon=True)
    thread.start()
    try:
        yield await trio.to_thread.run_sync(partial(urls.get, timeout=10))
    finally:
        stop.set()
        await trio.to_thread.run_sync(thread.join)


def hold_write_lock_until(
    path: Path, done: Callable[[], bool], taken: threading.Event, held: list[bool]
) -> None:
    """Hold the store's write lock, as another process under load would, until `done()`
    (at most 10 s of real time); `held` gets whether `done()` came true meanwhile. Run it
    in a thread of its own (not trio's: the mock clock stands still while those work)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        taken.set()
        give_up = time.monotonic() + 10
        while not done() and time.monotonic() < give_up:
            time.sleep(0.002)
        held.append(done())
        conn.execute("COMMIT")
    finally:
        conn.close()


# ---------------------------------------------------------------- waiting on trio's clock


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


# ---------------------------------------------------------------- messages a payment action returns


def text_of(message: Message) -> str:
    """The text of a message a payment action returned (it must be a text message)."""
    assert isinstance(message, Text), message
    return message.text


def button(message: Message, row: int = 0, col: int = 0) -> InlineButton:
    """A button under a text message a payment action returned."""
    assert isinstance(message, Text), message
    return message.keyboard[row][col]


# ---------------------------------------------------------------- orders and payments in the store


def store_order(path: Path, chat_id: int = CHAT, reference: str = CARD_REF) -> int:
    """An order awaiting payment, written straight into the store (as the dialogue would)."""
    order, _ = sample_order()
    conn = connect(path)
    with conn:
        conn.execute("BEGIN")
        order_id = order_rows.insert_order(
            conn,
            reference=reference,
            chat_id=chat_id,
            itinerary=order.itinerary,
            price=Decimal("10.00"),
            currency="USD",
            created_at=START,
        )
        conn.execute("COMMIT")
    conn.close()
    return order_id


def card_payment(session: str = "cs_test_1") -> Payment:
    """A card payment of the full price, as the Stripe webhook hands it to fulfilment."""
    return Payment(
        method=PaymentMethod.CARD,
        amount=Decimal("10.00"),
        currency="USD",
        provider_ref=session,
        provider_payment_id="pi_1",
        paid_at=START,
    )


def begin_card_refund(
    conn: Any, order_id: int, intent: str, amount: Decimal, now: datetime
) -> money.Refund:
    """A card refund of `amount` on payment intent `intent`, begun but not yet sent."""
    return money.begin_refund(
        conn,
        order_id=order_id,
        method=PaymentMethod.CARD,
        provider_ref=intent,
        amount=amount,
        currency="USD",
        now=now,
    )


# ---------------------------------------------------------------- reading the store


def status_of(path: Path, order_id: int) -> OrderStatus:
    conn = connect(path)
    order = order_rows.get_order(conn, order_id)
    conn.close()
    assert order is not None
    return order.status


def query(path: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """The rows of `sql`, on a connection of its own."""
    conn = connect(path)
    try:
        return [tuple(row) for row in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()


def dump(path: Path) -> list[tuple[Any, ...]]:
    """Every row of every table: what 'the store unchanged' compares."""
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    rows = [(t, *r) for t in sorted(tables) for r in conn.execute(f"SELECT * FROM {t}")]
    conn.close()
    return rows


def anomalies(bot: Bot) -> list[money.Anomaly]:
    conn = connect(bot.settings.store.path)
    try:
        return money.anomalies(conn)
    finally:
        conn.close()


def refunds_of(bot: Bot, order_id: int) -> list[money.Refund]:
    conn = connect(bot.settings.store.path)
    try:
        return money.refunds(conn, order_id)
    finally:
        conn.close()


# ---------------------------------------------------------------- paying by card


async def open_checkout(bot: Bot) -> tuple[int, str]:
    """Store order CARD_REF and tap "pay by card"; returns the order id and the session id."""
    order_id = store_order(bot.settings.store.path, reference=CARD_REF)
    card = bot.rt.payments.card
    assert card is not None
    messages = await card.pay_by_card(CHAT, CARD_REF)
    url = button(messages[0]).url
    (session_id,) = [s["id"] for s in bot.stripe.sessions.values() if s["url"] == url]
    return order_id, session_id


async def two_paid_sessions(bot: Bot) -> tuple[int, str, str]:
    """Order CARD_REF with two open Checkout Sessions (two tabs: the first page was nearly
    expired when the traveller tapped again), both then paid; returns the order id and both
    sessions. Nothing is delivered to the bot yet."""
    order_id, first = await open_checkout(bot)
    await trio.sleep(bot.settings.stripe.session_expiry - 30)
    card = bot.rt.payments.card
    assert card is not None
    url = button((await card.pay_by_card(CHAT, CARD_REF))[0]).url
    (second,) = [s["id"] for s in bot.stripe.sessions.values() if s["url"] == url]
    assert second != first
    return order_id, first, second


async def deliver(bot: Bot, event: dict[str, Any], times: int = 1) -> list[int]:
    """Stripe delivers `event` to the bot's webhook `times` times; returns the status codes."""
    async with bot.web() as web:
        answers = await bot.stripe.deliver_event(
            event, STRIPE_WEBHOOK, STRIPE_WHSEC, client=web, times=times
        )
    return [a.status_code for a in answers]


# ---------------------------------------------------------------- paying with USDC


async def pay_usdc(bot: Bot, reference: str = USDC_REF, chat: int = CHAT) -> tuple[int, str]:
    """Store an order and tap "pay with USDC"; returns the order id and the intent id."""
    order_id = store_order(bot.settings.store.path, chat_id=chat, reference=reference)
    usdc = bot.rt.payments.usdc
    assert usdc is not None
    await usdc.pay_with_usdc(chat, reference)
    conn = connect(bot.settings.store.path)
    row = circle_intents.latest(conn, order_id)
    conn.close()
    assert row is not None and row.intent_id is not None
    return order_id, row.intent_id


# ---------------------------------------------------------------- what an operator types

#: any text an operator might type as a refund amount, well-formed or not
amount_text = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"\A[+-]?[0-9]{0,40}(\.[0-9]{0,40})?([eE][+-]?[0-9]{1,12})?\Z"),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["sNaN", "-sNaN", "Infinity", "1_000", " 7.5 ", "٣", "0E-1000000"]),
)


# ---------------------------------------------------------------- a scripted traveller

JSON = dict[str, Any]


OUTBOUND_DAY = (START + timedelta(days=30)).date()


class Traveller:
    """The traveller in one private chat. Each move waits until the bot has handled it and sent
    everything it queued, and returns the texts the bot sent in answer (joined by newlines)."""

    def __init__(self, bot: Bot, chat: int = CHAT) -> None:
        self.bot = bot
        self.chat = chat
        self.callback_ids: list[str] = []

    async def _move(self, enqueue: Callable[[], JSON]) -> str:
        api, rt = self.bot.api, self.bot.rt
        before = len(api.sent_texts(self.chat))
        update_id = int(enqueue()["update_id"])
        # The update counts as handled once its effects are committed, and the sender is
        # woken then. Looking once a second (the sender's per-chat pace) rather than with
        # `eventually`'s 10 ms start costs one or two clock jumps per move instead of seven.
        with trio.fail_after(60):
            while not (rt.longpoll.handled(update_id) and rt.sender.busy == 0):  # noqa: ASYNC110
                await trio.sleep(1.0)
        return "\n".join(api.sent_texts(self.chat)[before:])

    async def says(self, text: str) -> str:
        if text.startswith("/"):
            return await self._move(lambda: self.bot.api.user_command(self.chat, text))
        return await self._move(lambda: self.bot.api.user_text(self.chat, text))

    async def sends(self, enqueue: Callable[[], JSON]) -> str:
        """Any other update, e.g. `lambda: api.user_photo(CHAT)`."""
        return await self._move(enqueue)

    async def presses(self, label: str, message_id: int | None = None) -> str:
        """Press the button labelled `label` (or the one label starting with it) on message
        `message_id`, by default the latest message that still has buttons."""
        return await self._move(lambda: self.press_now(label, message_id))

    def press_now(self, label: str, message_id: int | None = None) -> JSON:
        """Enqueue the press without waiting for the bot (a double tap)."""
        api = self.bot.api
        keyboard = api.last_keyboard(self.chat)
        if message_id is not None:
            message = api.message(self.chat, message_id)
            assert message is not None and "reply_markup" in message, message
            rows = message["reply_markup"]["inline_keyboard"]
        else:
            assert keyboard is not None, api.transcript(self.chat)
            message_id, rows = keyboard.message_id, keyboard.rows
        buttons = [b for row in rows for b in row if "callback_data" in b]
        (button,) = [b for b in buttons if b["text"] == label] or [
            b for b in buttons if str(b["text"]).startswith(label)
        ]
        update = api.user_press(self.chat, message_id, str(button["callback_data"]))
        self.callback_ids.append(str(update["callback_query"]["id"]))
        return update

    def last_keyboard_id(self) -> int:
        keyboard = self.bot.api.last_keyboard(self.chat)
        assert keyboard is not None
        return keyboard.message_id

    def labels(self) -> list[str]:
        keyboard = self.bot.api.last_keyboard(self.chat)
        return keyboard.labels() if keyboard else []

    async def walk(self, moves: list[str]) -> str:
        """Type each answer; `[label]` presses a button whose label starts with `label`."""
        said = ""
        for move in moves:
            if move.startswith("[") and move.endswith("]"):
                said = await self.presses(move[1:-1])
            else:
                said = await self.says(move)
        return said


@asynccontextmanager
async def chatting(tmp_path: Path, fakes: Fakes | None = None) -> AsyncIterator[Traveller]:
    """A running bot and its traveller; after the bot stops, every request met the Bot API."""
    fakes = fakes or Fakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        yield Traveller(bot)
    assert fakes.api.violations == []


#: a one-way trip typed from /start to the summary (two button presses)
ONE_WAY = [
    "/start",
    "Jane Mary Doe",
    "[No, on to the flights]",
    "frankfurt",
    "JFK",
    "lh400",
    OUTBOUND_DAY.isoformat(),
    "13:15",
    "16:05",
    "[Done: show the summary]",
]
