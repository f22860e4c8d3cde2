"""Benchmark update handling: the real `itinerabot serve` long-polls a loopback fake Bot API fed
by many chats; how many updates it handles per second, and how soon each reply enters its outbox
(with and without slow Stripe calls). Run by hand from the repository root:

    .venv/bin/python bench/bench_updates.py [--duration 15] [--chats 1000] [--peers]

Each phase runs a fresh `serve` (fresh store) against bench/paced_botapi.py (the sandbox
FakeBotApi, which records when it hands each update out) and the sandbox FakeStripe:
- backlog: updates kept waiting (≥ --backlog) so getUpdates always returns a full batch; handled
  updates/s and the bot's CPU come from its /metrics counter and psutil over a steady window.
- rate R: R updates/s from --chats chats, each chat walking the dialogue (/start, name, trip
  type, airports, flight, date, times, summary, again). Each update's reply is found in the
  store's outbox afterwards (read-only): the first rows of its chat committed after it was
  handed out (one commit = one created_at). Its latency: the getUpdates answer that carried it
  → its outbox row (both wall clock on this machine), and the traveller's send → its row.
- slow, rate R: the same, and one update in 10 is a "Pay by card" tap, from --chats other chats
  with orders awaiting payment, whose Checkout Session Stripe answers after 5 s. The taps are
  left out of the latency figures (as the peers' --slow-every does) and reported apart.
Telegram's outbound pacing is not in the figures (they end at the outbox); the sender runs as
configured, sending at most 30 messages/s. --peers runs the python-telegram-bot peer
(../shared/peers/updates/bench.py) at the same rates. --profile FILE adds a py-spy window to
the backlog phase and prints where the time of an update goes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import timeit
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import IO

import httpx
import psutil
import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script, not installed

from bench.paced_botapi import PacedBotApi  # noqa: E402
from itinerabot.models import Airport, Flight, Itinerary  # noqa: E402
from itinerabot.store.db import connect  # noqa: E402
from itinerabot.store.orders import insert_order  # noqa: E402
from sandbox.process import ServeProcess, write_config  # noqa: E402
from sandbox.serve import serve_app  # noqa: E402
from sandbox.stripe import FakeStripe  # noqa: E402
from sandbox.telegram import DEFAULT_TOKEN  # noqa: E402

PEERS_DIR = ROOT.parent / "shared" / "peers" / "updates"
STRIPE_KEY = "sk_test_bench_updates"
STRIPE_WHSEC = "whsec_bench_updates"
#: the dialogue's chats, and the chats that only tap "Pay by card"
DIALOGUE_BASE = 3_000_000
PAY_BASE = 4_000_000
SLOW_EVERY = 10
SLOW_S = 5.0
PROFILE_RATE = 250
_REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def walk() -> list[str]:
    """One traveller's messages, /start to the summary (each gets at least one reply)."""
    when = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    return ["/start", "Jane Mary Doe", "one-way", "FRA", "JFK", "LH 400", when, "13:15", "16:05"]


def reference(k: int) -> str:
    """The k-th seeded order's reference, IB- and six letters of the bot's own alphabet."""
    letters = []
    for _ in range(6):
        k, digit = divmod(k, len(_REF_ALPHABET))
        letters.append(_REF_ALPHABET[digit])
    return "IB-" + "".join(letters)


# ---------------------------------------------------------------- traffic


