"""ASGI plumbing shared by the sandbox fakes, and the two ways to reach them.

In process: `InProcessTransport(app)` for an `httpx.AsyncClient` (no sockets, exact under the
autojump clock). On loopback: `await nursery.start(serve_app, app)` gives "http://127.0.0.1:<port>".
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import httpx
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

__all__ = [
    "ASGIApp",
    "ClientDisconnected",
    "ConnectionDropped",
    "InProcessTransport",
    "Receive",
    "Scope",
    "Send",
    "answer_lifespan",
    "drop_connection",
    "header",
    "read_body",
    "send_bytes",
    "send_json",
    "serve_app",
    "wait_for",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY = 64 * 1024 * 1024  # above Telegram's 50 MB upload limit


class ConnectionDropped(httpx.RemoteProtocolError):
    """Raised by a fake after a partial response to simulate a dropped connection.

    In process (`httpx.ASGITransport`) it reaches the client as an `httpx.RemoteProtocolError`;
    `serve_app` catches it so hypercorn closes the socket mid-body, which the client sees as the
    same error class.
    """

    def __init__(self, message: str = "sandbox: connection dropped mid-response") -> None:
        super().__init__(message)


async def drop_connection(send: Send) -> None:
    """Start a response, send part of it, and break off (raises `ConnectionDropped`)."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"ok": tr', "more_body": True})
    raise ConnectionDropped()


def header(scope: Scope, name: str) -> str | None:
    """The value of request header `name` (case-insensitive), or None."""
    wanted = name.lower().encode("latin-1")
    for key, value in scope.get("headers", []):
        if bytes(key).lower() == wanted:
            return bytes(value).decode("latin-1")
    return None


class ClientDisconnected(Exception):
    """The client went away before its request body was complete (e.g. it was killed).

    A real server never acts on half a request; `serve_app` ends the app quietly.
    """


async def read_body(receive: Receive, limit: int = MAX_BODY) -> bytes:
    """Read the whole request body; raises ValueError when it exceeds `limit` bytes and
    ClientDisconnected when the client leaves before sending all of it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = bytes(message.get("body", b""))
        size += len(chunk)
        if size > limit:
            raise ValueError(f"request body over {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: str = "application/json",
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    """Send a complete response."""
    raw_headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode("latin-1")),
    ]
    raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_json(
    send: Send, status: int, payload: object, *, headers: Iterable[tuple[str, str]] = ()
) -> None:
    """Send `payload` as a JSON response."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    await send_bytes(send, status, body, headers=headers)


async def answer_lifespan(receive: Receive, send: Send) -> None:
    """Answer the ASGI lifespan protocol: the fakes need no start-up or shut-down work."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class InProcessTransport(httpx.ASGITransport):
    """`httpx.ASGITransport` that also honours the request's read timeout.

    Plain `ASGITransport` ignores httpx timeouts, so a fake that answers slowly would hang the
    client. Here the app runs under `trio.move_on_after(read timeout)` and an overrun raises
    `httpx.ReadTimeout`, as on a socket. Use only under trio.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        read_timeout = timeouts.get("read")
        with trio.move_on_after(read_timeout if read_timeout is not None else float("inf")):
            return await super().handle_async_request(request)
        raise httpx.ReadTimeout("sandbox: read timed out", request=request)


def _dropping_closes_socket(app: ASGIApp) -> ASGIApp:
    """Let `ConnectionDropped` end the app quietly so hypercorn closes the half-sent response,
    and `ClientDisconnected` too: the client is gone, there is nobody to answer."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        except (ConnectionDropped, ClientDisconnected):
            return

    return wrapped


async def serve_app(
    app: ASGIApp,
    *,
    shutdown: trio.Event | None = None,
    graceful_timeout: float = 1.0,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` with hypercorn's trio worker on 127.0.0.1 and an OS-chosen port.

    Reports the base URL ("http://127.0.0.1:<port>") through `task_status` once listening.
    Returns after `shutdown` is set (graceful, bounded by `graceful_timeout`) or when cancelled.
    """
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.graceful_timeout = graceful_timeout
    config.loglevel = "WARNING"
    trigger = shutdown.wait if shutdown is not None else None
    # hypercorn types its app with its own TypedDicts; ours are plain mappings.
    served: Any = _dropping_closes_socket(app)
    reporter: Any = _FirstBind(task_status)
    await serve(served, config, shutdown_trigger=trigger, task_status=reporter)


class _FirstBind:
    """Passes on the first of the addresses hypercorn reports with `started(binds)`."""

    def __init__(self, task_status: trio.TaskStatus[str]) -> None:
        self._task_status = task_status

    def started(self, binds: list[str] | None = None) -> None:
        if not binds:
            raise RuntimeError("hypercorn reported no bound address")
        self._task_status.started(binds[0])


async def wait_for(
    predicate: Callable[[], object], within: float, *, interval: float = 0.05
) -> None:
    """Wait (trio time) until `predicate()` is truthy; raises `trio.TooSlowError` after `within`."""
    with trio.fail_after(within):
        # An arbitrary predicate over a fake's records has no event to wait on: poll it.
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(interval)
