"""Time `render_itinerary`: median and p95 milliseconds per render, and the PDF's size.

Run from the repository root:
  `.venv/bin/python bench/bench_render.py --n 300` (the two-flight sample order),
  `.venv/bin/python bench/bench_render.py --flights 16 --travellers 9` (one sample trip),
  `.venv/bin/python bench/bench_render.py --matrix` (1, 4 and 16 flights x 1 and 9 travellers).
The budget of issue 12: 16 flights for 9 travellers in <= 50 ms and <= 150 KB.
"""

from __future__ import annotations

import argparse
import functools
import io
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, not installed

import pypdf

from itinerabot.models import Order, Payment
from itinerabot.pdf import PageSize, render_itinerary, sample_order, sample_trip

ISSUED_AT = datetime(2026, 11, 26, 10, 1, tzinfo=UTC)
BUDGET_MS = 50.0
BUDGET_KB = 150.0
MATRIX = [(flights, travellers) for flights in (1, 4, 16) for travellers in (1, 9)]


def measure(
    order: Order, payment: Payment, page_size: PageSize, n: int, warmup: int
) -> tuple[float, float, bytes]:
    """Median and p95 milliseconds of `n` timed renders (after `warmup` untimed), and the PDF."""

    def render() -> bytes:
        return render_itinerary(order, payment, page_size=page_size, issued_at=ISSUED_AT)

    pdf = render()
    for _ in range(warmup):
        render()
    timings_ms: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        pdf = render()
        timings_ms.append((time.perf_counter() - start) * 1000)
    timings_ms.sort()
    p95 = timings_ms[min(len(timings_ms) - 1, round(0.95 * (len(timings_ms) - 1)))]
    return statistics.median(timings_ms), p95, pdf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=300, help="timed renders per case (default 300)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed renders first")
    parser.add_argument("--page-size", choices=("A4", "Letter"), default="A4")
    parser.add_argument("--flights", type=int, help="a sample trip of this many flights (1-16)")
    parser.add_argument("--travellers", type=int, help="... for this many travellers (1-9)")
    parser.add_argument("--matrix", action="store_true", help="1, 4, 16 flights x 1, 9 travellers")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")

    cases: list[tuple[str, Callable[[], tuple[Order, Payment]]]]
    if args.matrix:
        cases = [(f"{f:>2} x {t}", functools.partial(sample_trip, f, t)) for f, t in MATRIX]
    elif args.flights is not None or args.travellers is not None:
        flights, travellers = args.flights or 16, args.travellers or 1
        try:
            sample_trip(flights, travellers)
        except ValueError as exc:
            parser.error(str(exc))
        cases = [
            (f"{flights:>2} x {travellers}", functools.partial(sample_trip, flights, travellers))
        ]
    else:
        cases = [("sample", sample_order)]

    print(f"{args.n} renders per case after {args.warmup} untimed, {args.page_size}")
    print("flights x travellers | pages | median ms |  p95 ms |   size KB")
    over = False
    for name, build in cases:
        order, payment = build()
        median, p95, pdf = measure(order, payment, args.page_size, args.n, args.warmup)
        pages = len(pypdf.PdfReader(io.BytesIO(pdf)).pages)
        size_kb = len(pdf) / 1024
        over |= median > BUDGET_MS or size_kb > BUDGET_KB
        print(f"{name:>20} | {pages:>5} | {median:>9.2f} | {p95:>7.2f} | {size_kb:>9.1f}")
    print(f"budget: <= {BUDGET_MS:.0f} ms and <= {BUDGET_KB:.0f} KB: {'OVER' if over else 'met'}")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
