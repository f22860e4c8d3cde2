"""The HTTP/1.1 path to Circle: a small keep-alive pool speaking h11 over trio streams.

Thousands of pollers each ask Circle for one intent every 30 s, so the cost of one request is
the cost of the product. httpx spends about 450 µs of CPU on a keep-alive GET on this kind of
machine, almost all in its client and pool layers; h11 over a trio stream spends about 100 µs
(`bench/bench_pollers.py`). h11 is the HTTP/1.1 state machine httpx itself uses, so framing
(Content-Length, chunked, keep-alive, close) is handled by the same code.

`HttpxPort` keeps httpx for callers that bring an httpx transport (tests, the in-process
sandbox); both ports raise only the project's errors, and count each request's status (or
"timeout", "network") in `itinerabot_circle_requests`.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import h11
import httpx
import trio

from itinerabot import __version__
from itinerabot.adapters.circle.errors import SERVICE
from itinerabot.errors import ConfigError, TransientServiceError
from itinerabot.metrics import CIRCLE_REQUESTS

_MAX_BODY = 4 * 1024 * 1024  # a Circle answer is a few KB; anything this big is not one
_USER_AGENT = f"itinerabot/{__version__}"


@dataclass(frozen=True, slots=True)
class RawResponse:
    """Status, lower-case headers and the whole body of one answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; raises ValueError if it is not."""
        return json.loads(self.body)


class HttpPort(Protocol):
    """Sends one request to the service and returns its whole answer.

    Raises TransientServiceError for network errors and timeouts (message says which).
    """

    async def request(self, method: str, target: str, *, json_body: Any = None) -> RawResponse: ...

    async def aclose(self) -> None: ...


class _Connection:
    __slots__ = ("h11", "stream")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)


class _Broken(Exception):
    """The connection failed; `fresh` says whether it was a newly opened one."""

    def __init__(self, reason: str, *, fresh: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fresh = fresh


class H11Pool:
    """Keep-alive connections to one origin, at most `max_connections` at a time.

    A request that fails on a reused connection before any answer arrived is sent once more
    on a new connection (the server may have closed an idle connection meanwhile).
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        timeout: float,
        max_connections: int,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url}")
        self._host = url.hostname
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._prefix = url.path.rstrip("/")
        self._tls = ssl.create_default_context() if url.scheme == "https" else None
        if self._tls is not None:
            self._tls.set_alpn_protocols(["http/1.1"])
        default_port = self._port == (443 if url.scheme == "https" else 80)
        host_header = self._host if default_port else f"{self._host}:{self._port}"
        self._headers = [
            ("Host", host_header),
            ("User-Agent", _USER_AGENT),
            *headers.items(),
        ]
        try:  # checked once here, so a bad header never fails (and is logged) per request
            h11.Request(method="GET", target="/", headers=self._headers)
        except h11.LocalProtocolError:
            raise ConfigError(
                ["circle: a request header is not valid HTTP (check circle.api_key)"]
            ) from None
        self._timeout = timeout
        self._slots = trio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self.connections_opened = 0

    async def request(self, method: str, target: str, *, json_body: Any = None) -> RawResponse:
        body = b"" if json_body is None else json.dumps(json_body).encode()
        headers = list(self._headers)
        if json_body is not None:
            headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        request = h11.Request(method=method, target=self._prefix + target, headers=headers)
        async with self._slots:
            try:
                with trio.fail_after(self._timeout):
                    try:
                        response = await self._exchange(request, body)
                    except _Broken as exc:
                        if exc.fresh:
                            raise
                        response = await self._exchange(request, body, fresh=True)
            except trio.TooSlowError:
                CIRCLE_REQUESTS.labels("timeout").inc()
                raise TransientServiceError(SERVICE, f"{method} {target}: timed out") from None
            except _Broken as exc:
                CIRCLE_REQUESTS.labels("network").inc()
                raise TransientServiceError(SERVICE, f"{method} {target}: {exc.reason}") from exc
        CIRCLE_REQUESTS.labels(str(response.status)).inc()
        return response

    async def _exchange(
        self, request: h11.Request, body: bytes, *, fresh: bool = False
    ) -> RawResponse:
        conn = None if fresh or not self._idle else self._idle.pop()
        fresh = conn is None
        if conn is None:
            conn = await self._connect()
        done = False
        try:
            response = await self._send_and_receive(conn, request, body, fresh=fresh)
            done = True
        finally:
            if not done:  # failed, timed out or cancelled half-way: the connection is spoilt
                await trio.aclose_forcefully(conn.stream)
        if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
            conn.h11.start_next_cycle()
            self._idle.append(conn)
        else:
            await trio.aclose_forcefully(conn.stream)
        return response

    async def _connect(self) -> _Connection:
        try:
            stream: trio.abc.Stream = await trio.open_tcp_stream(self._host, self._port)
            if self._tls is not None:
                tls = trio.SSLStream(
                    stream, self._tls, server_hostname=self._host, https_compatible=True
                )
                await tls.do_handshake()
                stream = tls
        except (OSError, trio.BrokenResourceError) as exc:
            raise _Broken(f"cannot connect: {exc.__class__.__name__}", fresh=True) from exc
        self.connections_opened += 1
        return _Connection(stream)

    async def _send_and_receive(
        self, conn: _Connection, request: h11.Request, body: bytes, *, fresh: bool
    ) -> RawResponse:
        out = conn.h11.send(request) or b""
        if body:
            out += conn.h11.send(h11.Data(data=body)) or b""
        out += conn.h11.send(h11.EndOfMessage()) or b""
        received_any = False
        try:
            await conn.stream.send_all(out)
            status, headers, chunks, size = 0, {}, [], 0
            while True:
                event = conn.h11.next_event()
                if event is h11.NEED_DATA:
                    data = await conn.stream.receive_some(65536)
                    received_any = received_any or bool(data)
                    conn.h11.receive_data(bytes(data))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    size += len(event.data)
                    if size > _MAX_BODY:
                        raise _Broken("answer too large", fresh=True)
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    return RawResponse(status, headers, b"".join(chunks))
                elif isinstance(event, h11.ConnectionClosed):
                    raise _Broken("connection closed", fresh=fresh or received_any)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise _Broken(
                f"connection failed ({exc.__class__.__name__})", fresh=fresh or received_any
            ) from exc
        except h11.ProtocolError as exc:
            # an idle connection the server closed shows up here too: nothing was received
            raise _Broken(f"bad HTTP from the server ({exc})", fresh=fresh or received_any) from exc

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await trio.aclose_forcefully(conn.stream)


class HttpxPort:
    """The same port over an httpx client (for an injected httpx transport)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def request(self, method: str, target: str, *, json_body: Any = None) -> RawResponse:
        try:
            response = await self._client.request(method, target, json=json_body)
        except httpx.TimeoutException as exc:
            CIRCLE_REQUESTS.labels("timeout").inc()
            raise TransientServiceError(SERVICE, f"{method} {target}: timed out") from exc
        except httpx.RequestError as exc:
            CIRCLE_REQUESTS.labels("network").inc()
            raise TransientServiceError(
                SERVICE, f"{method} {target}: {exc.__class__.__name__}: {exc}"
            ) from exc
        CIRCLE_REQUESTS.labels(str(response.status_code)).inc()
        return RawResponse(
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.content,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
