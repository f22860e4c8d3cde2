"""`serve`: the one root nursery holding the long-poll loop, the webhook server, the sender
and the child nursery of payment pollers, and the ordered shutdown that ends them.

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
from itinerabot.adapters.telegram.longpoll import LongPoll
from itinerabot.adapters.telegram.sender import Sender
from itinerabot.clock import WallClock, system_clock
from itinerabot.config import Settings
from itinerabot.dialogue import COMMANDS
from itinerabot.payments.fulfilment import Fulfilment
from itinerabot.payments.methods import Payments
from itinerabot.payments.usdc.pollers import PollerNursery
from itinerabot.pdf.document import document_renderer
from itinerabot.store import Store, open_store
from itinerabot.store.retention import run_retention
from itinerabot.web.app import Request, Response, WebApp
from itinerabot.web.server import run_web_server
from itinerabot.wiring import Transports

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The live pieces of a running `serve`, handed to `task_status.started`."""

    settings: Settings
    store: Store
    telegram: TelegramClient
    sender: Sender
    fulfilment: Fulfilment
    pollers: PollerNursery
    longpoll: LongPoll
    handler: UpdateHandler
    app: WebApp
    payments: Payments
    address: str = ""
    _shutdown: trio.Event = field(default_factory=trio.Event)

    def shutdown(self) -> None:
        """Begin the graceful shutdown (what the first SIGTERM does)."""
        self._shutdown.set()


def build_app(settings: Settings) -> WebApp:
    return WebApp(
        max_body_bytes=settings.server.max_body_bytes, read_timeout=settings.server.read_timeout
    )


async def _healthz(rt: Runtime, request: Request) -> Response:
    store_ok = await rt.store.ping()
    last = rt.longpoll.last_success
    body = {
        "status": "ok" if store_ok else "degraded",
        "store": store_ok,
        "seconds_since_get_updates": None if last is None else round(trio.current_time() - last, 3),
        "pollers": rt.pollers.running,
        "sending_chats": rt.sender.busy,
    }
    return Response.json(200 if store_ok else 503, body)


async def serve(
    settings: Settings,
    *,
    transports: Transports | None = None,
    clock: WallClock = system_clock,
    handle_signals: bool = True,
    task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the bot until shut down. Reports the `Runtime` once every piece is up.

    Raises InvalidToken if Telegram refuses the token, StoreError if the store cannot open.
    """
    transports = transports or Transports()
    try:
        async with (
            open_store(settings.store.path) as store,
            open_telegram(settings.telegram, transport=transports.telegram) as telegram,
        ):
            await _serve(settings, store, telegram, transports, clock, handle_signals, task_status)
    finally:
        gc.enable()
        log.info("stopped")


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


async def _serve(
    settings: Settings,
    store: Store,
    telegram: TelegramClient,
    transports: Transports,
    clock: WallClock,
    handle_signals: bool,
    task_status: trio.TaskStatus[Runtime],
) -> None:
    app = build_app(settings)
    pollers = PollerNursery()
    sender = Sender(
        store, telegram, document_renderer(store, settings.pdf.page_size), settings.sender, clock
    )
    fulfilment = Fulfilment(
        store, sender.notify, clock, support_contact=settings.shop.support_contact
    )
    async with AsyncExitStack() as stack:
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
            bot_username=telegram.username,
        )
        handler = UpdateHandler(store, sender.notify, settings, clock, actions)
        longpoll = LongPoll(telegram, store, handler, settings.telegram)
        rt = Runtime(
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
        )
        app.route("/healthz", {"GET", "HEAD"}, lambda req: _healthz(rt, req))
        web_shutdown = trio.Event()
        sending, polling, updates = _Piece(sender.run), _Piece(pollers.run), _Piece(longpoll.run)

        async with trio.open_nursery() as root:
            if handle_signals:
                await root.start(_watch_signals, rt, root.cancel_scope, name="signals")
            await root.start(sending, name="sender")
            await root.start(partial(run_retention, store, settings.store, clock), name="retention")
            await root.start(polling, name="pollers")
            for name, service in actions.services:
                await root.start(service, name=name)
            rt.address = await root.start(
                partial(
                    run_web_server,
                    app,
                    settings.server.host,
                    settings.server.port,
                    web_shutdown,
                    read_timeout=settings.server.read_timeout,
                    max_connections=settings.server.max_connections,
                ),
                name="web",
            )
            await telegram.set_commands(COMMANDS)
            await actions.resume()
            await root.start(updates, name="long-poll")
            log.info("ready", extra={"address": rt.address, "bot": telegram.username})
            task_status.started(rt)

            await rt._shutdown.wait()
            log.info("shutting down")
            # Thousands of pollers end at once, each with a Cancelled and its traceback: the
            # cyclic GC would run over and over during it (half the stop time with 10 000).
            # We are on the way out; collect once at the end instead.
            gc.disable()
            polling.scope.cancel()  # their state is durable; they end while we confirm
            updates.scope.cancel()
            await updates.done.wait()
            await longpoll.confirm_offset()
            web_shutdown.set()
            sender.stop()
            with trio.move_on_after(settings.sender.shutdown_grace):
                await sending.done.wait()
            root.cancel_scope.cancel()


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
