"""`serve`: the one root nursery holding the long-poll loop, the webhook server, the sender
and the child nursery of payment pollers; `_build` connects the pieces, `_start` starts them
in order and `_stop` is the ordered shutdown that ends them.

Shutdown (first SIGINT/SIGTERM, or `Runtime.shutdown()`): stop taking updates and confirm the
offset, cancel the pollers (their state is durable), stop the web server, let in-flight sends
finish within `sender.shutdown_grace`, close the store. A second signal cancels at once.
"""

from __future__ import annotations

import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial

import trio

from itinerabot import wiring
from itinerabot.adapters.telegram.client import TelegramClient, open_telegram
from itinerabot.adapters.telegram.handler import UpdateHandler
from itinerabot.adapters.telegram.links import start_link
from itinerabot.adapters.telegram.longpoll import LongPoll
from itinerabot.adapters.telegram.precheckout import PreCheckoutDesk
from itinerabot.adapters.telegram.sender import Sender
from itinerabot.clock import WallClock, system_clock
from itinerabot.config import Settings
from itinerabot.dialogue.texts import commands
from itinerabot.i18n.catalogue import DEFAULT, LANGUAGES, english, texts_for
from itinerabot.metrics import Metrics
from itinerabot.payments.document import document_renderer
from itinerabot.payments.fulfilment import Fulfilment
from itinerabot.payments.methods import Payments
from itinerabot.payments.requests import PaymentRequests
from itinerabot.payments.stars.refund_service import StarsRefunder
from itinerabot.payments.usdc.pollers import PollerNursery
from itinerabot.store import SqliteStore, Store, open_store
from itinerabot.store.inbox import Inbox, inbox_path
from itinerabot.store.retention import run_retention
from itinerabot.web.app import WebApp
from itinerabot.web.ops import OpsRoutes
from itinerabot.web.server import run_web_server
from itinerabot.wiring import Transports

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The live pieces of a running `serve`, handed to `task_status.started`."""

    settings: Settings
    store: SqliteStore  # the composition root opens SQLite; everything below sees a Store
    telegram: TelegramClient
    sender: Sender
    fulfilment: Fulfilment
    pollers: PollerNursery
    longpoll: LongPoll
    handler: UpdateHandler
    app: WebApp
    payments: Payments
    metrics: Metrics
    clock: WallClock
    address: str = ""
    _shutdown: trio.Event = field(default_factory=trio.Event)

    def shutdown(self) -> None:
        """Begin the graceful shutdown (what the first SIGTERM does)."""
        self._shutdown.set()


async def serve(
    settings: Settings,
    *,
    transports: Transports | None = None,
    clock: WallClock = system_clock,
    handle_signals: bool = True,
    new_inbox: bool = False,
    task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the bot until shut down. Reports the `Runtime` once every piece is up.
    `new_inbox`: start even with an update inbox that is not the one the store last ran
    with (`serve --new-inbox`, accepting the loss of what the old one held).

    Raises InvalidToken if Telegram refuses the token, StoreError if the store cannot open.
    """
    transports = transports or Transports()
    try:
        async with (
            open_store(settings.store.path) as store,
            open_telegram(settings.telegram, transport=transports.telegram) as telegram,
            AsyncExitStack() as stack,  # the payment methods' clients, closed before the store
        ):
            inbox = await trio.to_thread.run_sync(Inbox.open, inbox_path(settings.store.path))
            stack.callback(inbox.close)
            rt = await _build(
                stack, settings, store, inbox, telegram, transports, clock, new_inbox=new_inbox
            )
            async with trio.open_nursery() as root:
                if handle_signals:
                    await root.start(_watch_signals, rt, root.cancel_scope, name="signals")
                pieces = await _start(root, rt)
                log.info("ready", extra={"address": rt.address, "bot": telegram.username})
                task_status.started(rt)
                await rt._shutdown.wait()
                await _stop(rt, pieces)
                root.cancel_scope.cancel()
    finally:
        gc.unfreeze()
        gc.enable()
        log.info("stopped")


async def _build(
    stack: AsyncExitStack,
    settings: Settings,
    store: SqliteStore,
    inbox: Inbox,
    telegram: TelegramClient,
    transports: Transports,
    clock: WallClock,
    *,
    new_inbox: bool,
) -> Runtime:
    """Every piece of the bot, connected, none running yet; /healthz and /metrics routed."""
    metrics = Metrics()
    app = _web_app(settings, metrics)
    pollers = PollerNursery()
    sender, fulfilment = _delivery(settings, store, telegram, clock, metrics)
    actions = await wiring.wire(
        stack,
        settings=settings,
        store=store,
        app=app,
        pollers=pollers,
        fulfilment=fulfilment,
        notify=sender.notify,
        clock=clock,
        transports=transports,
        return_link=start_link(telegram.username),
    )
    # whether or not Stars are still offered: charges of earlier days may be owed back
    automatic = settings.stars.refunds == "automatic"
    stars = StarsRefunder(store, telegram, sender.notify, clock, automatic=automatic)
    fulfilment.extra_listeners.append(stars.extra_payment)
    actions.services.append(("stars refunds", stars.run))
    # taps on "Pay" are carried out after their update commits: no update waits on a provider
    requests = PaymentRequests(store, actions, sender.notify, clock)
    actions.services.append(("payment requests", requests.run))
    handler = UpdateHandler(
        store, sender.notify, settings, clock, requests.submit, fulfilment.settle
    )
    desk = PreCheckoutDesk(telegram, store, metrics)
    longpoll = LongPoll(
        telegram, store, handler, desk, inbox, settings.telegram, metrics, new_inbox=new_inbox
    )
    ops = OpsRoutes(
        store,
        longpoll,
        pollers,
        sender,
        metrics,
        healthy_within=settings.telegram.healthy_within,
        usdc=actions.usdc,
    )
    ops.register(app)
    return Runtime(
        settings,
        store,
        telegram,
        sender,
        fulfilment,
        pollers,
        longpoll,
        handler,
        app,
        payments=actions,
        metrics=metrics,
        clock=clock,
    )


