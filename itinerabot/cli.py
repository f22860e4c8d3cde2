"""The `itinerabot` command: serve, check-config, render, circle subscribe, orders, demo.

A user never sees a traceback for a mistake of theirs: bad config, a missing file or secret,
a refused token each print one clear line per problem (exit 2, or 1 for a refused token).
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, get_args

import trio

from itinerabot import __version__
from itinerabot.config import Chain, Settings, load_config
from itinerabot.errors import ConfigError, InvalidToken, ItinerabotError, StoreError
from itinerabot.logs import setup_logging

if TYPE_CHECKING:
    from itinerabot.models import Order, Payment

log = logging.getLogger("itinerabot")

EXIT_CONFIG = 2
EXIT_FAILURE = 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="itinerabot",
        description="A Telegram bot that sells PDF flight itineraries (card or USDC).",
    )
    p.add_argument("--version", action="version", version=f"itinerabot {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="run the bot (long-poll, webhooks, pollers, sender)")
    _config_option(s, Path("config.yaml"))
    s.add_argument(
        "--new-inbox",
        action="store_true",
        help="start with a new update inbox although the store last ran with another that may"
        " hold updates (they are lost; see README, 'update inbox')",
    )

    c = sub.add_parser("check-config", help="validate a config file and list every problem")
    c.add_argument("file", type=Path)

    _render_parser(sub)

    ci = sub.add_parser("circle", help="Circle account tasks")
    ci_sub = ci.add_subparsers(dest="circle_command", required=True, metavar="TASK")
    cs = ci_sub.add_parser("subscribe", help="subscribe URL to Circle's notifications")
    cs.add_argument("url", help="public https URL of /webhooks/circle")
    cs.add_argument("--config", "-c", type=Path, default=Path("config.yaml"))

    _orders_parser(sub)

    d = sub.add_parser(
        "demo", help="SANDBOX: buy one itinerary by card and one in USDC from local fakes"
    )
    d.add_argument("--out", type=Path, default=Path("demo-output"), help="folder for the PDFs")
    d.add_argument("--keep", action="store_true", help="keep the work folder (config, store, log)")
    return p


def _render_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("render", help="render the PDF of a stored order or of a sample")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--order", metavar="REFERENCE", help="a stored order, e.g. IB-7K3Q9P")
    src.add_argument("--sample", action="store_true", help="a built-in two-flight sample")
    r.add_argument(
        "--config",
        "-c",
        type=Path,
        default=Path("config.yaml"),
        help="config file (for the store and the page size)",
    )
    r.add_argument("--page-size", choices=["A4", "Letter"], default=None)
    r.add_argument("--out", "-o", type=Path, required=True, help="where to write the PDF")


def _orders_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    o = sub.add_parser(
        "orders",
        help="operator: what needs attention; show, resend or refund an order",
        description="Without a task: list what needs attention (anomalies, money owed back,"
        " failed refunds and deliveries), oldest first. Works while serve is running.",
    )
    _config_option(o, Path("config.yaml"))
    o.add_argument("--json", action="store_true", help="the list as JSON, for machines")
    tasks = o.add_subparsers(dest="orders_command", metavar="TASK")

    show = tasks.add_parser("show", help="one order's whole history")
    show.add_argument("reference", metavar="REF")
    _config_option(show)

    resend = tasks.add_parser("resend", help="send a paid order's PDF again")
    resend.add_argument("reference", metavar="REF")
    _config_option(resend)

    refund = tasks.add_parser(
        "refund",
        help="refund a payment of an order (by default the one extra payment owed back)",
    )
    refund.add_argument("reference", metavar="REF")
    which = refund.add_mutually_exclusive_group()
    which.add_argument("--extra", type=int, metavar="ID", help="this extra payment")
    which.add_argument("--payment", action="store_true", help="the order's own payment")
    refund.add_argument("--amount", metavar="X", help="refund only X (default: all that is left)")
    refund.add_argument("--address", metavar="A", help="USDC: the traveller's address")
    refund.add_argument("--chain", metavar="C", choices=get_args(Chain), help="USDC: its chain")
    refund.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    _config_option(refund)


def _config_option(parser: argparse.ArgumentParser, default: object = argparse.SUPPRESS) -> None:
    """--config on `parser`. `orders` has it and each of its tasks again, so it may come
    before or after the task (a task's SUPPRESS default keeps the value given before it)."""
    parser.add_argument(
        "--config", "-c", type=Path, default=default, help="YAML config file (default: config.yaml)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        match args.command:
            case "check-config":
                load_config(args.file)
                print(f"{args.file}: OK")
                return 0
            case "serve":
                return _serve(load_config(args.config), new_inbox=args.new_inbox)
            case "render":
                return _render(args)
            case "circle":
                return _circle_subscribe(load_config(args.config), args.url)
            case "orders":
                return _orders(load_config(args.config), args)
            case "demo":
                return _demo(args.out, keep=args.keep)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    return EXIT_FAILURE


def _serve(settings: Settings, *, new_inbox: bool = False) -> int:
    from itinerabot.runtime import serve

    setup_logging(
        level=settings.logging.level, fmt=settings.logging.format, secrets=settings.secrets()
    )
    try:
        trio.run(partial(serve, settings, new_inbox=new_inbox))
    except BaseExceptionGroup as group:
        return _report(group)
    except ItinerabotError as exc:
        return _report(exc)
    return 0


def _report(exc: BaseException) -> int:
    """Exit code and one log line for an error that stopped `serve`; re-raise bugs."""
    if isinstance(exc, BaseExceptionGroup):
        token, _ = exc.split(InvalidToken)
        if token is not None:
            exc = token.exceptions[0]
        else:
            mine, bugs = exc.split(ItinerabotError)
            if bugs is not None or mine is None:
                raise exc
            exc = mine.exceptions[0]
        while isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
    if isinstance(exc, InvalidToken):
        log.error(
            "Telegram refused the bot token: check telegram.token or "
            "$ITINERABOT_TELEGRAM_TOKEN (from @BotFather)"
        )
        return EXIT_FAILURE
    if isinstance(exc, StoreError):
        log.error("store error: %s", exc)
        return EXIT_FAILURE
    log.error("stopped: %s", exc)
    return EXIT_FAILURE


def _render(args: argparse.Namespace) -> int:
    from itinerabot.pdf import PageSize, render_itinerary, sample_order

    payment: Payment | None
    page_size: PageSize
    if args.sample:
        order, payment = sample_order()
        page_size = args.page_size or "A4"
        if args.config.exists() and args.page_size is None:
            page_size = load_config(args.config).pdf.page_size
    else:
        settings = load_config(args.config)
        page_size = args.page_size or settings.pdf.page_size
        if not settings.store.path.exists():
            print(f"no store at {settings.store.path}", file=sys.stderr)
            return EXIT_FAILURE
        try:
            stored = _stored_order(settings.store.path, args.order.strip().upper())
        except StoreError as exc:
            print(f"store error: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        if stored is None:
            print(f"no order {args.order} in {settings.store.path}", file=sys.stderr)
            return EXIT_FAILURE
        order, payment = stored
    issued = payment.paid_at if payment is not None else order.created_at
    pdf = render_itinerary(order, payment, page_size=page_size, issued_at=issued)
    args.out.write_bytes(pdf)
    print(f"wrote {args.out} ({len(pdf)} bytes)")
    return 0


def _stored_order(path: Path, reference: str) -> tuple[Order, Payment | None] | None:
    """The order and its payment, read without migrating or writing the store (a `serve`
    of another version may be running on it). Raises StoreError."""
    from itinerabot.store.orders import get_order_by_reference, get_payment
    from itinerabot.store.readonly import open_read_only

    conn = open_read_only(path)
    try:
        found = get_order_by_reference(conn, reference)
        return None if found is None else (found, get_payment(conn, found.id))
    except sqlite3.Error as exc:
        raise StoreError(f"reading {path}: {exc}") from exc
    finally:
        conn.close()


def _circle_subscribe(settings: Settings, url: str) -> int:
    from itinerabot.adapters.circle.client import CircleClient

    if not settings.circle.enabled:
        print("circle is not enabled in the config", file=sys.stderr)
        return EXIT_CONFIG

    async def run() -> None:
        async with CircleClient(settings.circle) as client:
            result = await client.create_subscription(url)
        print(f"subscribed: {result}")

    try:
        trio.run(run)
    except ItinerabotError as exc:
        print(f"circle: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _orders(settings: Settings, args: argparse.Namespace) -> int:
    from itinerabot.adapters.telegram.client import open_telegram
    from itinerabot.operator import commands
    from itinerabot.operator.history import normalise_reference
    from itinerabot.operator.refund import RefundRequest, parse_amount

    reference = normalise_reference(getattr(args, "reference", ""))
    match args.orders_command:
        case None:
            return commands.run(lambda: commands.list_attention(settings, as_json=args.json))
        case "show":
            return commands.run(lambda: commands.show_order(settings, reference))
        case "resend":
            return commands.run(lambda: commands.resend(settings, reference))

    def refund() -> int:
        request = RefundRequest(
            reference=reference,
            extra_payment_id=args.extra,
            whole_payment=args.payment,
            amount=parse_amount(args.amount) if args.amount is not None else None,
            address=args.address,
            chain=args.chain,
            enabled=commands.enabled_methods(settings),
        )
        telegram = partial(open_telegram, settings.telegram)  # for a Stars refund
        return commands.refund(settings, request, confirmed=args.yes, telegram=telegram)

    return commands.run(refund)


def _demo(out: Path, *, keep: bool) -> int:
    """Run the sandbox demo (`python -m sandbox.demo`) in a child process.

    The sandbox lives in the source checkout next to the package and is never imported here:
    an installed or containerised itinerabot has none, and says so.
    """
    checkout = Path(__file__).resolve().parents[1]
    if not (checkout / "sandbox" / "demo.py").is_file():
        print(
            "itinerabot demo needs the sandbox/ folder of a source checkout, and this "
            "installation has none (e.g. the container image). Clone the repository and run "
            "`make demo` there.",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "sandbox.demo", "--out", str(out.resolve())]
    if keep:
        command.append("--keep")
    return subprocess.call(command, env=env)
