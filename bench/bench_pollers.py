"""Benchmark the USDC pollers: the real `itinerabot serve` resumes N open payment intents and checks
them against a loopback fake Circle. Prints CPU per 1,000 checks, RSS per 1,000 pollers and the
time from SIGTERM to exit, beside the peer workloads with --peers. Run by hand:

    .venv/bin/python bench/bench_pollers.py [--n 10000] [--interval 30] [--duration 60] [--peers]
    .venv/bin/python bench/bench_pollers.py --n 1000 --rps 10 --taps 3 [--circle-delay 1]

Every contender talks to the peers' server (../shared/peers/pollers/server.py, its own process,
its CPU not counted), started fresh for each run. Ours: a store pre-seeded with N orders awaiting
payment and N intents in status 'polling' (deadlines days away), `serve` started as a subprocess
with its Bot API on a sandbox FakeBotApi; CPU and checks are metered over a steady window that
starts once every poller has checked once. RSS per 1,000 pollers is measured against a run with
no intents. --peers runs poll_trio.py (bare trio loop) and poll_ptb.py (python-telegram-bot
JobQueue) with the same N/interval/duration, in the peers' own venv (see their README), and their
`--stop-test` as the peers' driver does it. --profile FILE adds a py-spy window after the
measured one and prints where the CPU of a check goes.

--taps S: new travellers pay in USDC while the N intents are polled. Chats walk the dialogue
through the sandbox Bot API to the summary first; in the window one presses "Pay with USDC"
every S seconds, and the time from the press to the deposit address in the chat is measured
(p50/p99). The fake Circle then takes creates and shows a new intent's address --circle-delay
seconds after creating it (Circle's own delay); `circle.address_check_interval` is
--address-every. The window starts one interval after ready, not after every poller checked.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import timeit
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import httpx
import psutil
import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script, not installed

from bench.fake_circle import ADDRESS, AMOUNT, CHAIN  # noqa: E402
from itinerabot.adapters.circle.errors import MalformedResponse  # noqa: E402
from itinerabot.adapters.circle.status import parse_payment_intent_response  # noqa: E402
from itinerabot.models import Airport, Flight, Itinerary  # noqa: E402
from itinerabot.store.db import connect  # noqa: E402
from itinerabot.store.orders import insert_order  # noqa: E402
from sandbox.demo import PAY_USDC, USDC_TRIP, Traveller  # noqa: E402
from sandbox.process import LineProcess, ServeProcess, write_config  # noqa: E402
from sandbox.serve import serve_app  # noqa: E402
from sandbox.telegram import DEFAULT_TOKEN, FakeBotApi  # noqa: E402

PEERS_DIR = ROOT.parent / "shared" / "peers" / "pollers"
PEER_SERVER = PEERS_DIR / "server.py"
FAKE_CIRCLE = ROOT / "bench" / "fake_circle.py"
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
PEERS = {
    "A bare trio loop (poll_trio.py)": "poll_trio.py",
    "C PTB JobQueue (poll_ptb.py)": "poll_ptb.py",
}
MIB = 2**20
#: a check that ran is counted when it reaches the server; kept up = this share of the schedule
KEPT_UP = 0.97
#: polling window and intent deadlines: far beyond any run
WINDOW_S = 10 * 86400.0


# ---------------------------------------------------------------- child processes


class Circle:
    """One fake Circle process: its URL, a live request count (fake_circle.py only), its tally."""

    def __init__(self, proc: LineProcess, url: str) -> None:
        self.proc = proc
        self.url = url

    async def count(self) -> int:
        """Requests served so far (SIGUSR1 → `COUNT n`)."""
        start = len(self.proc.lines)
        self.proc.signal(signal.SIGUSR1)
        return int((await self.proc.wait_for_line("COUNT ", 10, start=start)).split()[1])

    async def stop(self) -> dict[str, Any]:
        """SIGTERM; returns the server's final JSON line (requests served, its CPU seconds)."""
        self.proc.signal(signal.SIGTERM)
        await self.proc.wait(30)
        for line in self.proc.lines:
            if line.startswith("{"):
                result: dict[str, Any] = json.loads(line)
                return result
        return {}


