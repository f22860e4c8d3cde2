"""SANDBOX demo: the real `itinerabot serve` sells four itineraries to fakes on 127.0.0.1.

    python -m sandbox.demo [--out DIR] [--keep]

No accounts, no network, no money: fake Telegram, Stripe and Circle run in this process on
loopback, the bot runs as a subprocess, and a scripted traveller pays once by card, once in
USDC and once in Telegram Stars, then by card for a return trip with connections for two
travellers, priced per traveller. Prints the chat, saves the PDFs. `Sandbox`, `Traveller` and
the trips are reused by the e2e tests.
"""

from __future__ import annotations

import argparse
import itertools
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import trio

from sandbox.circle import FakeCircle, Script, paid_script
from sandbox.process import ServeProcess, write_config
from sandbox.serve import serve_app, wait_for
from sandbox.sns_signer import SnsSigner, encode
from sandbox.stripe import FakeStripe
from sandbox.telegram import DEFAULT_TOKEN, ChatLine, FakeBotApi, SentDocument, load_spec

__all__ = [
    "CARD_TRIP",
    "CHECKOUT_PHRASE",
    "CONNECTION",
    "MULTI_CITY_TRIP",
    "NEXT_LEG",
    "PAY_CARD",
    "PAY_USDC",
    "RETURN_TRIP",
    "STARS_PRICE",
    "STARS_TRIP",
    "USDC_PHRASE",
    "USDC_TRIP",
    "Hop",
    "Sandbox",
    "Traveller",
    "Trip",
    "confirmed_by_hand",
    "main",
    "open_sandbox",
    "run_demo",
]

BANNER = (
    "SANDBOX DEMO: fake Telegram, Stripe and Circle on 127.0.0.1; no real accounts, "
    "no network, no money."
)
STRIPE_KEY = "sk_test_sandbox_demo_key"
STRIPE_WHSEC = "whsec_sandbox_demo_secret"
CIRCLE_KEY = "SAND_API_KEY:sandbox:demo"
DEMO_CHAT = 7001
PAY_CARD = "Pay by card"
PAY_USDC = "Pay with USDC"
#: the labels of the dialogue's buttons the scripted traveller presses
ADD_TRAVELLER = "Add another traveller"
TRAVELLERS_DONE = "No, on to the flights"
NEXT_LEG_BUTTON = "Next leg"
FLIGHTS_DONE = "Done: show the summary"
#: the price in Telegram Stars the sandbox's config sets (`stars.price`)
STARS_PRICE = 250
#: phrases of the bot's answers to the pay buttons
CHECKOUT_PHRASE = "secure checkout page"
USDC_PHRASE = "Circle is preparing your deposit address"
#: replies that come on their own time (payments, pollers), not as the answer to a message
_UNPROMPTED = (
    "Payment received",
    "We have not seen a confirmed USDC",
    "The USDC payment for order",
    "The card payment for order",
)
_DEPOSIT = re.compile(r"Order (IB-[0-9A-Z]{6}): send exactly .*?\n\n(\S+)\n", re.S)
_REFERENCE = re.compile(r"pay:[a-z]+:(IB-[0-9A-Z]{6})")


# ---------------------------------------------------------------- the fakes and the bot


