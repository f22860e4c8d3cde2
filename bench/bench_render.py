"""Time `render_itinerary` on the two-flight sample: median and p95 milliseconds, size in KB.

Run from the repository root: `.venv/bin/python bench/bench_render.py --n 300`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, not installed

from itinerabot.pdf import render_itinerary, sample_order

ISSUED_AT = datetime(2026, 11, 26, 10, 1, tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=300, help="timed renders (default 300)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed renders first")
    parser.add_argument("--page-size", choices=("A4", "Letter"), default="A4")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")

    order, payment = sample_order()

    def render() -> bytes:
        return render_itinerary(order, payment, page_size=args.page_size, issued_at=ISSUED_AT)

    for _ in range(args.warmup):
        render()
    timings_ms: list[float] = []
    for _ in range(args.n):
        start = time.perf_counter()
        pdf = render()
        timings_ms.append((time.perf_counter() - start) * 1000)

    timings_ms.sort()
    p95 = timings_ms[min(len(timings_ms) - 1, round(0.95 * (len(timings_ms) - 1)))]
    print(f"renders:  {args.n} ({args.page_size}, {len(order.itinerary.flights)} flights)")
    print(f"median:   {statistics.median(timings_ms):.2f} ms  (aim <= 15 ms)")
    print(f"p95:      {p95:.2f} ms")
    print(f"size:     {len(pdf) / 1024:.1f} KB  (aim <= 60 KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