async def start_circle(nursery: trio.Nursery, argv: Sequence[str | Path], log: IO[str]) -> Circle:
    proc: LineProcess = await nursery.start(LineProcess(argv, other=log).run)
    port = (await proc.wait_for_line("LISTENING", 30)).split()[1]
    return Circle(proc, f"http://127.0.0.1:{port}")


def circle_argv(full_body: bool, creates: float | None = None) -> list[str | Path]:
    """Our runs: the peers' server code through fake_circle.py (adds the live count); with
    `creates` (Circle's delay before an address shows) it also takes creates."""
    argv: list[str | Path] = [sys.executable, FAKE_CIRCLE, "--server", PEER_SERVER, "--port", "0"]
    if creates is not None:
        return [*argv, "--creates", str(creates)]
    return [*argv, "--full-body"] if full_body else argv


# ---------------------------------------------------------------- the body our parser needs


@dataclass
class BodyChoice:
    full_body: bool
    note: str


async def _fetch_one(full_body: bool, intent_id: str, log: IO[str]) -> bytes:
    async with trio.open_nursery() as nursery:
        circle = await start_circle(nursery, circle_argv(full_body), log)
        async with httpx.AsyncClient() as client:
            body = (await client.get(f"{circle.url}/v1/paymentIntents/{intent_id}")).content
        await circle.stop()
    return body


async def choose_body(log: IO[str]) -> BodyChoice:
    """Serve ours the peers' body if our parser takes it, else the full PaymentIntent shape."""
    probe_id = str(uuid.UUID(int=1, version=4))
    peer_body = await _fetch_one(False, probe_id, log)
    try:
        parse_payment_intent_response(peer_body)
    except MalformedResponse as exc:
        reason = f"our parser REJECTS the peers' trimmed body ({exc.message})"
    else:
        return BodyChoice(False, "ours is served the peers' body as is (our parser accepts it)")
    full_body = await _fetch_one(True, probe_id, log)
    view = parse_payment_intent_response(full_body)  # must parse now, or the benchmark is moot
    assert view.id == probe_id and view.address == ADDRESS, view
    return BodyChoice(
        True,
        f"{reason}, so ours is served by the same server code answering the full PaymentIntent "
        f"shape (bench/fake_circle.py --full-body: {len(full_body)} B bodies vs the peers' "
        f"{len(peer_body)} B)",
    )


# ---------------------------------------------------------------- our run