@dataclass
class Sandbox:
    """The three fakes served on loopback, a work folder, and the bot process(es) run on them."""

    api: FakeBotApi
    stripe: FakeStripe
    circle: FakeCircle
    sns: SnsSigner
    workdir: Path
    urls: dict[str, str]
    http: httpx.AsyncClient
    nursery: trio.Nursery
    runs: list[ServeProcess] = field(default_factory=list)
    config_path: Path | None = None  # the config written last

    @property
    def bot(self) -> ServeProcess:
        """The latest bot process."""
        return self.runs[-1]

    def config(self, **overrides: dict[str, Any]) -> Path:
        """Write the bot's config (short poll interval, pinned SNS cert, every payment method
        on: Stars at STARS_PRICE, card, USDC); returns its path. `overrides` update sections."""
        pem = self.workdir / "sns-signing-cert.pem"
        pem.write_bytes(self.sns.cert_pem)
        sections: dict[str, dict[str, Any]] = {
            "telegram": {
                "token": DEFAULT_TOKEN,
                "api_base": self.urls["telegram"],
                "long_poll_timeout": 10,
                "backoff_initial": 0.1,
                "backoff_cap": 1.0,
                "conflict_backoff": 0.5,
            },
            "server": {"host": "127.0.0.1", "port": 0},
            "store": {"path": str(self.workdir / "itinerabot.sqlite3")},
            "sender": {"per_chat_interval": 0.05, "global_rate": 200, "shutdown_grace": 2},
            "stripe": {
                "secret_key": STRIPE_KEY,
                "webhook_secret": STRIPE_WHSEC,
                "api_base": self.urls["stripe"],
            },
            "circle": {
                "api_key": CIRCLE_KEY,
                "base_url": self.urls["circle"],
                "poll_interval": 1.0,
                "poll_window": 60,
                "requests_per_second": 200,
                "max_connections": 20,
                "request_timeout": 5,
                "sns_pinned_certificates": {self.sns.cert_url: str(pem)},
            },
            "stars": {"price": STARS_PRICE},
            "logging": {"level": "INFO"},
        }
        for name, values in overrides.items():
            sections.setdefault(name, {}).update(values)
        self.config_path = write_config(self.workdir / "config.yaml", **sections)
        return self.config_path

    async def start_bot(self, config: Path | None = None, *, timeout: float = 20) -> ServeProcess:
        """Run `itinerabot serve` as a subprocess and wait for its "ready" line.

        Without `config`, the one written last (a restart), or a fresh default one.
        """
        config = config or self.config_path or self.config()
        proc: ServeProcess = await self.nursery.start(ServeProcess(config).run)
        self.runs.append(proc)
        await proc.wait_ready(timeout)
        return proc

    async def stop_bot(self, *, within: float = 5) -> tuple[int, float]:
        """SIGTERM the bot; returns its exit code and the seconds it took to exit."""
        started = trio.current_time()
        self.bot.signal(signal.SIGTERM)
        code = await self.bot.wait(within)
        return code, trio.current_time() - started

    async def kill_bot(self) -> int:
        """SIGKILL the bot (a crash); returns its exit code."""
        self.bot.signal(signal.SIGKILL)
        return await self.bot.wait(10)

    @property
    def log(self) -> str:
        """Every bot process's log, one after the other."""
        return "\n".join(run.log for run in self.runs)

    async def deliver_stripe(self, event: dict[str, Any], *, times: int = 1) -> list[int]:
        """POST a signed Stripe event to the bot `times` times; the HTTP statuses."""
        url = f"{self.bot.address}/webhooks/stripe"
        answers = await self.stripe.deliver_event(
            event, url, STRIPE_WHSEC, client=self.http, times=times
        )
        return [a.status_code for a in answers]

    async def deliver_circle(self, intent_id: str, *, times: int = 1) -> list[int]:
        """POST Circle's notification of the intent's current state, signed as SNS signs it.

        Repeats keep the MessageId, as SNS retries do.
        """
        message = self.sns.notification(self.circle.notification_message(intent_id))
        statuses = []
        for _ in range(times):
            answer = await self.http.post(
                f"{self.bot.address}/webhooks/circle",
                content=encode(message),
                headers={
                    "Content-Type": "text/plain; charset=UTF-8",
                    "x-amz-sns-message-type": "Notification",
                    "x-amz-sns-message-id": message["MessageId"],
                    "User-Agent": "Amazon Simple Notification Service Agent",
                },
            )
            statuses.append(answer.status_code)
        return statuses

    def intent_for_address(self, address: str) -> str:
        """The id of the fake Circle intent whose deposit address is `address`."""
        for intent_id in self.circle.intent_ids():
            methods = self.circle.intent(intent_id)["paymentMethods"]
            if any(m.get("address") == address for m in methods):
                return intent_id
        raise LookupError(f"no intent with address {address}")

    def confirmations(self) -> dict[str, str]:
        """Order reference → what confirmed its payment (the bots' "payment confirmed" lines)."""
        found: dict[str, str] = {}
        for line in self.log.splitlines():
            if 'msg="payment confirmed"' in line:
                fields = dict(re.findall(r"(\w+)=(\S+)", line))
                found[fields.get("order", "?")] = fields.get("source", "?")
        return found


