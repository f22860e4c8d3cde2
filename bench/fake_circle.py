"""The peers' loopback Circle (`../shared/peers/pollers/server.py`, its code run unchanged) for
`bench_pollers.py`: it prints its request count on SIGUSR1, and with `--full-body` answers the
full PaymentIntent shape (the peers' trimmed body has no `settlementCurrency` or
`paymentMethods`, which `itinerabot.adapters.circle.status.parse_payment_intent` requires).

    python bench/fake_circle.py --server ../shared/peers/pollers/server.py [--port 0] [--full-body]

Prints `LISTENING <port>` once bound, `COUNT <requests>` on every SIGUSR1, and on SIGTERM the
server's own JSON line (`server_requests`, `server_cpu_s`). Only the module's `BODY_TAIL` is
replaced; the request handling, and so the server's cost per request, stays the peers'.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import signal
import sys
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
    args = parser.parse_args(argv)
    server = load_server(args.server)
    if args.full_body:
        setattr(server, "BODY_TAIL", FULL_BODY_TAIL)  # noqa: B010 - a module's global
    asyncio.run(_serve(server, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