def seed_store(path: Path, n: int, *, seed: int = 1) -> None:
    """N orders awaiting payment, each with an intent in status 'polling' and a far deadline."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    deadline = time.time() + WINDOW_S
    fra = Airport("FRA", "Frankfurt Airport", "Frankfurt", "DE", "Europe/Berlin")
    jfk = Airport(
        "JFK", "John F. Kennedy International Airport", "New York", "US", "America/New_York"
    )
    itinerary = Itinerary(
        passengers=("Bench Traveller",),
        legs=(
            (
                Flight(
                    "LH 400",
                    fra,
                    jfk,
                    datetime(2026, 12, 24, 13, 15),
                    datetime(2026, 12, 24, 16, 5),
                ),
            ),
        ),
    )
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        rows = []
        for i in range(n):
            order_id = insert_order(
                conn,
                reference=f"IB-BENCH{i:06d}",
                chat_id=1_000_000 + i,
                itinerary=itinerary,
                price=Decimal(AMOUNT),
                currency="USD",
                created_at=now,
            )
            intent_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            rows.append(
                (order_id, str(uuid.uuid4()), intent_id, deadline, ADDRESS, CHAIN, now.isoformat())
            )
        conn.executemany(
            "INSERT INTO circle_intents (order_id, attempt, idempotency_key, intent_id, status,"
            " deadline_epoch, address, chain, created_at)"
            " VALUES (?, 1, ?, ?, 'polling', ?, ?, ?, ?)",
            rows,
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


@dataclass
class ServeRun:
    intents: int
    ready_s: float = 0.0
    warmup_s: float = 0.0
    warmed_up: bool = True
    window_s: float = 0.0
    checks: int = 0
    cpu_s: float = 0.0
    rss_mib: float = 0.0
    peak_mib: float = 0.0
    pollers: int | None = None
    stop_s: float = 0.0
    exit_code: int | None = None
    errors: list[str] = field(default_factory=list)
    log_tail: list[str] = field(default_factory=list)
    profile: Profile | None = None
    load1: float = 0.0  # load average as the window starts (other work on the machine)
    #: --taps: seconds from each press of "Pay with USDC" to the address in the chat
    taps: list[float] = field(default_factory=list)
    tap_failures: list[str] = field(default_factory=list)
    check_interval: float | None = None  # /healthz usdc_check_interval at the window's end

    @property
    def cpu_ms_per_1k(self) -> float | None:
        return 1e6 * self.cpu_s / self.checks if self.checks else None


def _cpu(proc: Any) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)  # the whole process: every thread


def _peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / MIB
    return 0.0


async def run_serve(
    args: argparse.Namespace, workdir: Path, intents: int, body: BodyChoice, log: IO[str]
) -> ServeRun:
    """Seed a store, start `serve`, meter it, SIGTERM it. With intents=0: the RSS baseline."""
    result = ServeRun(intents)
    store = workdir / f"store-{intents}.sqlite3"
    await trio.to_thread.run_sync(seed_store, store, intents)
    async with trio.open_nursery() as nursery:
        api = FakeBotApi()
        bot_api = await nursery.start(serve_app, api)
        taps = args.taps is not None and intents > 0
        creates = args.circle_delay if taps else None
        circle = await start_circle(nursery, circle_argv(body.full_body, creates), log)
        config = write_config(
            workdir / f"config-{intents}.yaml",
            telegram={"token": DEFAULT_TOKEN, "api_base": bot_api},
            server={"host": "127.0.0.1", "port": 0},
            store={"path": str(store)},
            stripe={"enabled": False},
            circle={
                "enabled": True,
                "api_key": "SAND_API_KEY:bench:pollers",
                "base_url": circle.url,
                "chain": CHAIN,
                "poll_interval": args.interval,
                "poll_window": WINDOW_S,
                "requests_per_second": args.rps,
                "max_connections": args.max_connections,
                "address_check_interval": args.address_every,
            },
            logging={"level": "INFO"},
        )
        before = await circle.count()
        launched = time.perf_counter()
        serve: ServeProcess = await nursery.start(ServeProcess(config).run)
        address = await serve.wait_ready(timeout=300)
        result.ready_s = time.perf_counter() - launched
        assert serve.process is not None
        proc = psutil.Process(serve.process.pid)
        if taps:
            await run_taps(args, api, circle, proc, result)
        elif intents:
            # warm-up: every poller has checked once (resume spreads them over one interval)
            warm_start = time.perf_counter()
            with trio.move_on_after(2 * args.interval + 60) as cap:
                # the server's count lives in another process: no event to wait on, so ask
                while await circle.count() - before < intents:  # noqa: ASYNC110
                    await trio.sleep(0.5)
            result.warmed_up = not cap.cancelled_caught
            result.warmup_s = time.perf_counter() - warm_start
            result.load1 = os.getloadavg()[0]
            cpu0, checks0, t0 = _cpu(proc), await circle.count(), time.perf_counter()
            await trio.sleep(args.duration)
            cpu1, checks1, t1 = _cpu(proc), await circle.count(), time.perf_counter()
            result.cpu_s, result.checks, result.window_s = cpu1 - cpu0, checks1 - checks0, t1 - t0
        else:
            await trio.sleep(args.settle)
        result.rss_mib = proc.memory_info().rss / MIB
        result.peak_mib = _peak_mib(proc.pid)
        async with httpx.AsyncClient() as client:
            health = (await client.get(f"{address}/healthz")).json()
        result.pollers = health.get("pollers")
        result.check_interval = health.get("usdc_check_interval")
        if intents and args.profile is not None:
            result.profile = await profile_serve(args, proc, circle, log)
        start = time.perf_counter()
        serve.signal(signal.SIGTERM)
        result.exit_code = await serve.wait(timeout=120)
        result.stop_s = time.perf_counter() - start
        result.log_tail = serve.lines[-15:]
        result.errors = [line for line in serve.lines if " ERROR " in line][:5]
        await circle.stop()
        nursery.cancel_scope.cancel()  # the fake Bot API
    return result


# ---------------------------------------------------------------- new travellers


async def run_taps(
    args: argparse.Namespace, api: FakeBotApi, circle: Circle, proc: Any, result: ServeRun
) -> None:
    """Walk the chats to their summaries, wait out one interval (the routine checks fill the
    budget), then meter the window: one press of "Pay with USDC" every --taps seconds."""
    chats = math.ceil(args.duration / args.taps)
    travellers = [Traveller(api, 9_000_000 + i, timeout=300) for i in range(chats)]
    warm_start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for traveller in travellers:
            nursery.start_soon(_to_summary, traveller)
    await trio.sleep(max(0.0, args.interval - (time.perf_counter() - warm_start)))
    result.warmup_s = time.perf_counter() - warm_start
    result.load1 = os.getloadavg()[0]
    cpu0, checks0, t0 = _cpu(proc), await circle.count(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for i, traveller in enumerate(travellers):
            await trio.sleep(max(0.0, t0 + i * args.taps - time.perf_counter()))
            nursery.start_soon(_tap, traveller, result)
        await trio.sleep(max(0.0, t0 + args.duration - time.perf_counter()))
        cpu1, checks1, t1 = _cpu(proc), await circle.count(), time.perf_counter()
    result.cpu_s, result.checks, result.window_s = cpu1 - cpu0, checks1 - checks0, t1 - t0


async def _to_summary(traveller: Traveller) -> None:
    for action, phrase, replies in USDC_TRIP.answers():
        await traveller.say(action, phrase, replies)


async def _tap(traveller: Traveller, result: ServeRun) -> None:
    """Press "Pay with USDC"; time until the deposit address is in the chat."""
    keyboard = traveller.api.last_keyboard(traveller.chat_id)
    assert keyboard is not None, "no summary with pay buttons"
    reference = keyboard.data_for(PAY_USDC).rpartition(":")[2]
    pressed = time.perf_counter()
    traveller.act(f"press:{PAY_USDC}", 2)
    try:
        await traveller.deposit_address(reference)
    except Exception as exc:  # a bench reports what failed rather than stopping
        result.tap_failures.append(f"{reference}: {exc!r}"[:200])
        return
    result.taps.append(time.perf_counter() - pressed)


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def tap_lines(args: argparse.Namespace, ours: ServeRun) -> list[str]:
    """The --taps figures: press → address in the chat, and the checks kept meanwhile."""
    if not ours.taps:
        return ["taps: none measured", *(f"- {f}" for f in ours.tap_failures)]
    aim = 2.0 + args.circle_delay
    p50, p99 = _percentile(ours.taps, 0.5), _percentile(ours.taps, 0.99)
    return [
        f'new travellers: {len(ours.taps)} presses of "Pay with USDC" (one every '
        f"{args.taps:g} s) while {args.n:,} intents are polled at {args.rps:g} requests/s; "
        f"Circle shows an address {args.circle_delay:g} s after creating the intent; "
        f"address_check_interval {args.address_every:g} s",
        f"- press → address in the chat: p50 {p50:.2f} s, p99 {p99:.2f} s, "
        f"max {max(ours.taps):.2f} s (aim p99 < 2 s + Circle's delay = {aim:g} s → "
        f"{_met(p99 < aim)})",
        f"- /healthz usdc_check_interval at the window's end: {ours.check_interval} s",
        *(f"- FAILED: {f}" for f in ours.tap_failures),
    ]


# ---------------------------------------------------------------- profile


@dataclass
class Profile:
    """py-spy's samples of the serve process, folded three ways (counts of samples)."""

    samples: int
    waiting: int  # leaf = trio's epoll wait: idle or the syscall; left out of the shares
    window_s: float
    checks: int
    cpu_s: float
    sys_s: float  # of cpu_s, in the kernel
    leaf: list[tuple[str, int]]
    inclusive: list[tuple[str, int]]
    packages: list[tuple[str, int]]

    @property
    def busy(self) -> int:
        return self.samples - self.waiting