@asynccontextmanager
async def open_sandbox(workdir: Path, *, seed: int = 0) -> AsyncIterator[Sandbox]:
    """Serve the fakes on loopback for the block; bot processes still running are killed."""
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=10) as http:
        api = FakeBotApi(seed=seed)
        stripe = FakeStripe(api_key=STRIPE_KEY, seed=seed)
        circle = FakeCircle(api_key=CIRCLE_KEY, seed=seed)
        urls = {
            "telegram": await nursery.start(serve_app, api),
            "stripe": await nursery.start(serve_app, stripe),
            "circle": await nursery.start(serve_app, circle),
        }
        sandbox = Sandbox(api, stripe, circle, SnsSigner.generate(), workdir, urls, http, nursery)
        try:
            yield sandbox
        finally:
            nursery.cancel_scope.cancel()


# ---------------------------------------------------------------- the scripted traveller


#: how a flight follows the one before it: a connection on the same journey, or the next leg
CONNECTION: Final = "connection"
NEXT_LEG: Final = "next leg"


@dataclass(frozen=True)
class Hop:
    """One flight as the traveller enters it. A connection departs where the flight before it
    landed: its `origin` must say so, and the bot does not ask it."""

    origin: str
    destination: str
    flight_number: str
    departure: str  # local time, as typed
    arrival: str  # local time, as typed ("06:30 +1" when it lands the next local day)
    day: int = 0  # its local departure date: days after the trip's first day
    follows: str = NEXT_LEG  # CONNECTION or NEXT_LEG (ignored for the first flight)


@dataclass(frozen=True)
class Trip:
    """What the traveller answers: each traveller's name, then the flights in order, each a
    connection or the next leg. The first flight departs `days_ahead` days from today (UTC).

    Raises ValueError for a trip the traveller could not enter: no traveller, no flight, or a
    connection that does not depart where the flight before it landed.
    """

    travellers: tuple[str, ...]
    flights: tuple[Hop, ...]
    days_ahead: int = 30

    def __post_init__(self) -> None:
        if not self.travellers or not self.flights:
            raise ValueError("a trip needs a traveller and a flight")
        for before, hop in itertools.pairwise(self.flights):
            if hop.follows not in (CONNECTION, NEXT_LEG):
                raise ValueError(f"{hop.flight_number} follows {hop.follows!r}")
            if hop.follows == CONNECTION and hop.origin != before.destination:
                raise ValueError(f"{hop.flight_number} connects at {before.destination}")

    @classmethod
    def one_way(
        cls,
        passenger: str,
        origin: str,
        destination: str,
        flight_number: str,
        departure: str,
        arrival: str,
        *,
        days_ahead: int = 30,
    ) -> Trip:
        """One traveller, one flight."""
        hop = Hop(origin, destination, flight_number, departure, arrival)
        return cls((passenger,), (hop,), days_ahead)

    @property
    def passenger(self) -> str:
        """The first traveller's name, as typed."""
        return self.travellers[0]

    @property
    def origin(self) -> str:
        return self.flights[0].origin

    @property
    def destination(self) -> str:
        return self.flights[-1].destination

    @property
    def flight_numbers(self) -> list[str]:
        return [hop.flight_number for hop in self.flights]

    @property
    def legs(self) -> list[list[Hop]]:
        """The flights grouped by leg: a connection joins the leg of the flight before it."""
        legs: list[list[Hop]] = []
        for i, hop in enumerate(self.flights):
            if i and hop.follows == CONNECTION:
                legs[-1].append(hop)
            else:
                legs.append([hop])
        return legs

    def answers(self) -> list[tuple[str, str, int]]:
        """(what the traveller does, a phrase of the bot's answer, how many texts it answers
        with), step by step. "press:<label>" presses a button; anything else is typed."""
        first_day = (datetime.now(UTC) + timedelta(days=self.days_ahead)).date()
        first, *others = self.travellers
        steps = [("/start", "Passenger name", 1), (first, "Is anyone else travelling", 1)]
        for number, name in enumerate(others, start=2):
            steps.append((f"press:{ADD_TRAVELLER}", f"Traveller {number}: name", 1))
            steps.append((name, "Is anyone else travelling", 1))
        steps.append((f"press:{TRAVELLERS_DONE}", "departure airport?", 1))
        for i, hop in enumerate(self.flights):
            if i and hop.follows == CONNECTION:  # its origin is not asked
                steps.append((f"press:Connecting flight from {hop.origin}", "arrival airport?", 1))
            else:
                if i:
                    steps.append((f"press:{NEXT_LEG_BUTTON}", "departure airport?", 1))
                steps.append((hop.origin, "arrival airport?", 1))
            when = first_day + timedelta(days=hop.day)
            steps += [
                (hop.destination, "flight number?", 1),
                (hop.flight_number, "departure date", 1),
                (when.isoformat(), "departure time on", 1),
                (hop.departure, "arrival time", 1),
                (hop.arrival, "What comes next?", 1),
            ]
        steps.append((f"press:{FLIGHTS_DONE}", "Please check your itinerary.", 1))
        return steps