def _web_app(settings: Settings, metrics: Metrics) -> WebApp:
    """The web app, with no routes yet: the payment methods and the ops routes add theirs."""
    return WebApp(
        max_body_bytes=settings.server.max_body_bytes,
        read_timeout=settings.server.read_timeout,
        metrics=metrics,
    )


def _delivery(
    settings: Settings, store: Store, telegram: TelegramClient, clock: WallClock, metrics: Metrics
) -> tuple[Sender, Fulfilment]:
    """The sender, which renders and sends what the outbox holds, and the fulfilment that
    records payments and queues the PDF for it."""
    renderer = document_renderer(store, settings.pdf.page_size)
    sender = Sender(store, telegram, renderer, settings.sender, clock, metrics)
    fulfilment = Fulfilment(
        store, sender.notify, clock, support_contact=settings.shop.support_contact
    )
    return sender, fulfilment


class _Piece:
    """One long-running service in its own cancel scope, so shutdown can end it by itself."""

    def __init__(self, run: Callable[..., Awaitable[None]]) -> None:
        self._run = run
        self.scope = trio.CancelScope()
        self.done = trio.Event()

    async def __call__(self, *, task_status: trio.TaskStatus[None]) -> None:
        try:
            with self.scope:
                await self._run(task_status=task_status)
        finally:
            self.done.set()


@dataclass
class _Pieces:
    """The services shutdown ends one by one, in its own order."""

    sending: _Piece
    polling: _Piece
    updates: _Piece
    web_shutdown: trio.Event


async def _start(root: trio.Nursery, rt: Runtime) -> _Pieces:
    """Start every service in `root`, each reporting ready before the next: the sender and
    the pollers before anything that feeds them, the long poll (updates) last."""
    settings = rt.settings
    pieces = _Pieces(
        _Piece(rt.sender.run), _Piece(rt.pollers.run), _Piece(rt.longpoll.run), trio.Event()
    )
    await root.start(pieces.sending, name="sender")
    retention = partial(run_retention, rt.store, settings.store, rt.clock)
    await root.start(retention, name="retention")
    await root.start(pieces.polling, name="pollers")
    for name, service in rt.payments.services:
        await root.start(service, name=name)
    rt.address = await root.start(
        partial(
            run_web_server,
            rt.app,
            settings.server.host,
            settings.server.port,
            pieces.web_shutdown,
            read_timeout=settings.server.read_timeout,
            max_connections=settings.server.max_connections,
        ),
        name="web",
    )
    await rt.telegram.set_commands(commands(english()))
    for language in LANGUAGES.keys() - {DEFAULT}:  # each app shows the menu in its language
        await rt.telegram.set_commands(commands(texts_for(language)), language)
    await rt.payments.resume()
    # what start-up built lives as long as the process: moved out of the cyclic collector's
    # reach before updates flow, a full collection no longer walks it (bench_updates.py,
    # 300 updates/s: p99 49-54 ms before, 31-48 ms after)
    gc.collect()
    gc.freeze()
    await root.start(pieces.updates, name="long-poll")
    return pieces


async def _stop(rt: Runtime, pieces: _Pieces) -> None:
    """The ordered shutdown: updates stop and their offset is confirmed, pollers end, the
    web server stops, then in-flight sends get `sender.shutdown_grace` seconds to finish."""
    log.info("shutting down")
    # Thousands of pollers end at once, each with a Cancelled and its traceback: the
    # cyclic GC would run over and over during it (half the stop time with 10 000).
    # We are on the way out; collect once at the end instead.
    gc.disable()
    pieces.polling.scope.cancel()  # their state is durable; they end while we confirm
    pieces.updates.scope.cancel()
    await pieces.updates.done.wait()
    await rt.longpoll.confirm_offset()
    pieces.web_shutdown.set()
    rt.sender.stop()
    with trio.move_on_after(rt.settings.sender.shutdown_grace):
        await pieces.sending.done.wait()


async def _watch_signals(
    rt: Runtime, root: trio.CancelScope, *, task_status: trio.TaskStatus[None]
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        count = 0
        async for signum in signals:
            count += 1
            if count == 1:
                log.info("signal received, shutting down", extra={"signal": signum})
                rt.shutdown()
            else:
                log.warning("second signal, exiting at once")
                root.cancel()
                return
