"""`itinerabot orders …`: open the store a running `serve` uses, do one operator action and
print it. Results go to stdout; a refusal or failure is one line on stderr and exit 1.

Both processes may use the store at once: SQLite in WAL mode lets this one read while the
bot writes, and a write here waits (the busy timeout) for the bot's transaction to end.
Rows queued here are found by the bot's sender on its periodic rescan. The store is never
migrated here (a newer command must not change the schema under an older running `serve`):
one whose schema is not exactly this program's is refused. Reads open it read-only.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import outcome
import trio

from itinerabot.clock import WallClock, system_clock
from itinerabot.config import Settings
from itinerabot.errors import ServiceError, StoreError
from itinerabot.messages import RESCAN_EVERY
from itinerabot.models import PaymentMethod
from itinerabot.operator import format as text
from itinerabot.operator.attention import needs_attention
from itinerabot.operator.errors import Refused
from itinerabot.operator.history import order_history
from itinerabot.operator.providers import ask_provider
from itinerabot.operator.refund import RefundRequest, RefundTarget, plan_refund, prepare_refund
from itinerabot.operator.resend import Resent, queue_resend
from itinerabot.payments.stars.refunds import OpenStarRefunds
from itinerabot.store import Store, money, open_store
from itinerabot.store.money import Refund, RefundStatus
from itinerabot.store.readonly import read_snapshot

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILURE = 1
#: refunds that queue the traveller's message when they succeed at once
_TELLS_AT_ONCE = (PaymentMethod.CARD, PaymentMethod.STARS)


def enabled_methods(settings: Settings) -> frozenset[PaymentMethod]:
    """The payment methods the config turns on (and so can refund). Stars always: refunding
    them needs only the bot's token, so those paid before Stars were turned off still can be."""
    return frozenset(settings.enabled_methods) | {PaymentMethod.STARS}


def run(action: Callable[[], int]) -> int:
    """Run one command; a refusal or a store failure becomes its line on stderr, exit 1."""
    try:
        return action()
    except Refused as exc:
        print(exc, file=sys.stderr)
    except StoreError as exc:
        print(f"store error: {exc}", file=sys.stderr)
    return EXIT_FAILURE


def _store_path(settings: Settings) -> Path:
    """The store's file; raises Refused if there is none (it is never created here)."""
    path = settings.store.path
    if not path.is_file():
        raise Refused(f"no store at {path}: check store.path in the config, or start serve once")
    return path


def list_attention(settings: Settings, *, as_json: bool, clock: WallClock = system_clock) -> int:
    path = _store_path(settings)
    items = read_snapshot(path, lambda conn: needs_attention(conn, clock()))
    if as_json:
        print(text.attention_json(items))
    else:
        for line in text.attention_lines(items):
            print(line)
    return EXIT_OK


def show_order(settings: Settings, reference: str) -> int:
    path = _store_path(settings)
    history = read_snapshot(path, lambda conn: order_history(conn, reference))
    for line in text.history_lines(history):
        print(line)
    return EXIT_OK


def resend(settings: Settings, reference: str, *, clock: WallClock = system_clock) -> int:
    path = _store_path(settings)

    async def queue(store: Store) -> Resent:
        return await store.run(queue_resend, reference, clock())

    print(text.resent_line(trio.run(_with_store, path, queue)))
    return EXIT_OK


def refund(
    settings: Settings,
    request: RefundRequest,
    *,
    confirmed: bool,
    clock: WallClock = system_clock,
    telegram: OpenStarRefunds | None = None,
) -> int:
    """Show the refund, ask for a yes unless `confirmed`, store that very refund (refused
    if the plan changed meanwhile), ask the provider and show how the refund stands.
    `telegram` opens the Telegram client a Stars refund needs."""
    path = _store_path(settings)
    plan = read_snapshot(path, lambda conn: plan_refund(conn, request))
    print(text.refund_plan_line(plan))
    if not confirmed and not _confirm():
        print("nothing refunded")
        return EXIT_FAILURE
    work = partial(_refund, settings, request, plan, clock, telegram)
    asked, now, error = trio.run(_with_store, path, work)
    print(text.refund_result_line(now, asked=asked))
    if error is not None:
        print(f"{error}", file=sys.stderr)
    if now.status == RefundStatus.SUCCEEDED and now.method in _TELLS_AT_ONCE:
        # card and Stars refunds queue a message to the traveller; this process has no sender
        print(f"the running bot tells the traveller within {RESCAN_EVERY:.0f} seconds")
    ok = now.status in (RefundStatus.SUCCEEDED, RefundStatus.PENDING)
    return EXIT_OK if ok else EXIT_FAILURE


def _confirm() -> bool:
    try:
        answer = input("refund it? [y/N] ")
    except (EOFError, OSError):  # no terminal to ask: only --yes refunds
        return False
    return answer.strip().lower() in ("y", "yes")


async def _with_store(path: Path, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run `work` with the store open (its writer running); what `work` raises leaves as
    itself, not wrapped in the store's nursery's exception group."""
    async with open_store(path, migrate_schema=False) as store:
        result = await outcome.acapture(work, store)
    return result.unwrap()


async def _refund(
    settings: Settings,
    request: RefundRequest,
    confirmed: RefundTarget,
    clock: WallClock,
    telegram: OpenStarRefunds | None,
    store: Store,
) -> tuple[Refund, Refund, ServiceError | None]:
    """Store the refund the operator confirmed (or find the stuck one) and ask its provider.

    Returns the refund asked, the refund that stands for it now as recorded (itself, or the
    one that superseded it meanwhile: `money.current_refund`), and the error if the provider
    gave no answer. Raises Refused if the plan changed since it was confirmed.
    """
    stored = await store.run(prepare_refund, request, confirmed, clock())
    error: ServiceError | None = None
    try:
        await ask_provider(
            store,
            settings,
            stored,
            address=request.address,
            chain=request.chain,
            clock=clock,
            telegram=telegram,
        )
    except ServiceError as exc:
        error = exc
    now = await store.run(money.current_refund, stored.id)
    return stored, now or stored, error