CARD_TRIP = Trip.one_way("Jane Mary Doe", "FRA", "JFK", "LH 400", "13:15", "16:05")
USDC_TRIP = Trip.one_way("Jane Mary Doe", "LHR", "JFK", "BA 117", "08:20", "11:05", days_ahead=45)
STARS_TRIP = Trip.one_way("Jane Mary Doe", "AMS", "BCN", "KL 1665", "07:00", "09:20", days_ahead=60)
#: two travellers, Frankfurt → Doha → Bangkok and back, one connection each way (Qatar Airways):
#: 2 h 30 min on the ground in Doha going, 2 h 25 min coming back
RETURN_TRIP = Trip(
    ("Jane Mary Doe", "John O'Neill"),
    (
        Hop("FRA", "DOH", "QR 68", "16:05", "23:30"),
        Hop("DOH", "BKK", "QR 830", "02:00", "12:45", day=1, follows=CONNECTION),
        Hop("BKK", "DOH", "QR 831", "20:00", "23:15", day=9),
        Hop("DOH", "FRA", "QR 69", "01:40", "06:30", day=10, follows=CONNECTION),
    ),
    days_ahead=40,
)
#: two travellers, Berlin → Paris → Rome → Athens → Berlin: four legs, three airlines, no
#: connections
MULTI_CITY_TRIP = Trip(
    ("Anna Schmidt", "Lukas Schmidt"),
    (
        Hop("BER", "CDG", "AF 1735", "07:00", "09:00"),
        Hop("CDG", "FCO", "AF 1404", "10:00", "12:05", day=3),
        Hop("FCO", "ATH", "AZ 720", "15:00", "18:15", day=6),
        Hop("ATH", "BER", "A3 822", "09:00", "11:05", day=10),
    ),
    days_ahead=50,
)