PROFILE_RATE = 250
#: the leaf frame of a thread asleep in (or returning from) epoll_wait
_EPOLL_WAIT = "EpollIOManager.get_events"


async def profile_serve(
    args: argparse.Namespace, proc: Any, circle: Circle, log: IO[str]
) -> Profile:
    """py-spy on the serve process for --profile-duration s, sampling whichever thread holds
    the GIL: each sample is 1/PROFILE_RATE s of Python-level CPU, so it converts to µs per check.
    (py-spy cannot tell idle threads from busy ones in this VM, so `--gil`; time with the GIL
    released, i.e. syscalls and sqlite, is not in the samples.)"""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out: Path = args.profile
    seconds = str(max(1, round(args.profile_duration)))
    sys0 = proc.cpu_times().system
    cpu0, checks0, t0 = _cpu(proc), await circle.count(), time.perf_counter()
    await trio.run_process(
        [
            py_spy, "record", "--pid", str(proc.pid), "--duration", seconds, "--rate",
            str(PROFILE_RATE), "--gil", "--nonblocking", "--format", "raw", "--nolineno",
            "--output", str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )  # fmt: skip
    cpu1, checks1, t1 = _cpu(proc), await circle.count(), time.perf_counter()
    sys_s = proc.cpu_times().system - sys0
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = waiting = 0
    for line in (await trio.Path(out).read_text()).splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), stack.split(";")
        total += count
        if frames[-1].startswith(_EPOLL_WAIT):
            waiting += count
            continue
        leaf[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for frame in set(frames):
            inclusive[frame] += count
    busy = total - waiting
    return Profile(
        samples=total,
        waiting=waiting,
        window_s=t1 - t0,
        checks=checks1 - checks0,
        cpu_s=cpu1 - cpu0,
        sys_s=sys_s,
        leaf=leaf.most_common(20),
        inclusive=[(f, c) for f, c in inclusive.most_common(80) if c < 0.9 * busy][:30],
        packages=packages.most_common(15),
    )


_FRAME_FILE = re.compile(r"\((.*)\)$")


def _package(frame: str) -> str:
    """`func (path/to/file.py)` → a package name: site-packages/<pkg>, itinerabot.<mod>, stdlib."""
    match = _FRAME_FILE.search(frame)
    path = match.group(1) if match else frame
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if "itinerabot/" in path:
        return "itinerabot/" + path.split("itinerabot/", 1)[1].split("/", 1)[0]
    if "/lib/python" in path:
        return "stdlib/" + path.split("/lib/python", 1)[1].split("/", 2)[1].removesuffix(".py")
    return path


# ---------------------------------------------------------------- peers


@dataclass
class PeerRun:
    name: str
    result: dict[str, Any]
    server: dict[str, Any]
    stop: dict[str, Any]
    stop_s: float
    stop_exit: int
    load1: float


def _result_line(lines: Sequence[str]) -> dict[str, Any]:
    for line in lines:
        if line.startswith("RESULT "):
            found: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return found
    raise RuntimeError("no RESULT line in:\n" + "\n".join(lines[-20:]))


async def run_peer(args: argparse.Namespace, name: str, script: str, log: IO[str]) -> PeerRun:
    """The peer's steady run, then its --stop-test as the peers' bench.py does it (stop_live)."""
    n, interval, duration = str(args.n), str(args.interval), str(args.duration)
    python = str(args.peers_python)
    log.write(f"\n### {name}\n")
    log.flush()
    async with trio.open_nursery() as nursery:
        circle = await start_circle(nursery, [python, PEER_SERVER, "--port", "0"], log)
        load1 = os.getloadavg()[0]
        done = await trio.run_process(
            [python, script, n, interval, duration, "--url", circle.url],
            cwd=PEERS_DIR,
            capture_stdout=True,
            stderr=log,
        )
        result = _result_line(done.stdout.decode().splitlines())
        server = await circle.stop()
    # stop_live: phases spread over one interval, SIGTERM 0.5 s after 30 % of N checks
    ready = str(max(1, int(0.3 * args.n)))
    stop_args = ["--stop-test", "--first-spread", interval, "--ready-checks", ready]
    async with trio.open_nursery() as nursery:
        circle = await start_circle(nursery, [python, PEER_SERVER, "--port", "0"], log)
        peer: LineProcess = await nursery.start(
            LineProcess(
                [python, script, n, interval, "0", "--url", circle.url, *stop_args],
                cwd=PEERS_DIR,
                other=log,
            ).run
        )
        await peer.wait_for_line("READY", 600)
        await trio.sleep(0.5)
        start = time.perf_counter()
        peer.signal(signal.SIGTERM)
        code = await peer.wait(600)
        stop_s = time.perf_counter() - start
        stop = _result_line(peer.lines)
        await circle.stop()
    return PeerRun(name, result, server, stop, stop_s, code, load1)


# ---------------------------------------------------------------- report


def machine() -> str:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("trio", "httpx", "httpcore"))
    scale = min(timeit.repeat("sum(range(1000000))", number=1, repeat=5)) * 1000
    return (
        f"{model or platform.processor()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()} ({versions}); "
        f"sum(range(10**6)) {scale:.1f} ms; load average {os.getloadavg()[0]:.2f}"
    )


