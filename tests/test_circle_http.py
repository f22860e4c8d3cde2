"""The lean HTTP/1.1 pool to Circle, against real loopback servers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio

from itinerabot.adapters.circle.http import H11Pool
from itinerabot.errors import TransientServiceError
from sandbox.circle import FakeCircle
from sandbox.serve import serve_app

Handler = Callable[[trio.SocketStream], Awaitable[None]]
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok": 1}\r\n'


async def raw_server(nursery: trio.Nursery, handler: Handler) -> str:
    listeners = await nursery.start(trio.serve_tcp, handler, 0)
    port = listeners[0].socket.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def pool(base: str, timeout: float = 5.0) -> H11Pool:
    return H11Pool(base, headers={"Authorization": "Bearer k"}, timeout=timeout, max_connections=4)


async def read_request(stream: trio.SocketStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return data
        data += chunk
    return data


async def test_keep_alive_against_the_sandbox_circle() -> None:
    circle = FakeCircle(api_key="k")
    async with trio.open_nursery() as nursery:
        base = await nursery.start(serve_app, circle)
        http = pool(base)
        created = await http.request(
            "POST",
            "/v1/paymentIntents",
            json_body={
                "idempotencyKey": "0b3c9a1e-5f2d-4c8e-9a7b-6d5e4f3a2b1c",
                "amount": {"amount": "10.00", "currency": "USD"},
                "settlementCurrency": "USD",
                "paymentMethods": [{"type": "blockchain", "chain": "ETH"}],
            },
        )
        intent = created.json()["data"]["id"]
        answers = [await http.request("GET", f"/v1/paymentIntents/{intent}") for _ in range(5)]
        await http.aclose()
        nursery.cancel_scope.cancel()
    assert created.status == 201
    assert [a.status for a in answers] == [200] * 5
    assert answers[-1].headers["content-type"].startswith("application/json")
    assert http.connections_opened == 1


async def test_an_idle_connection_closed_by_the_server_is_replaced() -> None:
    async def once_then_close(stream: trio.SocketStream) -> None:
        await read_request(stream)
        await stream.send_all(OK)
        await stream.aclose()  # keep-alive promised, then dropped while idle

    async with trio.open_nursery() as nursery:
        http = pool(await raw_server(nursery, once_then_close))
        first = await http.request("GET", "/a")
        await trio.sleep(0.05)
        second = await http.request("GET", "/b")
        await http.aclose()
        nursery.cancel_scope.cancel()
    assert first.json() == second.json() == {"ok": 1}
    assert http.connections_opened == 2


async def test_chunked_answers_are_read_whole() -> None:
    async def chunked(stream: trio.SocketStream) -> None:
        await read_request(stream)
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'5\r\n{"a":\r\n3\r\n 1}\r\n0\r\n\r\n'
        )

    async with trio.open_nursery() as nursery:
        http = pool(await raw_server(nursery, chunked))
        answer = await http.request("GET", "/x")
        await http.aclose()
        nursery.cancel_scope.cancel()
    assert answer.json() == {"a": 1}


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (None, "timed out"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "bad HTTP"),
        (b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"cut', "closed connection"),
    ],
)
async def test_failures_become_transient_errors(reply: bytes | None, reason: str) -> None:
    async def answer(stream: trio.SocketStream) -> None:
        await read_request(stream)
        if reply is None:
            await trio.sleep_forever()
        await stream.send_all(reply)
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        http = pool(await raw_server(nursery, answer), timeout=0.3)
        with pytest.raises(TransientServiceError, match=reason):
            await http.request("GET", "/x")
        nursery.cancel_scope.cancel()


async def test_nothing_listening_is_a_transient_error() -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(TransientServiceError, match="cannot connect"):
        await pool(f"http://127.0.0.1:{port}").request("GET", "/x")