@dataclass
class Traveller:
    """A scripted traveller in one private chat with the bot; waits for each answer."""

    api: FakeBotApi
    chat_id: int
    timeout: float = 15.0
    #: what the bot answered each message with: (traveller line index, texts expected)
    expected: list[tuple[int, int]] = field(default_factory=list)

    def _log(self) -> list[ChatLine]:
        return self.api.chat_log(self.chat_id)

    def act(self, action: str, replies: int = 1) -> tuple[int, int]:
        """Do `action` ("press:<label>", "/command" or text); the bot should answer with
        `replies` texts. Returns (chat log index of the action, its update_id)."""
        mark = len(self._log())
        if action.startswith("press:"):
            update = self.api.press_button(self.chat_id, action.removeprefix("press:"))
        elif action.startswith("/"):
            update = self.api.user_command(self.chat_id, action)
        else:
            update = self.api.user_text(self.chat_id, action)
        self.expected.append((mark, replies))
        return mark, int(update["update_id"])

    async def answer(self, mark: int, phrase: str) -> str:
        """The bot's text containing `phrase` after log index `mark` (waits for it)."""
        return await self.wait_for_text(phrase, since=mark)

    async def say(self, action: str, phrase: str, replies: int = 1) -> str:
        """`act`, then wait for the bot's text containing `phrase`; returns that text."""
        mark, _ = self.act(action, replies)
        return await self.answer(mark, phrase)

    async def wait_for_text(self, phrase: str, *, since: int = 0) -> str:
        """The first bot text from log index `since` on that contains `phrase`."""
        found: list[str] = []

        def seen() -> bool:
            found[:] = [
                line.what
                for line in self._log()[since:]
                if line.who == "bot" and phrase in line.what
            ]
            return bool(found)

        await wait_for(seen, self.timeout, interval=0.02)
        return found[0]

    async def order_itinerary(self, trip: Trip) -> str:
        """Walk the dialogue to the summary; returns the order reference."""
        for action, phrase, replies in trip.answers():
            await self.say(action, phrase, replies)
        return self.summary_reference()

    def summary_reference(self) -> str:
        """The order reference behind the pay buttons of the latest summary."""
        keyboard = self.api.last_keyboard(self.chat_id)
        assert keyboard is not None, "the summary has no pay buttons"
        for row in keyboard.rows:
            for button in row:
                match = _REFERENCE.fullmatch(str(button.get("callback_data", "")))
                if match is not None:
                    return match.group(1)
        raise AssertionError(f"no pay button in {keyboard.labels()}")

    def stars_button(self) -> str:
        """The label of the "Pay N ⭐" button on the latest summary."""
        keyboard = self.api.last_keyboard(self.chat_id)
        assert keyboard is not None, "the summary has no pay buttons"
        for row in keyboard.rows:
            for button in row:
                if str(button.get("callback_data", "")).startswith("pay:stars:"):
                    return str(button["text"])
        raise AssertionError(f"no Stars button in {keyboard.labels()}")

    def checkout_url(self) -> str:
        """The URL of the bot's latest "Pay … by card" button."""
        keyboard = self.api.last_keyboard(self.chat_id)
        assert keyboard is not None
        for row in keyboard.rows:
            for button in row:
                if "url" in button:
                    return str(button["url"])
        raise AssertionError(f"no URL button in {keyboard.labels()}")

    async def pay_by_card(self) -> str:
        """Press "Pay by card" on the summary; returns the Checkout URL the bot gives."""
        await self.say(f"press:{PAY_CARD}", CHECKOUT_PHRASE, replies=2)  # "Preparing…" first
        return self.checkout_url()

    async def pay_with_usdc(self) -> None:
        """Press "Pay with USDC" on the summary and wait for the bot to say it is preparing."""
        await self.say(f"press:{PAY_USDC}", USDC_PHRASE, replies=2)  # "Preparing…" first

    async def pay_with_stars(self) -> tuple[int, dict[str, Any]]:
        """Press "Pay N ⭐" on the summary; returns (message id, params) of the invoice the bot
        sends in answer (no text comes with it)."""
        before = self.api.last_invoice(self.chat_id)
        self.act(f"press:{self.stars_button()}", replies=0)
        invoice: list[tuple[int, dict[str, Any]]] = []

        def sent() -> bool:
            latest = self.api.last_invoice(self.chat_id)
            fresh = latest is not None and (before is None or latest[0] != before[0])
            invoice[:] = [latest] if fresh and latest is not None else []
            return bool(invoice)

        await wait_for(sent, self.timeout, interval=0.02)
        return invoice[0]

    async def deposit_address(self, reference: str) -> str:
        """Wait for the USDC deposit address of `reference`; returns it."""
        text = await self.wait_for_text(f"Order {reference}: send exactly")
        match = _DEPOSIT.search(text)
        assert match is not None, text
        return match.group(2)

    async def document(self, reference: str) -> SentDocument:
        """Wait for the itinerary PDF of `reference`."""
        name = f"itinerary-{reference}.pdf"
        await wait_for(lambda: self.documents(reference), self.timeout, interval=0.02)
        return next(d for d in self.api.sent_documents(self.chat_id) if d.file_name == name)

    def documents(self, reference: str) -> list[SentDocument]:
        """Every PDF of `reference` the bot sent to this chat."""
        name = f"itinerary-{reference}.pdf"
        return [d for d in self.api.sent_documents(self.chat_id) if d.file_name == name]

    def replies(self) -> list[tuple[str, int, list[str]]]:
        """(message, texts expected, texts the bot answered with) for each traveller message.

        The bot's answer to a message is every text up to the traveller's next message, less
        the unprompted ones (payment news, pollers). A message handled twice shows up as more.
        """
        log = self._log()
        answers = []
        for mark, replies in self.expected:
            end = next(
                (i for i in range(mark + 1, len(log)) if log[i].who == "traveller"), len(log)
            )
            texts = [
                line.what
                for line in log[mark + 1 : end]
                if line.who == "bot"
                and not line.what.startswith("[")
                and not line.what.startswith(_UNPROMPTED)
                and not _DEPOSIT.search(line.what)
            ]
            answers.append((log[mark].what, replies, texts))
        return answers

    def reply_counts(self) -> list[tuple[str, int, int]]:
        """(message, texts expected, texts answered) for each traveller message."""
        return [(message, expected, len(texts)) for message, expected, texts in self.replies()]


