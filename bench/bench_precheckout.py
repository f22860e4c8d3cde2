"""Benchmark the pre-checkout answer: how soon the real `itinerabot serve` answers Telegram's
`pre_checkout_query` (which Telegram cancels after 10 s) while it is busy. Run by hand from the
repository root:

    .venv/bin/python bench/bench_precheckout.py [--duration 15] [--rate 300] [--probes 5]

Each phase runs a fresh `serve` (fresh store, Stars on) against a loopback fake Bot API and
fake Stripe, with --probes pre-checkout queries a second for seeded Stars invoices (each from
its order's own chat, so every answer is `ok`), and measures, per query, the time from the
getUpdates answer that carried it to the answerPreCheckoutQuery reaching the fake (wall clock,
one machine). Phases:
- idle: the queries alone;
- R/s: R dialogue updates a second from --chats chats beside them (bench_updates' traffic);
- R/s slow: the same with one update in ten a "Pay by card" tap that Stripe answers after 5 s;
- R/s store locked: the same as R/s while another process holds the store's write lock for
  2 s in every 3 (a slow disk, a long operator command): the chats' commits wait; the checks
  read beside them;
- R/s store locked 12 s: the lock held 12 s (longer than Telegram waits) in every 14.
A query's wait in Telegram's own queue (behind updates the bot has not fetched) is not in the
figures: it is the same for any bot, and under the rates here the bot keeps up.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import trio
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script, not installed

from bench.bench_updates import (  # noqa: E402
    PAY_BASE,
    SLOW_EVERY,
    SLOW_S,
    STRIPE_KEY,
    Traffic,
    bot_config,
    code_version,
    machine,
    offer_at_rate,
    quantile,
    reference,
    seed_pay_orders,
)
from bench.paced_botapi import PacedBotApi  # noqa: E402
from itinerabot.store import stars  # noqa: E402
from itinerabot.store.db import connect  # noqa: E402
from itinerabot.store.orders import order_id_by_reference  # noqa: E402
from sandbox.process import ServeProcess, write_config  # noqa: E402
from sandbox.serve import serve_app  # noqa: E402
from sandbox.stripe import FakeStripe  # noqa: E402
from sandbox.telegram import JSON, UploadedFile  # noqa: E402

STARS_PRICE = 250
#: the invoices probed are those of orders seeded after the pay-tap orders
PROBE_FROM = 100_000


class ProbedBotApi(PacedBotApi):
    """The fake Bot API with pre-checkout queries offered by the bench, each answer's arrival
    written down (Unix s)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answered_at: dict[str, float] = {}
        self.query_update: dict[str, int] = {}
        self.refused: list[str] = []

    def offer_pre_checkout(self, chat_id: int, payload: str, amount: int) -> str:
        query_id = str(6_000_000_000_000_000 + next(self._ids))
        self._open_pre_checkouts[query_id] = trio.Event()
        query = {
            "id": query_id,
            "from": self._user(chat_id, None),
            "currency": "XTR",
            "total_amount": amount,
            "invoice_payload": payload,
        }
        self.query_update[query_id] = self._offered(
            chat_id, self._enqueue({"pre_checkout_query": query})
        )
        return query_id

    def _answer_pre_checkout_query(self, params: JSON, files: dict[str, UploadedFile]) -> bool:
        query_id = str(params["pre_checkout_query_id"])
        self.answered_at.setdefault(query_id, time.time())
        if not params["ok"]:
            self.refused.append(str(params.get("error_message")))
        return super()._answer_pre_checkout_query(params, files)


@dataclass
class Run:
    name: str
    waits: list[float] = field(default_factory=list)  # handed out → answer, s
    unanswered: list[float] = field(default_factory=list)
    whole: list[float] = field(default_factory=list)  # offered at "Telegram" → answer, s
    whole_open: list[float] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock_holds: int = 0
    exit_code: int | None = None


def seed_invoices(path: Path, count: int) -> list[tuple[int, str]]:
    """`count` orders awaiting payment, each with a Stars invoice: (chat, payload)."""
    seed_pay_orders(path, count, PROBE_FROM + count)  # orders 0.. for taps, PROBE_FROM.. probed
    conn = connect(path)
    out = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        for k in range(PROBE_FROM, PROBE_FROM + count):
            ref = reference(k)
            order_id = order_id_by_reference(conn, ref)
            assert order_id is not None
            invoice = stars.add_invoice(conn, order_id, ref, STARS_PRICE, datetime.now(UTC))
            out.append((PAY_BASE + k % count, invoice.payload))
        conn.execute("COMMIT")
    finally:
        conn.close()
    return out


def hold_write_lock(path: Path, stop: float, hold: float, gap: float) -> int:
    """Hold the store's write lock `hold` s in every `hold + gap` until `stop` (Unix s); the
    holds made."""
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    holds = 0
    try:
        while time.time() < stop:
            conn.execute("BEGIN IMMEDIATE")
            time.sleep(hold)
            conn.execute("ROLLBACK")
            holds += 1
            time.sleep(gap)
    finally:
        conn.close()
    return holds


