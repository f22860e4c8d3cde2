"""Stripe webhooks against the real `itinerabot serve` process: ingest rate and PDF latency.

`ingest`: K signed events (mostly `checkout.session.completed` for distinct orders, some
repeats, some ignored types) fired over C keep-alive connections; accepted events per second,
request latency, and the server's CPU per event. `latency`: orders paid one at a time at a
steady rate; time from the webhook POST to the PDF's `sendDocument` at the fake Bot API, both
stamped with the driver's `trio.current_time()` (the driver serves the fake Bot API).

The ingest driver defaults to a bare HTTP/1.1 keep-alive client (`--client raw`, ~0.4 ms
CPU per request): on a small machine httpx (~1.5 ms per request) takes the CPU the server
needs. `--profile FILE` samples the server with py-spy (GIL holders, collapsed stacks).

Run from the repository root:
    .venv/bin/python bench/bench_webhooks.py ingest --events 20000 --connections 32
    .venv/bin/python bench/bench_webhooks.py latency --orders 200 --rate 20
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, not installed

import httpx
import psutil
import stripe
import trio

from itinerabot.pdf import sample_order
from itinerabot.store import card_sessions
from itinerabot.store import orders as order_rows
from itinerabot.store.db import connect
from sandbox.process import ServeProcess, write_config
from sandbox.serve import InProcessTransport, serve_app
from sandbox.stripe import FakeStripe
from sandbox.telegram import DEFAULT_TOKEN, FakeBotApi

JSON = dict[str, Any]
WEBHOOK_SECRET = "whsec_bench_" + "0" * 32
STRIPE_KEY = "sk_test_bench_" + "0" * 24
FIRST_CHAT = 700_000_000
IGNORED_TYPES = ("payment_intent.succeeded", "charge.succeeded", "customer.created")


# ---------------------------------------------------------------- the set-up


@dataclass(frozen=True)
class Paid:
    """One seeded order awaiting payment and the signed-to-be event that pays it."""

    reference: str
    chat_id: int
    event: JSON


def session_id(n: int) -> str:
    """The Checkout Session id of the n-th seeded order."""
    return f"cs_test_a1bench{n:09d}"


def seed_orders(db: Path, count: int) -> list[tuple[str, int]]:
    """Write `count` orders awaiting payment, each in its own chat; (reference, chat id)."""
    order, _ = sample_order()
    now = datetime.now(UTC)
    seeded = [(f"IB-B{i:07d}", FIRST_CHAT + i) for i in range(count)]
    conn = connect(db)
    conn.execute("BEGIN")
    for n, (reference, chat_id) in enumerate(seeded):
        order_id = order_rows.insert_order(
            conn,
            reference=reference,
            chat_id=chat_id,
            itinerary=order.itinerary,
            price=Decimal("10.00"),
            currency="USD",
            created_at=now,
        )
        # the bot pays only sessions it made for the order: store each one as the bot would
        params = {"expires_at": int(now.timestamp()) + 3600}
        card_sessions.begin_attempt(conn, order_id, f"bench-{n}", params, now)
        card_sessions.set_created(conn, order_id, 1, session_id(n), "https://checkout.test")
    conn.execute("COMMIT")
    conn.close()
    return seeded


async def session_template(fake: FakeStripe) -> JSON:
    """One Checkout Session created through the fake Stripe API: the shape every event carries."""
    form = {
        "mode": "payment",
        "client_reference_id": "IB-TEMPLATE",
        "metadata[order_reference]": "IB-TEMPLATE",
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "1000",
        "line_items[0][price_data][product_data][name]": "Flight itinerary IB-TEMPLATE",
        "success_url": "https://t.me/itinerabot_sandbox_bot?start=paid",
        "cancel_url": "https://t.me/itinerabot_sandbox_bot?start=cancel",
    }
    transport = InProcessTransport(fake)
    async with httpx.AsyncClient(transport=transport, base_url="http://stripe") as client:
        answer = await client.post(
            "/v1/checkout/sessions", data=form, headers={"Authorization": f"Bearer {STRIPE_KEY}"}
        )
    answer.raise_for_status()
    session: JSON = answer.json()
    return session


def paid_events(fake: FakeStripe, template: JSON, seeded: list[tuple[str, int]]) -> list[Paid]:
    """A `checkout.session.completed` event (paid) for every seeded order."""
    paid = []
    for n, (reference, chat_id) in enumerate(seeded):
        session = copy.deepcopy(template)
        session.update(
            id=session_id(n),
            client_reference_id=reference,
            metadata={"order_reference": reference},
        )
        fake.sessions[session["id"]] = session
        paid.append(Paid(reference, chat_id, fake.complete(session["id"])))
    return paid


def ingest_mix(
    fake: FakeStripe, paid: list[Paid], *, ignored: int, duplicates: int, gap: int, seed: int
) -> list[JSON]:
    """The firing order: paid and ignored events shuffled, repeats of earlier ones sprinkled in.

    A repeat comes at least `gap` positions after an earlier event (Stripe retries later; it
    does not race itself), so it exercises the de-duplication, not a concurrent double.
    """
    rng = random.Random(seed)
    firsts = [p.event for p in paid]
    for n in range(ignored):
        kind = IGNORED_TYPES[n % len(IGNORED_TYPES)]
        firsts.append(fake.event(kind, {"id": f"pi_bench{n:012d}", "object": kind.split(".")[0]}))
    rng.shuffle(firsts)
    total = len(firsts) + duplicates
    if duplicates > total - gap - 1:
        raise ValueError("too many duplicates for the event count and gap")
    repeat_at = set(rng.sample(range(gap + 1, total), duplicates))
    fresh = iter(firsts)
    order: list[JSON] = []
    for position in range(total):
        order.append(order[rng.randrange(position - gap)] if position in repeat_at else next(fresh))
    return order


def signed_request(event: JSON) -> tuple[bytes, str]:
    """The body (Stripe's pretty-printed JSON) and a fresh `Stripe-Signature` for it."""
    payload = json.dumps(event, indent=2)
    header: str = stripe.WebhookSignature.generate_signature_header(
        payload, WEBHOOK_SECRET, int(time.time())
    )
    return payload.encode(), header


@dataclass
class Serving:
    """The running fake Bot API, the serve process and where its webhook listens."""

    api: FakeBotApi
    process: ServeProcess
    webhook_url: str
    db: Path

    @property
    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid


@asynccontextmanager
async def serving(workdir: Path, sender: JSON, log_level: str) -> AsyncIterator[Serving]:
    """Serve a FakeBotApi on loopback and start `itinerabot serve` against it (store in
    `workdir`, already seeded); SIGTERM at the end."""
    api = FakeBotApi(DEFAULT_TOKEN)
    db = workdir / "bot.sqlite3"
    async with trio.open_nursery() as nursery:
        api_base = await nursery.start(serve_app, api)
        config = write_config(
            workdir / "config.yaml",
            telegram={"token": DEFAULT_TOKEN, "api_base": api_base},
            server={"host": "127.0.0.1", "port": 0},
            store={"path": str(db)},
            stripe={
                "secret_key": STRIPE_KEY,
                "webhook_secret": WEBHOOK_SECRET,
                "api_base": "http://127.0.0.1:9",  # the webhook path never calls Stripe
            },
            circle={"enabled": False},
            sender=sender,
            logging={"level": log_level},
        )
        process: ServeProcess = await nursery.start(ServeProcess(config).run)
        address = await process.wait_ready(timeout=60)
        try:
            yield Serving(api, process, f"{address}/webhooks/stripe", db)
        finally:
            process.signal(signal.SIGTERM)
            with trio.CancelScope(shield=True):
                code = await process.wait(timeout=30)
            print(f"serve process exited with {code} after SIGTERM")
            nursery.cancel_scope.cancel()


# ---------------------------------------------------------------- clients


@dataclass
class Tally:
    """What the driver saw: status counts and request latencies (seconds)."""

    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


PostEvent = Callable[[JSON], Awaitable[int]]


@asynccontextmanager
async def httpx_poster(url: str, connections: int) -> AsyncIterator[PostEvent]:
    """POST events with one httpx client pooling `connections` keep-alive connections."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def post(event: JSON) -> int:
            body, header = signed_request(event)
            answer = await client.post(
                url,
                content=body,
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Stripe-Signature": header,
                },
            )
            return answer.status_code

        yield post


class RawConnection:
    """A bare HTTP/1.1 keep-alive connection: the cheapest client trio can drive, so the
    figures measure the server rather than the driver. Reconnects when the server closes."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        self._stream: trio.SocketStream | None = None
        self._buffer = b""

    async def post(self, event: JSON) -> int:
        body, header = signed_request(event)
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Content-Type: application/json; charset=utf-8\r\n"
            f"Stripe-Signature: {header}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        if self._stream is None:
            self._stream = await trio.open_tcp_stream(self.host, self.port)
            self._buffer = b""
        await self._stream.send_all(head + body)
        status, headers = await self._read_response()
        if headers.get("connection", "").lower() == "close":
            await self.aclose()
        return status

    async def _read_response(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self._buffer:
            await self._receive()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
        length = int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            await self._receive()
        self._buffer = self._buffer[length:]
        return int(status_line.split(" ", 2)[1]), headers

    async def _receive(self) -> None:
        assert self._stream is not None
        chunk = await self._stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("server closed the connection mid-response")
        self._buffer += chunk

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None


async def fire(events: list[JSON], connections: int, post_for: Callable[[int], PostEvent]) -> Tally:
    """Send `events` in order from `connections` workers, each posting back to back."""
    tally = Tally()
    cursor = iter(events)

    async def worker(n: int) -> None:
        post = post_for(n)
        for event in cursor:  # shared: each event is taken by exactly one worker
            sent = trio.current_time()
            status = await post(event)
            tally.latencies.append(trio.current_time() - sent)
            tally.statuses[status] += 1

    async with trio.open_nursery() as nursery:
        for n in range(connections):
            nursery.start_soon(worker, n)
    return tally


# ---------------------------------------------------------------- figures


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"machine:  {model}, {psutil.cpu_count(logical=False)} cores /"
        f" {psutil.cpu_count()} threads, {psutil.virtual_memory().total / 2**30:.1f} GiB;"
        f" {platform.system()} {platform.release()}\n"
        f"python:   {platform.python_implementation()} {platform.python_version()};"
        f" trio {trio.__version__}, httpx {httpx.__version__}, stripe {stripe.VERSION}\n"
        f"code:     {head}{' + uncommitted changes' if dirty else ''}"
    )


def count_rows(db: Path, sql: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (n,) = conn.execute(sql).fetchone()
    finally:
        conn.close()
    return int(n)


def start_profiler(output: Path | None, pid: int) -> subprocess.Popen[bytes] | None:
    """py-spy sampling the serve process (collapsed stacks, per thread) until SIGINT."""
    if output is None:
        return None
    py_spy = Path(sys.executable).with_name("py-spy")
    command = [str(py_spy), "record", "--pid", str(pid), "--format", "raw", "--threads", "--gil"]
    return subprocess.Popen([*command, "--rate", "250", "--output", str(output)])


# ---------------------------------------------------------------- modes


async def ingest(args: argparse.Namespace, workdir: Path) -> None:
    duplicates = round(args.events * args.duplicates)
    ignored = round(args.events * args.ignored)
    orders = args.events - duplicates - ignored + args.warmup
    fake = FakeStripe(api_key=STRIPE_KEY)
    seeded = seed_orders(workdir / "bot.sqlite3", orders)
    paid = paid_events(fake, await session_template(fake), seeded)
    warmup, measured = paid[: args.warmup], paid[args.warmup :]
    events = ingest_mix(
        fake, measured, ignored=ignored, duplicates=duplicates, gap=4 * args.connections, seed=1
    )
    sizes = [len(signed_request(e)[0]) for e in events[:100]]
    print(
        f"workload: {len(events)} events = {len(measured)} checkout.session.completed (paid,"
        f" distinct orders) + {duplicates} repeats + {ignored} ignored types;"
        f" body ~{statistics.median(sizes):.0f} B; {args.warmup} warm-up events first"
    )
    print(f"client:   {args.client}, {args.connections} keep-alive connections, driver process")
    async with serving(workdir, {}, args.log_level) as srv:
        server = psutil.Process(srv.pid)

        def post_for(n: int) -> PostEvent:
            return raw[n].post if args.client == "raw" else shared

        raw = [RawConnection(srv.webhook_url) for _ in range(args.connections)]
        async with httpx_poster(srv.webhook_url, args.connections) as shared:
            await fire([p.event for p in warmup], args.connections, post_for)
            profiler = start_profiler(args.profile, srv.pid)
            cpu_before, driver_before = server.cpu_times(), time.process_time()
            start = trio.current_time()
            tally = await fire(events, args.connections, post_for)
            elapsed = trio.current_time() - start
            cpu_after, driver_after = server.cpu_times(), time.process_time()
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                await trio.to_thread.run_sync(profiler.wait)
        for conn in raw:
            await conn.aclose()
        server_cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
        paid_rows = count_rows(
            srv.db, "SELECT count(*) FROM orders WHERE status != 'awaiting_payment'"
        )
        event_rows = count_rows(srv.db, "SELECT count(*) FROM webhook_events")
        backlog = count_rows(srv.db, "SELECT count(*) FROM outbox WHERE status = 'pending'")
    accepted = tally.statuses.get(200, 0)
    print(f"statuses: {dict(sorted(tally.statuses.items()))}")
    print(f"elapsed:  {elapsed:.2f} s")
    print(f"ingest:   {accepted / elapsed:,.0f} events/s accepted (200)  (aim >= 1,500)")
    print(
        f"latency:  p50 {ms(quantile(tally.latencies, 0.5))}, p99"
        f" {ms(quantile(tally.latencies, 0.99))}, max {ms(max(tally.latencies))}"
    )
    print(
        f"server:   {server_cpu:.2f} s CPU = {server_cpu / len(events) * 1e6:.0f} µs per event"
        f" ({server_cpu / elapsed:.0%} of one core)"
    )
    print(
        f"driver:   {driver_after - driver_before:.2f} s CPU"
        f" ({(driver_after - driver_before) / elapsed:.0%} of one core)"
    )
    distinct = len({e["id"] for e in events}) + len(warmup)
    print(
        f"store:    {paid_rows} orders paid (expected {len(paid)}), {event_rows} event ids"
        f" (expected {distinct}); {backlog} outbox rows still pending (sender paced at"
        " Telegram's rate)"
    )


async def latency(args: argparse.Namespace, workdir: Path) -> None:
    fake = FakeStripe(api_key=STRIPE_KEY)
    seeded = seed_orders(workdir / "bot.sqlite3", args.orders)
    paid = paid_events(fake, await session_template(fake), seeded)
    sender: JSON = {}
    if args.per_chat_interval is not None:
        sender["per_chat_interval"] = args.per_chat_interval
    if args.global_rate is not None:
        sender["global_rate"] = args.global_rate
    print(
        f"workload: {args.orders} orders paid one at a time at {args.rate:g}/s, one chat each;"
        f" sender settings {sender or 'defaults (per_chat_interval 1.0 s, global_rate 30/s)'}"
    )
    async with serving(workdir, sender, args.log_level) as srv:
        sent_at: dict[int, float] = {}
        request_latency: list[float] = []
        statuses: Counter[int] = Counter()
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            # one unmeasured request first, so the first order does not pay for a connection
            await client.post(srv.webhook_url, content=b"{}")

            async def pay(order: Paid) -> None:
                body, header = signed_request(order.event)
                sent = sent_at[order.chat_id] = trio.current_time()
                answer = await client.post(
                    srv.webhook_url,
                    content=body,
                    headers={"Content-Type": "application/json", "Stripe-Signature": header},
                )
                request_latency.append(trio.current_time() - sent)
                statuses[answer.status_code] += 1

            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                for n, order in enumerate(paid):
                    await trio.sleep_until(start + n / args.rate)
                    nursery.start_soon(pay, order)
            with trio.fail_after(args.orders / 5 + 60):
                while len(srv.api.calls_to("sendDocument")) < args.orders:  # noqa: ASYNC110
                    await trio.sleep(0.05)
        documents = {int(c.params["chat_id"]): c.at for c in srv.api.calls_to("sendDocument")}
        texts: dict[int, float] = {}
        for c in srv.api.calls_to("sendMessage"):
            texts.setdefault(int(c.params["chat_id"]), c.at)
    to_document = [documents[chat] - at for chat, at in sent_at.items()]
    to_text = [texts[chat] - at for chat, at in sent_at.items() if chat in texts]
    print(f"statuses: {dict(statuses)}; documents received: {len(documents)}")
    print(
        f"POST:              p50 {ms(statistics.median(request_latency))},"
        f" p99 {ms(quantile(request_latency, 0.99))}"
    )
    print(
        f"webhook -> 'payment received' text: median {ms(statistics.median(to_text))},"
        f" p99 {ms(quantile(to_text, 0.99))}"
    )
    print(
        f"webhook -> sendDocument:  median {ms(statistics.median(to_document))},"
        f" p99 {ms(quantile(to_document, 0.99))}, max {ms(max(to_document))}  (aim p99 < 250 ms)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    modes = parser.add_subparsers(dest="mode", required=True)
    ing = modes.add_parser("ingest", help="verified and stored events per second")
    ing.add_argument("--events", type=int, default=20_000, help="measured events K")
    ing.add_argument("--connections", type=int, default=32, help="keep-alive connections C")
    ing.add_argument("--duplicates", type=float, default=0.1, help="share of repeats")
    ing.add_argument("--ignored", type=float, default=0.1, help="share of ignored event types")
    ing.add_argument("--warmup", type=int, default=500, help="unmeasured paid events first")
    ing.add_argument("--client", choices=("raw", "httpx"), default="raw")
    ing.add_argument("--profile", type=Path, help="py-spy the server into this file (raw)")
    lat = modes.add_parser("latency", help="webhook to sendDocument, one order at a time")
    lat.add_argument("--orders", type=int, default=200)
    lat.add_argument("--rate", type=float, default=20.0, help="orders paid per second")
    lat.add_argument("--per-chat-interval", type=float, help="override sender.per_chat_interval")
    lat.add_argument("--global-rate", type=float, help="override sender.global_rate")
    for sub in (ing, lat):
        sub.add_argument("--log-level", default="INFO", help="the serve process's log level")
    args = parser.parse_args(argv)

    print(machine())
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        run = ingest if args.mode == "ingest" else latency
        trio.run(run, args, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