def chat_transcript(lines: list[ChatLine]) -> str:
    """The chat as a messenger shows it: who on the left, continuation lines indented."""
    out = []
    for line in lines:
        first, *rest = line.what.splitlines() or [""]
        out.append(f"{line.who:>9} │ {first}")
        out += [f"{'':>9} │ {more}" for more in rest]
    return "\n".join(out)


# ---------------------------------------------------------------- the demo


@dataclass
class DemoResult:
    transcript: str
    documents: list[SentDocument]
    confirmations: dict[str, str]
    exit_code: int
    stop_seconds: float
    bot_log: str
    #: problems the fakes saw in the bot's calls, and answers that did not match the script
    violations: list[str]
    reply_mismatches: list[tuple[str, int, int]]


async def run_demo(workdir: Path, *, say: Callable[[str], None] = print) -> DemoResult:
    """A card purchase, a USDC purchase, a Telegram Stars purchase, then a return trip with a
    connection each way for two travellers (priced per traveller) by card, against the real
    `serve`. Raises RuntimeError if Telegram (the fake) does not take the Stars payment."""
    async with open_sandbox(workdir) as sandbox:
        bot = await sandbox.start_bot(sandbox.config(pricing={"per": "traveller"}))
        say(f"bot ready at {bot.address} (pid {bot.process.pid if bot.process else '?'})")
        traveller = Traveller(sandbox.api, DEMO_CHAT)

        say("card: the traveller orders an itinerary and pays on the (fake) Checkout page")
        card_ref = await traveller.order_itinerary(CARD_TRIP)
        url = await traveller.pay_by_card()
        (session,) = [s["id"] for s in sandbox.stripe.sessions.values() if s["url"] == url]
        statuses = await sandbox.deliver_stripe(sandbox.stripe.complete(session))
        say(f"card: Stripe's signed webhook checkout.session.completed → HTTP {statuses[0]}")
        await traveller.document(card_ref)

        say("USDC: the traveller orders again and pays in USDC")
        sandbox.circle.script_next(confirmed_by_hand())
        usdc_ref = await traveller.order_itinerary(USDC_TRIP)
        await traveller.pay_with_usdc()
        address = await traveller.deposit_address(usdc_ref)
        intent = sandbox.intent_for_address(address)
        sandbox.circle.advance(intent)  # the transfer is confirmed on chain
        statuses = await sandbox.deliver_circle(intent)
        say(f"USDC: Circle's SNS notification (intent complete/paid) → HTTP {statuses[0]}")
        await traveller.document(usdc_ref)

        say("Stars: the traveller orders a third itinerary and pays with Telegram Stars")
        stars_ref = await traveller.order_itinerary(STARS_TRIP)
        message_id, invoice = await traveller.pay_with_stars()
        (price,) = invoice["prices"]
        say(
            f"Stars: the bot sends Telegram an invoice, {invoice['title']!r}, "
            f"{price['amount']} {invoice['currency']} (payload {invoice['payload']})"
        )
        asked = trio.current_time()
        charge = await sandbox.api.pay_invoice(DEMO_CHAT, message_id)
        if charge is None:
            raise RuntimeError("the bot refused the Stars payment or missed its pre-checkout")
        answered = sandbox.api.calls_to("answerPreCheckoutQuery")[-1].at - asked
        say(
            "Stars: Telegram asks the bot to confirm (pre_checkout_query) → the bot said ok "
            f"after {answered * 1000:.0f} ms (Telegram waits at most 10 s)"
        )
        say(f"Stars: Telegram takes the Stars and reports successful_payment, charge {charge}")
        await traveller.document(stars_ref)

        say(
            "card: two travellers order a return trip FRA → DOH → BKK and back, "
            "priced per traveller"
        )
        return_ref = await traveller.order_itinerary(RETURN_TRIP)
        url = await traveller.pay_by_card()
        (session,) = [s["id"] for s in sandbox.stripe.sessions.values() if s["url"] == url]
        (item,) = sandbox.stripe.line_items[session]
        say(
            f"card: the Checkout page asks {item['quantity']} × {item['price']['unit_amount']}"
            f" = {item['amount_total']} {item['currency']} (minor units)"
        )
        statuses = await sandbox.deliver_stripe(sandbox.stripe.complete(session))
        say(f"card: Stripe's signed webhook checkout.session.completed → HTTP {statuses[0]}")
        await traveller.document(return_ref)

        code, took = await sandbox.stop_bot()
        say(f"bot stopped by SIGTERM: exit {code} after {took:.2f} s")
        return DemoResult(
            transcript=chat_transcript(sandbox.api.chat_log(DEMO_CHAT)),
            documents=sandbox.api.sent_documents(DEMO_CHAT),
            confirmations=sandbox.confirmations(),
            exit_code=code,
            stop_seconds=took,
            bot_log=sandbox.log,
            violations=list(sandbox.api.violations),
            reply_mismatches=[c for c in traveller.reply_counts() if c[1] != c[2]],
        )