async def probe(api: ProbedBotApi, invoices: list[tuple[int, str]], per_s: float, n: int) -> None:
    for i in range(n):
        chat, payload = invoices[i]
        api.offer_pre_checkout(chat, payload, STARS_PRICE)
        await trio.sleep(1 / per_s)


async def run_phase(args: argparse.Namespace, workdir: Path, name: str) -> Run:
    run = Run(name)
    slug = name.replace("/s", "ps").replace(" ", "-")
    store = workdir / f"store-{slug}.sqlite3"
    n = round(args.probes * args.duration)
    invoices = await trio.to_thread.run_sync(seed_invoices, store, max(n, 1000))
    rate = 0.0 if name == "idle" else args.rate
    count = round(rate * args.duration)
    traffic = Traffic(args.chats, "slow" in name)
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=30):
        api = ProbedBotApi()
        stripe = FakeStripe(api_key=STRIPE_KEY)
        stripe.delay_next_answers(SLOW_S, count=10**9)
        urls = {
            "telegram": await nursery.start(serve_app, api),
            "stripe": await nursery.start(serve_app, stripe),
        }
        config = bot_config(workdir, slug, urls, store)
        write_config(config, **_with_stars(config))
        serve: ServeProcess = await nursery.start(ServeProcess(config).run)
        await serve.wait_ready(timeout=60)
        async with trio.open_nursery() as load:
            if count:
                load.start_soon(offer_at_rate, api, traffic, rate, count)
            if "locked" in name:
                stop = time.time() + args.duration
                hold, gap = (12.0, 2.0) if "12 s" in name else (2.0, 1.0)

                async def lock() -> None:
                    run.lock_holds = await trio.to_thread.run_sync(
                        hold_write_lock, store, stop, hold, gap
                    )

                load.start_soon(lock)
            await probe(api, invoices, args.probes, n)
        with trio.move_on_after(15):
            while len(api.answered_at) < n:  # noqa: ASYNC110
                await trio.sleep(0.1)
        serve.signal(signal.SIGTERM)
        run.exit_code = await serve.wait(timeout=60)
        nursery.cancel_scope.cancel()
    now = time.time()
    for query_id, update_id in api.query_update.items():
        offered = api.offered_at[update_id]
        handed = api.handed_at.get(update_id, offered)
        if query_id in api.answered_at:
            run.waits.append(api.answered_at[query_id] - handed)
            run.whole.append(api.answered_at[query_id] - offered)
        else:
            run.unanswered.append(now - handed)
            run.whole_open.append(now - offered)
    run.refused = api.refused
    return run


def _with_stars(config: Path) -> dict[str, Any]:
    """The phase's config with Stars on, as a shop would write it."""
    raw: dict[str, Any] = yaml.safe_load(config.read_text())
    raw["stars"] = {"price": STARS_PRICE}
    return raw


async def bench(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-precheckout-", dir=args.workdir))
    rate = f"{args.rate:g}/s"
    names = ["idle", rate, f"{rate} slow", f"{rate} store locked", f"{rate} store locked 12 s"]
    runs = []
    for name in names:
        run = await run_phase(args, workdir, name)
        runs.append(run)
        print(f"{name}: {len(run.waits)} answered, exit {run.exit_code}", flush=True)
    print()
    print(f"machine: {machine()}")
    print(f"code: {code_version()}")
    print(
        f"{args.probes:g} pre-checkout queries/s for {args.duration:g} s per phase; "
        f"{args.chats} dialogue chats; slow: 1 update in {SLOW_EVERY} a card tap Stripe answers "
        f"after {SLOW_S:g} s\n"
    )
    print("fetched → answered, and (in brackets) offered → answered: the traveller's wait\n")
    print("| phase | queries | answered | p50 | p99 | max | over 10 s | refused |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        total = len(r.waits) + len(r.unanswered)
        late = sum(w > 10 for w in r.whole) + len(r.whole_open)

        def q(at: float, r: Run = r) -> str:
            fetched = quantile(r.waits, r.unanswered, at)
            return f"{fetched} ({quantile(r.whole, r.whole_open, at)})"

        held = "12 s" if "12 s" in r.name else "2 s"
        extra = f" ({r.lock_holds} write-lock holds of {held})" if r.lock_holds else ""
        print(
            f"| {r.name}{extra} | {total} | {len(r.waits)} | {q(0.5)} | {q(0.99)} | {q(1.0)}"
            f" | {late} | {len(r.refused)} |"
        )
    ok = all(r.exit_code == 0 for r in runs)
    if args.keep or not ok:
        print(f"\nwork folder: {workdir}")
    else:
        shutil.rmtree(workdir)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="s per phase (15)")
    parser.add_argument("--rate", type=float, default=300.0, help="dialogue updates/s (300)")
    parser.add_argument("--chats", type=int, default=1000, help="dialogue chats (1000)")
    parser.add_argument("--probes", type=float, default=5.0, help="pre-checkout queries/s (5)")
    parser.add_argument("--workdir", type=Path, help="parent of the work folder (a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    return trio.run(bench, parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