def _f(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def report(
    args: argparse.Namespace,
    machine_line: str,
    body: BodyChoice,
    ours: ServeRun,
    base: ServeRun,
    peers: list[PeerRun],
) -> list[str]:
    want = args.n / args.interval
    out = [
        f"USDC pollers: N={args.n:,} open intents, interval {args.interval:g} s, "
        f"window {args.duration:g} s (want {want:,.0f} checks/s)",
        f"machine: {machine_line}",
        f"fake Circle: {PEER_SERVER} (own process, CPU not counted); {body.note}",
        "",
        "| contender | checks | checks/s | kept up | CPU s | CPU ms / 1k checks "
        "| RSS MiB / 1k pollers | SIGTERM→exit s | exit | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    per_1k = args.n / 1000
    ours_rate = ours.checks / ours.window_s if ours.window_s else 0.0
    rss = (ours.rss_mib - base.rss_mib) / per_1k
    out.append(
        f"| itinerabot serve | {ours.checks:,} | {ours_rate:,.0f} "
        f"| {_kept(ours_rate, want)} | {ours.cpu_s:.2f} | {_f(ours.cpu_ms_per_1k, 0)} "
        f"| {rss:.2f} | {ours.stop_s:.3f} | {ours.exit_code} | {ours.load1:.2f} |"
    )
    for peer in peers:
        r = peer.result
        rate = r["checks"] / r["wall_s"] if r.get("wall_s") else 0.0
        out.append(
            f"| {peer.name} | {r['checks']:,} | {rate:,.0f} | {_kept(rate, want)} "
            f"| {r['cpu_s']:.2f} | {_f(r.get('cpu_ms_per_1k_checks'), 0)} "
            f"| {r['mib_per_1k_pollers']:.2f} | {peer.stop_s:.3f} | {peer.stop_exit} "
            f"| {peer.load1:.2f} |"
        )
    if args.taps is not None:
        out += ["", *tap_lines(args, ours)]
    out += ["", *_aims(ours, rss, peers), "", "notes:"]
    peak = (ours.peak_mib - base.peak_mib) / per_1k
    warm_what = (
        "one interval after ready, the chats at their summaries"
        if args.taps is not None
        else "once every poller has checked once"
    )
    out += [
        f"- ours: the window starts {warm_what} (warm-up "
        f"{ours.warmup_s:.1f} s{'' if ours.warmed_up else ', CAPPED: not all had checked'}), "
        f"ready {ours.ready_s:.1f} s after launch; checks = GETs the server saw in the window; "
        f"/healthz pollers = {ours.pollers} at its end.",
        f"- ours RSS: {ours.rss_mib:.1f} MiB with N pollers at the window's end − "
        f"{base.rss_mib:.1f} MiB with no intents ({args.settle:g} s after ready); "
        f"peak-based like the peers' (VmHWM − baseline VmHWM): {peak:.2f} MiB / 1k.",
        f"- ours SIGTERM→exit: after the window (and any profile), N pollers live; "
        f"no-intent baseline {base.stop_s:.3f} s (exit {base.exit_code}).",
    ]
    if peers:
        out += [
            "- peers: CPU and checks over their whole run (first checks spread over one "
            "interval, as resume spreads ours); RSS = (peak − RSS before the pollers) per 1k; "
            "SIGTERM→exit from their --stop-test as their bench.py does it (first-spread = "
            f"interval, SIGTERM 0.5 s after {int(0.3 * args.n):,} checks).",
            "- server requests / CPU s per run: "
            + "; ".join(
                f"{p.name.split(' (')[0]} {p.server.get('server_requests')} / "
                f"{p.server.get('server_cpu_s')}"
                for p in peers
            ),
        ]
    if ours.exit_code != 0 or base.exit_code != 0 or ours.errors:
        out += ["", "PROBLEMS:", f"- exit codes {ours.exit_code} / {base.exit_code}"]
        out += [f"- {line}" for line in ours.errors]
        out += ["- log tail:", *(f"    {line}" for line in ours.log_tail)]
    if ours.profile is not None:
        out += ["", *_profile_lines(ours.profile, args.profile)]
    return out


def _kept(rate: float, want: float) -> str:
    share = rate / want if want else 0.0
    return f"{'yes' if share >= KEPT_UP else 'NO'} ({share:.0%})"


def _aims(ours: ServeRun, rss: float, peers: list[PeerRun]) -> list[str]:
    by_script = {p.name: p for p in peers}
    ptb = next((p for n, p in by_script.items() if "ptb" in n), None)
    bare = next((p for n, p in by_script.items() if "trio" in n), None)
    lines = ["aims (issue 7):"]
    cpu = ours.cpu_ms_per_1k
    if ptb is not None and cpu is not None:
        limit = ptb.result["cpu_ms_per_1k_checks"] / 2
        lines.append(
            f"- CPU / 1k checks ≤ ½ JobQueue = {limit:,.0f} ms: {cpu:,.0f} → {_met(cpu <= limit)}"
        )
    if bare is not None:
        limit = bare.result["mib_per_1k_pollers"]
        ok = _met(rss <= limit)
        lines.append(f"- RSS / 1k pollers ≤ bare trio loop = {limit:.2f} MiB: {rss:.2f} → {ok}")
    lines.append(
        f"- SIGTERM→exit < 1 s with N pollers: {ours.stop_s:.3f} s, exit {ours.exit_code} → "
        f"{_met(ours.stop_s < 1 and ours.exit_code == 0)}"
    )
    return lines


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _profile_lines(p: Profile, path: Path) -> list[str]:
    checks = max(p.checks, 1)
    cpu = 1e6 * p.cpu_s / checks
    gil = 1e6 * p.busy / PROFILE_RATE / checks
    out = [
        f"profile: py-spy --gil, {p.window_s:.0f} s after the measured window: {p.checks:,} "
        f"checks, {cpu:,.0f} µs CPU per check ({p.sys_s / max(p.cpu_s, 1e-9):.0%} in the "
        f"kernel), of which {gil:,.0f} µs with the GIL held "
        f"({p.busy} samples at {PROFILE_RATE} Hz; the rest is syscalls and C code that "
        f"releases the GIL; {p.waiting} samples in trio's epoll wait left out). "
        f"Raw stacks: {path}",
        "",
        "| self time by package | share | µs/check |",
        "|---|---|---|",
    ]

    def share(count: int) -> str:
        return f"{count / max(p.busy, 1):.1%} | {1e6 * count / PROFILE_RATE / checks:,.0f}"

    out += [f"| {name} | {share(c)} |" for name, c in p.packages]
    out += ["", "| self time by function | share | µs/check |", "|---|---|---|"]
    out += [f"| {name} | {share(c)} |" for name, c in p.leaf]
    out += ["", "| inclusive (under 90 %) | share | µs/check |", "|---|---|---|"]
    out += [f"| {name} | {share(c)} |" for name, c in p.inclusive]
    return out


# ---------------------------------------------------------------- main


async def bench(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-pollers-"))
    log_path = workdir / "children.log"
    with log_path.open("w") as log:
        machine_line = machine()
        body = await choose_body(log)
        print(f"fake Circle for ours: {body.note}", flush=True)
        base = await run_serve(args, workdir, 0, body, log)
        print(
            f"baseline (no intents): RSS {base.rss_mib:.1f} MiB, exit {base.exit_code}", flush=True
        )
        ours = await run_serve(args, workdir, args.n, body, log)
        print(
            f"ours: {ours.checks:,} checks, CPU {ours.cpu_s:.2f} s, exit {ours.exit_code}",
            flush=True,
        )
        peers: list[PeerRun] = []
        if args.peers:
            for name, script in PEERS.items():
                peers.append(await run_peer(args, name, script, log))
                print(f"{name}: done", flush=True)
    print()
    print("\n".join(report(args, machine_line, body, ours, base, peers)))
    ok = ours.exit_code == 0 and base.exit_code == 0
    if args.keep or not ok:
        print(f"\nwork folder (stores, configs, children.log): {workdir}")
    else:
        shutil.rmtree(workdir)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="open intents = pollers (10000)")
    parser.add_argument("--interval", type=float, default=30.0, help="poll_interval, s (30)")
    parser.add_argument("--duration", type=float, default=60.0, help="measured window, s (60)")
    parser.add_argument("--peers", action="store_true", help="also run the peer workloads")
    parser.add_argument("--peers-python", type=Path, default=PEERS_PYTHON, help="peers' venv")
    parser.add_argument("--rps", type=float, default=1000.0, help="circle.requests_per_second")
    parser.add_argument("--max-connections", type=int, default=10, help="circle.max_connections")
    parser.add_argument("--settle", type=float, default=5.0, help="baseline: s after ready")
    parser.add_argument(
        "--profile", type=Path, help="py-spy raw stacks to this file, and a summary"
    )
    parser.add_argument("--profile-duration", type=float, default=20.0, help="py-spy seconds")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--taps", type=float, help="a new traveller pays every TAPS s")
    parser.add_argument(
        "--circle-delay", type=float, default=1.0, help="--taps: s until Circle shows an address"
    )
    parser.add_argument(
        "--address-every", type=float, default=1.0, help="--taps: address_check_interval, s"
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.interval <= 0 or args.duration <= 0:
        parser.error("--n, --interval and --duration must be positive")
    if args.peers and not args.peers_python.exists():
        parser.error(
            f"{args.peers_python} is missing: python3 -m venv .venv-peers && .venv-peers/bin/pip "
            'install trio httpx "python-telegram-bot[job-queue]" hypercorn psutil'
        )
    if args.profile is not None:
        args.profile = args.profile.resolve()
    return trio.run(bench, args)


if __name__ == "__main__":
    raise SystemExit(main())