@dataclass
class Traffic:
    """What update i is: the next step of a dialogue chat, or (slow) every 10th a pay tap."""

    chats: int
    slow: bool
    steps: list[str] = field(default_factory=walk)
    dialogue: int = 0
    taps: int = 0
    tap_ids: set[int] = field(default_factory=set)

    def offer(self, api: PacedBotApi, i: int) -> None:
        if self.slow and i % SLOW_EVERY == SLOW_EVERY - 1:
            chat = PAY_BASE + self.taps % self.chats
            self.tap_ids.add(api.offer_tap(chat, f"pay:card:{reference(self.taps)}"))
            self.taps += 1
            return
        chat = DIALOGUE_BASE + self.dialogue % self.chats
        api.offer_text(chat, self.steps[(self.dialogue // self.chats) % len(self.steps)])
        self.dialogue += 1


def seed_pay_orders(path: Path, chats: int, taps: int) -> None:
    """`taps` orders awaiting payment, spread over the pay chats as Traffic taps them."""
    fra = Airport("FRA", "Frankfurt Airport", "Frankfurt", "DE", "Europe/Berlin")
    jfk = Airport("JFK", "John F. Kennedy Intl", "New York", "US", "America/New_York")
    day = (datetime.now(UTC) + timedelta(days=30)).replace(tzinfo=None)  # local, as typed
    departs = day.replace(hour=13, minute=15, second=0, microsecond=0)
    flight = Flight("LH 400", fra, jfk, departs, departs.replace(hour=16, minute=5))
    itinerary = Itinerary(passengers=("BENCH TRAVELLER",), legs=((flight,),))
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for k in range(taps):
            insert_order(
                conn,
                reference=reference(k),
                chat_id=PAY_BASE + k % chats,
                itinerary=itinerary,
                price=Decimal("10.00"),
                currency="USD",
                created_at=datetime.now(UTC),
            )
        conn.execute("COMMIT")
    finally:
        conn.close()


async def offer_at_rate(api: PacedBotApi, traffic: Traffic, rate: float, count: int) -> None:
    """Offer `count` updates, update i at start + i / rate (late ticks catch up at once)."""
    start = trio.current_time()
    i = 0
    while i < count:
        await trio.sleep_until(start + i / rate)
        now = trio.current_time()
        while i < count and start + i / rate <= now:
            traffic.offer(api, i)
            i += 1


async def keep_backlog(api: PacedBotApi, traffic: Traffic, backlog: int) -> None:
    """Keep at least `backlog` updates waiting, until cancelled."""
    i = 0
    while True:
        while api.pending_updates < backlog:
            traffic.offer(api, i)
            i += 1
        await trio.sleep(0.005)


# ---------------------------------------------------------------- one phase


@dataclass
class Phase:
    name: str
    rate: float | None  # None: a standing backlog
    slow: bool = False

    @property
    def slug(self) -> str:
        """The name as a file name: "300/s slow" → "300ps-slow"."""
        return self.name.replace("/s", "ps").replace(" ", "-")


@dataclass
class PhaseRun:
    phase: Phase
    offered: int = 0
    handled: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0
    load1: float = 0.0
    exit_code: int | None = None
    fetch: list[float] = field(default_factory=list)  # getUpdates answer → outbox, s
    fetch_open: list[float] = field(default_factory=list)  # handed out, no reply: lower bounds
    sent: list[float] = field(default_factory=list)  # offered → outbox, s
    sent_open: list[float] = field(default_factory=list)
    taps: list[float] = field(default_factory=list)  # pay taps: offered → first reply
    taps_open: int = 0
    stripe_calls: int = 0
    polls: int = 0  # getUpdates calls over the whole phase
    errors: list[str] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return self.handled / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_1k(self) -> float | None:
        return 1e6 * self.cpu_s / self.handled if self.handled else None


def bot_config(workdir: Path, name: str, urls: dict[str, str], store: Path) -> Path:
    return write_config(
        workdir / f"config-{name}.yaml",
        telegram={"token": DEFAULT_TOKEN, "api_base": urls["telegram"]},
        server={"host": "127.0.0.1", "port": 0},
        store={"path": str(store)},
        sender={"shutdown_grace": 1},
        stripe={
            "secret_key": STRIPE_KEY,
            "webhook_secret": STRIPE_WHSEC,
            "api_base": urls["stripe"],
        },
        logging={"level": "INFO"},
    )


async def handled_so_far(http: httpx.AsyncClient, address: str) -> int:
    """`itinerabot_updates_handled_total` from the bot's /metrics."""
    text = (await http.get(f"{address}/metrics")).text
    match = re.search(r"^itinerabot_updates_handled_total (\S+)$", text, re.M)
    if match is None:
        raise RuntimeError("/metrics has no itinerabot_updates_handled_total")
    return int(float(match.group(1)))


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)  # the whole process: every thread


async def run_phase(args: argparse.Namespace, workdir: Path, phase: Phase) -> PhaseRun:
    """A fresh store and `serve`, the phase's traffic, SIGTERM, then the replies in its store."""
    run = PhaseRun(phase)
    store = workdir / f"store-{phase.slug}.sqlite3"
    traffic = Traffic(args.chats, phase.slow)
    count = round((phase.rate or 0) * args.duration)
    if phase.slow:
        await trio.to_thread.run_sync(seed_pay_orders, store, args.chats, count // SLOW_EVERY + 1)
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=30) as http:
        api = PacedBotApi()
        stripe = FakeStripe(api_key=STRIPE_KEY)
        stripe.delay_next_answers(SLOW_S, count=10**9)  # only pay taps call Stripe
        urls = {
            "telegram": await nursery.start(serve_app, api),
            "stripe": await nursery.start(serve_app, stripe),
        }
        serve: ServeProcess = await nursery.start(
            ServeProcess(bot_config(workdir, phase.slug, urls, store)).run
        )
        address = await serve.wait_ready(timeout=60)
        assert serve.process is not None
        proc = psutil.Process(serve.process.pid)
        run.load1 = os.getloadavg()[0]
        if phase.rate is None:
            await measure_backlog(args, run, api, traffic, proc, http, address)
        else:
            await measure_rate(args, run, api, traffic, count, proc, http, address)
        drain_end = time.time()
        serve.signal(signal.SIGTERM)
        run.exit_code = await serve.wait(timeout=60)
        run.errors = [line for line in serve.lines if " ERROR " in line][:5]
        run.stripe_calls = len(stripe.requests)
        run.polls = len(api.calls_to("getUpdates"))
        nursery.cancel_scope.cancel()
    if phase.rate is not None:
        replies = await trio.to_thread.run_sync(reply_times, store, api, traffic.tap_ids)
        fill_latencies(run, api, traffic.tap_ids, replies, drain_end)
    return run


async def measure_backlog(
    args: argparse.Namespace,
    run: PhaseRun,
    api: PacedBotApi,
    traffic: Traffic,
    proc: psutil.Process,
    http: httpx.AsyncClient,
    address: str,
) -> None:
    """Warm up, then count handled updates and CPU over --duration s of a standing backlog."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(keep_backlog, api, traffic, args.backlog)
        await trio.sleep(args.warmup)
        cpu0, done0, t0 = _cpu(proc), await handled_so_far(http, address), time.perf_counter()
        await trio.sleep(args.duration)
        cpu1, done1, t1 = _cpu(proc), await handled_so_far(http, address), time.perf_counter()
        run.cpu_s, run.handled, run.seconds = cpu1 - cpu0, done1 - done0, t1 - t0
        if args.profile is not None:
            run.profile = await profile(args, proc, http, address)
        nursery.cancel_scope.cancel()
    run.offered = len(api.offered_at)


async def measure_rate(
    args: argparse.Namespace,
    run: PhaseRun,
    api: PacedBotApi,
    traffic: Traffic,
    count: int,
    proc: psutil.Process,
    http: httpx.AsyncClient,
    address: str,
) -> None:
    """Offer `count` updates at the phase's rate, then wait (≤ --drain s) for the bot to
    handle them all."""
    assert run.phase.rate is not None
    cpu0, done0, t0 = _cpu(proc), await handled_so_far(http, address), time.perf_counter()
    await offer_at_rate(api, traffic, run.phase.rate, count)
    with trio.move_on_after(args.drain):
        # the count lives in another process: no event to wait on, so ask
        while await handled_so_far(http, address) - done0 < count:  # noqa: ASYNC110
            await trio.sleep(0.2)
    cpu1, done1, t1 = _cpu(proc), await handled_so_far(http, address), time.perf_counter()
    run.offered, run.handled = count, done1 - done0
    run.cpu_s, run.seconds = cpu1 - cpu0, t1 - t0


# ---------------------------------------------------------------- replies in the store


def reply_times(path: Path, api: PacedBotApi, taps: set[int]) -> dict[int, float]:
    """update_id → when its reply entered the outbox (Unix s), for the updates answered.

    A chat's updates are handled in order and each commit stamps its rows with one
    created_at, so a chat's k-th update owns the first distinct created_at at or after the
    moment it was handed out that no earlier update of the chat took.
    """
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT chat_id, created_at FROM outbox ORDER BY id").fetchall()
    finally:
        conn.close()
    commits: dict[int, list[float]] = defaultdict(list)
    last: dict[int, str] = {}
    for chat_id, created_at in rows:
        if last.get(chat_id) != created_at:
            commits[chat_id].append(datetime.fromisoformat(created_at).timestamp())
            last[chat_id] = created_at
    by_chat: dict[int, list[int]] = defaultdict(list)
    for update_id in sorted(api.handed_at):
        by_chat[api.chat_of[update_id]].append(update_id)
    replies: dict[int, float] = {}
    for chat_id, update_ids in by_chat.items():
        times, k = sorted(commits.get(chat_id, [])), 0
        for update_id in update_ids:
            while k < len(times) and times[k] < api.handed_at[update_id]:
                k += 1
            if k == len(times):
                break
            replies[update_id] = times[k]
            k += 1
    return replies


def fill_latencies(
    run: PhaseRun, api: PacedBotApi, taps: set[int], replies: dict[int, float], end: float
) -> None:
    for update_id, offered in api.offered_at.items():
        handed = api.handed_at.get(update_id)
        reply = replies.get(update_id)
        if update_id in taps:
            if reply is None:
                run.taps_open += 1
            else:
                run.taps.append(reply - offered)
            continue
        if reply is None:
            run.sent_open.append(end - offered)
            if handed is not None:
                run.fetch_open.append(end - handed)
            continue
        run.sent.append(reply - offered)
        if handed is not None:
            run.fetch.append(reply - handed)


def quantile(done: Sequence[float], still_open: Sequence[float], q: float) -> str:
    """The q-quantile in ms; with unanswered updates counted at their wait so far, shown as
    "≥" when the quantile falls on one of them (a lower bound)."""
    values = sorted([(v, False) for v in done] + [(v, True) for v in still_open])
    if not values:
        return "–"
    value, is_open = values[min(len(values) - 1, int(len(values) * q))]
    text = f"{value * 1000:,.1f} ms" if value < 1 else f"{value:,.2f} s"
    return ("≥ " if is_open else "") + text


# ---------------------------------------------------------------- profile


async def profile(
    args: argparse.Namespace, proc: psutil.Process, http: httpx.AsyncClient, address: str
) -> list[str]:
    """py-spy --gil on the bot for --profile-duration s of the backlog: self time by package
    and by function, in µs per handled update (time with the GIL released, i.e. sqlite and
    syscalls, is not in the samples; epoll waits are left out)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out: Path = args.profile
    done0, cpu0 = await handled_so_far(http, address), _cpu(proc)
    await trio.run_process(
        [
            py_spy, "record", "--pid", str(proc.pid), "--duration",
            str(max(1, round(args.profile_duration))), "--rate", str(PROFILE_RATE), "--gil",
            "--nonblocking", "--format", "raw", "--nolineno", "--output", str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    handled = max(1, await handled_so_far(http, address) - done0)
    cpu_us = 1e6 * (_cpu(proc) - cpu0) / handled
    leaf: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    for line in (await trio.Path(out).read_text()).splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit() or "get_events" in stack.split(";")[-1]:
            continue
        leaf[stack.split(";")[-1]] += int(count_text)
        packages[_package(stack.split(";")[-1])] += int(count_text)
    busy = max(1, sum(leaf.values()))

    def row(name: str, count: int) -> str:
        return f"| {name} | {count / busy:.1%} | {1e6 * count / PROFILE_RATE / handled:,.0f} |"

    lines = [
        f"profile (py-spy --gil, {args.profile_duration:g} s of backlog, {handled:,} updates, "
        f"{cpu_us:,.0f} µs CPU per update; raw stacks: {out})",
        "",
        "| self time by package | share | µs/update |",
        "|---|---|---|",
    ]
    lines += [row(name, c) for name, c in packages.most_common(15)]
    lines += ["", "| self time by function | share | µs/update |", "|---|---|---|"]
    return lines + [row(name, c) for name, c in leaf.most_common(25)]


def _package(frame: str) -> str:
    """`func (path/to/file.py)` → site-packages/<pkg>, itinerabot/<module>, or stdlib/<mod>."""
    match = re.search(r"\((.*)\)$", frame)
    path = match.group(1) if match else frame
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if "itinerabot/" in path:
        return "itinerabot/" + path.split("itinerabot/", 1)[1].split("/", 1)[0]
    if "/lib/python" in path:
        return "stdlib/" + path.split("/lib/python", 1)[1].split("/", 2)[1].removesuffix(".py")
    return path


# ---------------------------------------------------------------- peers


async def run_peers(args: argparse.Namespace, log: IO[str]) -> list[tuple[str, str]]:
    """The PTB peer (concurrent_updates(256)) through its own bench.py at our rates: (label,
    its JSON line)."""
    python = str(args.peers_python)
    bot = ["--", python, "ptb_bot.py", "--base", "{base}", "--concurrent", "256"]
    runs = [("as fast as asked", ["--n", str(args.peer_n)])]
    for rate in args.rates:
        n = str(round(rate * args.peer_duration))
        runs.append((f"{rate:g}/s", ["--n", n, "--rate", str(rate)]))
        runs.append((f"{rate:g}/s, 1 in 10 takes 5 s", ["--n", n, "--rate", str(rate)]))
    out = []
    for label, argv in runs:
        slow = ["--slow-every", str(SLOW_EVERY)] if "takes" in label else []
        done = await trio.run_process(
            [python, "bench.py", *argv, "--chats", str(args.chats), *slow, *bot, *slow],
            cwd=args.peers_dir,
            capture_stdout=True,
            stderr=log,
            check=False,
        )
        lines = done.stdout.decode().strip().splitlines()
        out.append((label, lines[-1] if lines else f"(no result, exit {done.returncode})"))
    return out


def peer_table(peers: list[tuple[str, str]]) -> list[str]:
    """The peer's JSON lines as a table (its latency: handed out → its reply received)."""
    out = [
        "",
        "peer: python-telegram-bot 22 Application, concurrent_updates(256), answering every text "
        "(../shared/peers/updates; latency = handed out → sendMessage received; the slow updates "
        "left out)",
        "",
        "| peer run | n | answered | updates/s | p50 | p99 | bot CPU ms/1k |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, line in peers:
        try:
            r = json.loads(line)
        except ValueError:
            out.append(f"| {label} | {line} |")
            continue
        out.append(
            f"| {label} | {r['n']:,} | {r['answered']:,} | {r['updates_per_s']} "
            f"| {r['latency_ms_p50']} ms | {r['latency_ms_p99']} ms | {r['cpu_ms_per_1k']:,.0f} |"
        )
    return out


# ---------------------------------------------------------------- report


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    versions = ", ".join(
        f"{p} {metadata.version(p)}" for p in ("trio", "httpx", "python-telegram-bot")
    )
    scale = min(timeit.repeat("sum(range(1000000))", number=1, repeat=5)) * 1000
    return (
        f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()} ({versions}, SQLite {sqlite3.sqlite_version}); "
        f"sum(range(10**6)) {scale:.1f} ms"
    )


def code_version() -> str:
    """The commit the bot runs from, and whether files differ from it (read-only git)."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return f"{ROOT} (not a git checkout)"
    changed = [line for line in git("status", "--porcelain").splitlines() if "bench/" not in line]
    return f"{ROOT} at {commit}" + (f" + {len(changed)} changed files" if changed else "")


def _f(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def report(args: argparse.Namespace, machine_line: str, runs: list[PhaseRun]) -> list[str]:
    out = [
        f"command: {' '.join([Path(sys.executable).name, *sys.argv])}",
        f"machine: {machine_line}",
        f"code: {code_version()}",
        f"stand-in: bench/paced_botapi.py (sandbox FakeBotApi on loopback, in this process); "
        f"{args.chats:,} dialogue chats; slow phases: 1 update in {SLOW_EVERY} a pay tap from "
        f"{args.chats:,} other chats, Stripe answering after {SLOW_S:g} s",
        "",
        "| phase | offered | handled | handled/s | getUpdates→outbox p50 | p99 | "
        "sent→outbox p50 | p99 | unanswered | pay taps p50 (answered) | bot CPU ms/1k | "
        "getUpdates per 1k | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        unanswered = len(r.sent_open) + r.taps_open
        taps = "–"
        if r.phase.slow:
            taps = f"{quantile(r.taps, [], 0.5)} ({len(r.taps)}/{len(r.taps) + r.taps_open})"
        out.append(
            f"| {r.phase.name} | {r.offered:,} | {r.handled:,} | {r.per_s:,.0f} "
            f"| {quantile(r.fetch, r.fetch_open, 0.5)} | {quantile(r.fetch, r.fetch_open, 0.99)} "
            f"| {quantile(r.sent, r.sent_open, 0.5)} | {quantile(r.sent, r.sent_open, 0.99)} "
            f"| {unanswered:,} | {taps} | {_f(r.cpu_ms_per_1k, 0)} "
            f"| {1000 * r.polls / max(1, r.offered):,.0f} | {r.load1:.2f} |"
        )
    out += ["", *aims(runs), "", "notes:", *notes(args, runs)]
    for r in runs:
        if r.exit_code != 0 or r.errors:
            out += [f"PROBLEMS in {r.phase.name}: exit {r.exit_code}", *r.errors]
    for r in runs:
        if r.profile:
            out += ["", *r.profile]
    return out


def aims(runs: list[PhaseRun]) -> list[str]:
    lines = ["aims (issue 11):"]
    backlog = next((r for r in runs if r.phase.rate is None), None)
    if backlog is not None:
        ok = backlog.per_s >= 1000
        lines.append(f"- ≥ 1,000 updates/s: {backlog.per_s:,.0f} → {'met' if ok else 'NOT met'}")
    at_300 = next((r for r in runs if r.phase.rate == 300 and not r.phase.slow), None)
    if at_300 is not None:
        p99 = quantile(at_300.fetch, at_300.fetch_open, 0.99)
        values = sorted(at_300.fetch + at_300.fetch_open)
        ok = bool(values) and not at_300.fetch_open and values[int(len(values) * 0.99)] < 0.05
        lines.append(f"- p99 < 50 ms at 300 updates/s: {p99} → {'met' if ok else 'NOT met'}")
    for slow in (r for r in runs if r.phase.slow):
        plain = next(r for r in runs if r.phase.rate == slow.phase.rate and not r.phase.slow)
        lines.append(
            f"- p99 unchanged with slow providers at {slow.phase.rate:g}/s: "
            f"{quantile(plain.fetch, plain.fetch_open, 0.99)} → "
            f"{quantile(slow.fetch, slow.fetch_open, 0.99)}"
        )
    return lines


def notes(args: argparse.Namespace, runs: list[PhaseRun]) -> list[str]:
    return [
        f"- backlog: ≥ {args.backlog:,} updates kept waiting; {args.warmup:g} s warm-up, then "
        f"{args.duration:g} s counted with /metrics itinerabot_updates_handled_total.",
        f"- rate phases: {args.duration:g} s of offers, then up to {args.drain:g} s for the bot to "
        "finish; handled/s = handled over offers + drain; an update unanswered at the end counts "
        "at its wait so far, and a quantile that falls on one is a lower bound (≥).",
        "- getUpdates→outbox: from the fake's getUpdates answer carrying the update to its "
        "reply's outbox created_at (the bot's clock as it commits); sent→outbox adds the time "
        "the update waited at the fake before a getUpdates took it.",
        "- Stripe calls made: "
        + ", ".join(f"{r.phase.name} {r.stripe_calls}" for r in runs if r.phase.slow),
    ]


# ---------------------------------------------------------------- main


def phases(args: argparse.Namespace) -> list[Phase]:
    out = [Phase("backlog", None)] if not args.no_backlog else []
    out += [Phase(f"{rate:g}/s", rate) for rate in args.rates]
    if not args.no_slow:
        out += [Phase(f"{rate:g}/s slow", rate, slow=True) for rate in args.rates]
    return out


async def bench(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-updates-", dir=args.workdir))
    machine_line = machine()
    runs: list[PhaseRun] = []
    for phase in phases(args):
        run = await run_phase(args, workdir, phase)
        runs.append(run)
        print(f"{phase.name}: {run.handled:,} handled, {run.per_s:,.0f}/s, exit "
              f"{run.exit_code}", flush=True)  # fmt: skip
    print()
    print("\n".join(report(args, machine_line, runs)), flush=True)
    if args.peers:
        with (workdir / "peers.log").open("w") as log:
            peers = await run_peers(args, log)
        print("\n".join(peer_table(peers)))
    ok = all(r.exit_code == 0 for r in runs)
    if args.keep or not ok:
        print(f"\nwork folder (stores, configs): {workdir}")
    else:
        shutil.rmtree(workdir)
    return 0 if ok else 1


def _rates(text: str) -> list[float]:
    return [float(r) for r in text.split(",") if r]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="s per phase (15)")
    parser.add_argument("--chats", type=int, default=1000, help="chats (1000)")
    parser.add_argument("--rates", type=_rates, default=[100.0, 300.0, 1000.0], help="100,300,1000")
    parser.add_argument("--backlog", type=int, default=2000, help="updates kept waiting (2000)")
    parser.add_argument("--warmup", type=float, default=3.0, help="backlog warm-up, s (3)")
    parser.add_argument("--drain", type=float, default=30.0, help="s to finish after offers (30)")
    parser.add_argument("--no-backlog", action="store_true", help="skip the backlog phase")
    parser.add_argument("--no-slow", action="store_true", help="skip the slow-provider phases")
    parser.add_argument("--peers", action="store_true", help="also run the PTB peer")
    parser.add_argument("--peers-python", type=Path, default=ROOT / ".venv" / "bin" / "python")
    parser.add_argument("--peers-dir", type=Path, default=PEERS_DIR, help="the peers' bench.py")
    parser.add_argument("--peer-n", type=int, default=5000, help="peer's as-fast-as-asked n")
    parser.add_argument("--peer-duration", type=float, default=10.0, help="peer s per rate")
    parser.add_argument("--profile", type=Path, help="py-spy raw stacks here, and a summary")
    parser.add_argument("--profile-duration", type=float, default=10.0, help="py-spy s (10)")
    parser.add_argument("--workdir", type=Path, help="parent of the work folder (a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.chats < 1 or not args.rates or min(args.rates) <= 0:
        parser.error("--duration, --chats and --rates must be positive")
    if args.profile is not None:
        args.profile = args.profile.resolve()
    return trio.run(bench, args)


if __name__ == "__main__":
    raise SystemExit(main())
