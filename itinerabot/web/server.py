"""Serve the ASGI app over HTTP/1.1 with hypercorn's trio connection handler, at most
`max_connections` connections at a time, each cut off when its client stops sending.

hypercorn's `serve` builds its own listeners, so there is nowhere to put a cap on accepted
connections; this module runs hypercorn's per-connection `TCPServer` under `trio.serve_listeners`
itself (as hypercorn's `worker_serve` does) with listeners that wait for a free slot before they
accept. Connections past the cap wait in the kernel's backlog.

What bounds a slow client:
- hypercorn's `read_timeout`: each read from the socket, so a client silent for that long is
  closed (while its request is in progress too: a handler slower than it loses its response);
- hypercorn's `keep_alive_timeout`, set to the same figure: the time from the connection's start
  (or its previous response) to the end of the next request's headers;
- `WebApp`'s body deadline (408): the time to receive a request's whole body, which the
  per-read timeout does not bound for a client that sends a byte now and then.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, cast

import trio
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper
from hypercorn.utils import repr_socket_addr, wrap_app

from itinerabot.web.app import DEFAULT_READ_TIMEOUT, WebApp

#: connections served at once unless told otherwise (ServerSettings.max_connections)
DEFAULT_MAX_CONNECTIONS = 200
#: seconds requests in progress get to finish once shutdown is asked for
GRACEFUL_TIMEOUT = 2.0


class CappedListener(trio.abc.Listener[trio.SocketStream]):
    """Accepts from `inner` only while `slots` has one free; the connection's handler must
    give it back (`slots.release()`) when the connection ends."""

    def __init__(self, inner: trio.SocketListener, slots: trio.Semaphore) -> None:
        self.inner = inner
        self._slots = slots

    async def accept(self) -> trio.SocketStream:
        await self._slots.acquire()
        try:
            return await self.inner.accept()
        except BaseException:
            self._slots.release()  # nothing was accepted (cancelled, or EMFILE and retried)
            raise

    async def aclose(self) -> None:
        await self.inner.aclose()


def _config(read_timeout: float) -> Config:
    return Config.from_mapping(
        accesslog=None,
        errorlog=logging.getLogger("hypercorn.error"),
        read_timeout=read_timeout,  # typed int there, used as seconds: a float works
        keep_alive_timeout=read_timeout,
    )


async def _connection(
    asgi: AppWrapper,
    config: Config,
    context: WorkerContext,
    slots: trio.Semaphore,
    stream: trio.SocketStream,
) -> None:
    """Serve one accepted connection with hypercorn, then free its slot."""
    try:
        # typed for TLS streams; a plain one is what it falls back to (AttributeError)
        await TCPServer(asgi, config, context, {}, cast(Any, stream))
    finally:
        slots.release()


async def run_web_server(
    app: WebApp,
    host: str,
    port: int,
    shutdown: trio.Event,
    *,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `host:port` until `shutdown` is set; reports `http://host:port` once
    listening. Raises OSError if the address cannot be bound.

    At most `max_connections` connections are open at once. A client silent for
    `read_timeout` seconds, or that takes longer to send a request's headers, is disconnected
    (the body's deadline is `app.read_timeout`, answered 408).
    """
    config = _config(read_timeout)
    asgi = wrap_app(cast(Any, app), config.wsgi_max_body_size, "asgi")
    context = WorkerContext(None)  # no request limit: the process is not recycled
    slots = trio.Semaphore(max_connections)
    connection = partial(_connection, asgi, config, context, slots)
    listeners = await trio.open_tcp_listeners(port, host=host)
    sockname = listeners[0].socket.getsockname()
    address = f"http://{repr_socket_addr(listeners[0].socket.family, sockname)}"
    async with trio.open_nursery() as connections:
        async with trio.open_nursery() as accepting:
            accepting.start_soon(
                partial(
                    trio.serve_listeners,
                    connection,
                    [CappedListener(listener, slots) for listener in listeners],
                    handler_nursery=connections,
                )
            )
            task_status.started(address)
            await shutdown.wait()
            accepting.cancel_scope.cancel()
        # Idle keep-alive connections close now and busy ones after their response; what is
        # still open after the grace period is cut.
        await context.terminated.set()
        connections.cancel_scope.deadline = trio.current_time() + GRACEFUL_TIMEOUT
