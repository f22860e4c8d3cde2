"""The peers' loopback Circle (`../shared/peers/pollers/server.py`, its code run unchanged) for
`bench_pollers.py`: it prints its request count on SIGUSR1, and with `--full-body` answers the
full PaymentIntent shape (the peers' trimmed body has no `settlementCurrency` or
`paymentMethods`, which `itinerabot.adapters.circle.status.parse_payment_intent` requires).

    python bench/fake_circle.py --server ../shared/peers/pollers/server.py [--port 0] [--full-body]
        [--creates DELAY]

Prints `LISTENING <port>` once bound, `COUNT <requests>` on every SIGUSR1, and on SIGTERM the
server's own JSON line (`server_requests`, `server_cpu_s`). Only the module's `BODY_TAIL` is
replaced; the request handling, and so the server's cost per request, stays the peers'.
With `--creates DELAY` (implies --full-body) requests are handled here instead, so that new
travellers can pay: `POST /v1/paymentIntents` creates an intent (its amount as asked), whose
deposit address shows in `GET`s from DELAY seconds after its creation (Circle's own delay);
any other id is answered as a seeded, pending intent with its address.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import signal
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType

#: the deposit address and chain every intent shows (the benchmark seeds its store with them)
ADDRESS = "0x6c4b2f7c3a1e9d8b5f0a2e4c6d8b0a1f3e5c7d9b"
CHAIN = "ETH"
AMOUNT = "12.34"

#: what follows the intent id in `{"data":{"id":"<id>` — Circle's PaymentIntent, still pending
#: (the peers' timeline, newest first), with every field of the spec's schema
FULL_BODY_TAIL = (
    b'","amount":{"amount":"' + AMOUNT.encode() + b'","currency":"USD"},'
    b'"amountPaid":{"amount":"0.00","currency":"USD"},'
    b'"amountRefunded":{"amount":"0.00","currency":"USD"},'
    b'"settlementCurrency":"USD",'
    b'"paymentMethods":[{"type":"blockchain","chain":"' + CHAIN.encode() + b'",'
    b'"address":"' + ADDRESS.encode() + b'"}],'
    b'"fees":[],"paymentIds":[],"refundIds":[],'
    b'"timeline":[{"status":"pending","time":"2026-11-26T10:00:05.000000Z"},'
    b'{"status":"created","time":"2026-11-26T10:00:00.000000Z"}],'
    b'"expiresOn":"2099-11-26T11:00:00.000000Z",'
    b'"updateDate":"2026-11-26T10:00:05.000000Z",'
    b'"createDate":"2026-11-26T10:00:00.000000Z",'
    b'"merchantWalletId":"1000216185"}}'
)
#: the start of every body, as the peers' server writes it
BODY_HEAD = b'{"data":{"id":"'


def load_server(path: Path) -> ModuleType:
    """Import the peers' server.py as a module (its `main` is not run on import)."""
    spec = importlib.util.spec_from_file_location("peer_circle_server", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("BODY_HEAD", "BODY_TAIL", "served", "main"):
        if not hasattr(module, name):
            raise SystemExit(f"{path} has no {name}: the peers' server changed, update this file")
    if module.BODY_HEAD != BODY_HEAD:
        raise SystemExit(f"{path}: BODY_HEAD changed, update this file")
    return module


class Creations:
    """Intents created through `POST /v1/paymentIntents`: id → (monotonic time, amount)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.made: dict[str, tuple[float, str]] = {}

    def create(self, body: bytes) -> bytes:
        asked = json.loads(body)
        intent_id = str(uuid.uuid4())
        amount = str(asked["amount"]["amount"])
        self.made[intent_id] = (time.monotonic(), amount)
        return self._body(intent_id, amount, address=False)

    def get(self, intent_id: str) -> bytes:
        made = self.made.get(intent_id)
        if made is None:
            return BODY_HEAD + intent_id.encode() + FULL_BODY_TAIL
        created, amount = made
        return self._body(intent_id, amount, address=time.monotonic() - created >= self.delay)

    @staticmethod
    def _body(intent_id: str, amount: str, *, address: bool) -> bytes:
        method: dict[str, str] = {"type": "blockchain", "chain": CHAIN}
        timeline = [{"status": "created", "time": "2026-11-26T10:00:00.000000Z"}]
        if address:
            method["address"] = ADDRESS
            timeline.insert(0, {"status": "pending", "time": "2026-11-26T10:00:05.000000Z"})
        zero = {"amount": "0.00", "currency": "USD"}
        data = {
            "id": intent_id,
            "amount": {"amount": amount, "currency": "USD"},
            "amountPaid": zero,
            "amountRefunded": zero,
            "settlementCurrency": "USD",
            "paymentMethods": [method],
            "fees": [],
            "paymentIds": [],
            "refundIds": [],
            "timeline": timeline,
            "expiresOn": "2099-11-26T11:00:00.000000Z",
            "updateDate": "2026-11-26T10:00:05.000000Z",
            "createDate": "2026-11-26T10:00:00.000000Z",
            "merchantWalletId": "1000216185",
        }
        return json.dumps({"data": data}).encode()


def creating_handler(server: ModuleType, creations: Creations) -> type[asyncio.Protocol]:
    """An HTTP/1.1 keep-alive handler like the peers' that also reads request bodies and
    creates intents; it counts requests in `server.served` as theirs does."""
    prefix = b"/v1/paymentIntents"

    class Handler(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            out = []
            while (end := self.buf.find(b"\r\n\r\n")) >= 0:
                head = self.buf[:end].decode("latin-1").split("\r\n")
                length = 0
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if len(self.buf) < end + 4 + length:
                    break  # the body is still on its way
                body = self.buf[end + 4 : end + 4 + length]
                self.buf = self.buf[end + 4 + length :]
                method, path, _ = head[0].split(" ", 2)
                out.append(self._answer(method, path.encode(), body))
                setattr(server, "served", server.served + 1)  # noqa: B010 - its global
            if out:
                self.transport.write(b"".join(out))

        def _answer(self, method: str, path: bytes, body: bytes) -> bytes:
            if method == "POST" and path == prefix:
                return _response(b"201 Created", creations.create(body))
            if method == "GET" and path.startswith(prefix + b"/"):
                return _response(b"200 OK", creations.get(path[len(prefix) + 1 :].decode()))
            return _response(b"404 Not Found", b'{"code":404,"message":"no such"}')

    return Handler


def _response(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )


async def _serve(server: ModuleType, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: print(f"COUNT {server.served}", flush=True))
    await server.main(host, port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--server", type=Path, required=True, help="the peers' server.py")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--full-body", action="store_true", help="answer the full PaymentIntent")
    parser.add_argument(
        "--creates", type=float, metavar="DELAY", help="take creates; address after DELAY s"
    )
    args = parser.parse_args(argv)
    server = load_server(args.server)
    if args.creates is not None:
        setattr(server, "Handler", creating_handler(server, Creations(args.creates)))  # noqa: B010
    elif args.full_body:
        setattr(server, "BODY_TAIL", FULL_BODY_TAIL)  # noqa: B010 - a module's global
    asyncio.run(_serve(server, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
