"""A minimal ASGI app: exact-path routes, a request-body cap (413) and deadline (408).

Handlers get the method, headers and the whole raw body (webhook signatures need the exact
bytes) and return a `Response`. No framework: three routes do not need one. Whatever a client
sends, the answer is a 4xx with one WARNING line; a 500 (with its traceback) means a bug.
Each answer of a webhook route is counted by its outcome (`Outcome`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import trio

from itinerabot.metrics import DISCARD, Recorder

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: seconds a client has to send a request body, unless the app is given another figure
DEFAULT_READ_TIMEOUT = 10.0
#: routes under this prefix are webhooks, counted by outcome
WEBHOOKS = "/webhooks/"


class Outcome(StrEnum):
    """What a webhook request came to. A handler names the outcomes its status cannot tell
    (a duplicate is answered 200, a bad signature 400); the status gives the rest."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REFUSED_SIGNATURE = "refused-signature"
    BAD_REQUEST = "bad-request"
    RETRY_LATER = "retry-later"
    ERROR = "error"

    @classmethod
    def of_status(cls, status: int) -> Outcome:
        if status < 300:
            return cls.ACCEPTED
        if status < 500:
            return cls.BAD_REQUEST
        return cls.ERROR if status == 500 else cls.RETRY_LATER


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; names and values are ASCII
    body: bytes


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = field(default=())
    #: what a webhook request came to, when the status alone does not say it
    outcome: Outcome | None = None

    @classmethod
    def json(cls, status: int, obj: Any) -> Response:
        return cls(status, json.dumps(obj).encode(), "application/json")

    @classmethod
    def text(cls, status: int, text: str, *, outcome: Outcome | None = None) -> Response:
        return cls(status, text.encode(), outcome=outcome)


Handler = Callable[[Request], Awaitable[Response]]


class _Refused(Exception):
    """The request is refused before its handler runs; `response` says how."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.body.decode())
        self.response = response


class WebApp:
    """The ASGI application; payment modules add their webhook routes with `route`.

    A request body over `max_body_bytes` is refused (413) and so is one that takes more than
    `read_timeout` seconds to arrive (408): the server's own timeout is per read, so a client
    sending a byte now and then would otherwise hold its connection for ever.
    """

    def __init__(
        self,
        *,
        max_body_bytes: int,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        metrics: Recorder = DISCARD,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        self._metrics = metrics
        self._routes: dict[str, tuple[frozenset[str], Handler]] = {}

    def route(self, path: str, methods: set[str], handler: Handler) -> None:
        self._routes[path] = (frozenset(methods), handler)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            response = await self._dispatch(scope, receive)
        except _Refused as refusal:
            response = refusal.response
            log.warning(
                "request refused",
                extra={
                    "path": scope["path"],
                    "method": scope["method"],
                    "status": response.status,
                    "reason": str(refusal),
                },
            )
        self._count(scope, response)
        headers = [
            (b"content-type", response.content_type.encode()),
            (b"content-length", str(len(response.body)).encode()),
            *((k.encode(), v.encode()) for k, v in response.headers),
        ]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else response.body
        await send({"type": "http.response.body", "body": body})

    def _count(self, scope: Scope, response: Response) -> None:
        """Count a webhook route's answer (not HEAD: Circle's endpoint check)."""
        path: str = scope["path"]
        # only registered routes: a label from whatever path a client sends has no bound
        if path.startswith(WEBHOOKS) and path in self._routes and scope["method"] != "HEAD":
            outcome = response.outcome or Outcome.of_status(response.status)
            self._metrics.webhook_answered(path.removeprefix(WEBHOOKS), outcome)

    async def _dispatch(self, scope: Scope, receive: Receive) -> Response:
        """The handler's response; raises _Refused for a request it must not see."""
        path: str = scope["path"]
        method: str = scope["method"]
        entry = self._routes.get(path)
        if entry is None:
            return Response.text(404, "not found")  # not logged: scanners knock on every path
        methods, handler = entry
        if method not in methods:
            allow = ", ".join(sorted(methods))
            raise _Refused(Response(405, b"method not allowed", headers=(("allow", allow),)))
        headers = _headers(scope.get("headers", []))
        declared = _content_length(headers.get("content-length"))
        if declared is not None and declared > self.max_body_bytes:
            raise _Refused(self._too_large())
        body: bytes | None = None
        with trio.move_on_after(self.read_timeout):
            body = await self._read_body(receive)
        if body is None:
            raise _Refused(
                Response(
                    408,
                    f"request body not received within {self.read_timeout:g} s".encode(),
                    headers=(("connection", "close"),),
                )
            )
        try:
            return await handler(Request(method, path, headers, body))
        except trio.Cancelled:
            raise
        except Exception:
            log.exception("webhook handler failed", extra={"path": path})
            return Response.text(500, "internal error")

    def _too_large(self) -> Response:
        return Response(
            413,
            f"request body over {self.max_body_bytes} bytes".encode(),
            headers=(("connection", "close"),),
        )

    async def _read_body(self, receive: Receive) -> bytes:
        """The whole body. Raises _Refused if it is too large or the client goes away."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Refused(Response.text(400, "client went away before the body ended"))
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _Refused(self._too_large())
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header names (lower-cased) and values. Raises _Refused (400) for a byte outside ASCII:
    no sender of ours uses one, and libraries downstream (stripe's signature comparison) fail
    on non-ASCII text in ways that are not refusals."""
    try:
        return {k.decode("ascii").lower(): v.decode("ascii") for k, v in raw}
    except UnicodeDecodeError:
        raise _Refused(Response.text(400, "a header is not ASCII")) from None


def _content_length(value: str | None) -> int | None:
    """The declared body size, or None. Raises _Refused (400) if it is not a number."""
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()):
        raise _Refused(Response.text(400, "Content-Length is not a number"))
    # int() refuses over 4300 digits; anything past 18 is over any cap anyway
    return int(value) if len(value) <= 18 else 10**18