def confirmed_by_hand() -> Script:
    """Pending (with an address) at the first check; complete only when the demo says so."""
    return paid_script(pending_after=1, paid_after=1_000_000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=BANNER)
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="PDF folder")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder (config, store, bot log)"
    )
    args = parser.parse_args(argv)
    print(f"=== {BANNER} ===", flush=True)
    try:
        load_spec()
    except FileNotFoundError as exc:
        print(
            f"The sandbox's fake Telegram checks every call against the Bot API spec: {exc}",
            file=sys.stderr,
        )
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="itinerabot-sandbox-"))
    started = time.monotonic()
    try:
        result = trio.run(_bounded_demo, workdir)
    except Exception as exc:  # the demo's own failure: say so plainly, keep the evidence
        print(f"SANDBOX demo failed: {exc!r}", file=sys.stderr)
        print(f"work folder kept: {workdir}", file=sys.stderr)
        return 1
    took = time.monotonic() - started
    (workdir / "bot.log").write_text(result.bot_log + "\n")
    print("\n--- the chat, as the traveller sees it (SANDBOX) ---")
    print(result.transcript)
    print("--- end of chat ---\n")
    for reference, source in result.confirmations.items():
        print(f"payment of {reference} confirmed by {source}")
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"PDFs saved in {args.out.resolve()}:")
    for doc in result.documents:
        (args.out / doc.file_name).write_bytes(doc.data)
        print(f"  {doc.file_name} ({len(doc.data)} bytes)")
    problems = [
        *result.violations,
        *(f"unexpected answer to {m!r}" for m in result.reply_mismatches),
    ]
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if args.keep:
        print(f"work folder kept: {workdir} (config.yaml, itinerabot.sqlite3, bot.log)")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    ok = result.exit_code == 0 and len(result.documents) == 4 and not problems
    print(f"SANDBOX demo {'finished' if ok else 'FAILED'} in {took:.1f} s")
    return 0 if ok else 1


async def _bounded_demo(workdir: Path) -> DemoResult:
    with trio.fail_after(50):
        return await run_demo(workdir, say=lambda text: print(text, flush=True))


if __name__ == "__main__":
    sys.exit(main())
