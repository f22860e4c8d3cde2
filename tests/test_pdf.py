"""The itinerary PDF read back with pypdf: every field, literal markup, same bytes, sizes, QR."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest
import qrcode
from pypdf.generic import ContentStream
from reportlab import rl_config

from itinerabot.models import Flight, Itinerary, Order, Payment, PaymentMethod
from itinerabot.pdf import NOT_A_TICKET, PageSize, render_itinerary, sample_order
from itinerabot.pdf.render import (
    country_name,
    day_change_note,
    format_amount,
    format_duration,
    format_local_time,
    format_utc_offset,
    order_qr,
)

ISSUED_AT = datetime(2026, 11, 26, 10, 1, tzinfo=UTC)
TX_HASH = "0x9f2c4e1b7a3d5f6081c2e4a6b8d0f1e3c5a7b9d1f3e5a7c9b1d3f5e7a9c1b3d5"


def usdc_payment() -> Payment:
    return Payment(
        method=PaymentMethod.USDC,
        amount=Decimal("10.000000"),
        currency="USDC",
        provider_ref="7c1f0a2e-5b3d-4c8e-9f6a-1d2b3c4e5f60",
        paid_at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
        provider_payment_id="a3b4c5d6-e7f8-4a1b-8c2d-3e4f5a6b7c8d",
        tx_hash=TX_HASH,
    )


def with_passenger(order: Order, passenger: str) -> Order:
    itinerary = Itinerary(passengers=(passenger,), legs=order.itinerary.legs)
    return dataclasses.replace(order, itinerary=itinerary)


def render(order: Order, payment: Payment | None, page_size: PageSize = "A4") -> bytes:
    return render_itinerary(order, payment, page_size=page_size, issued_at=ISSUED_AT)


def page_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def squash(text: str) -> str:
    """Whitespace-insensitive form: wrapped lines and doubled spaces do not matter."""
    return " ".join(text.split())


def test_every_field_of_a_card_order_is_printed() -> None:
    order, payment = sample_order()
    text = squash(page_text(render(order, payment)))

    expected = [
        order.reference,
        order.itinerary.passengers[0],
        "LH 400",
        "LH 401",
        "FRA",
        "JFK",
        "Frankfurt am Main International Airport",
        "John F Kennedy International Airport",
        "Frankfurt am Main, Germany",
        "New York, United States",
        "Thu 10 Dec 2026 10:55 (UTC+01:00)",
        "Thu 10 Dec 2026 13:50 (UTC-05:00)",
        "Sun 20 Dec 2026 17:45 (UTC-05:00)",
        "Mon 21 Dec 2026 07:35 (UTC+01:00)",
        "8 h 55 min",
        "7 h 50 min",
        "Arrives the next day (local time).",
        "Card",
        "10.00 USD",
        "26 Nov 2026 10:00 UTC",
        payment.provider_ref,
        "pi_3QxT8kLz4TsY9wEo1d6hJcFg",
        "Issued 26 Nov 2026 10:01 UTC",
        NOT_A_TICKET,
    ]
    missing = [field for field in expected if field not in text]
    assert missing == []
    # Only the return flight lands on a later local date.
    assert text.count("Arrives the next day") == 1


def test_usdc_receipt_shows_circle_ids_and_transaction_hash() -> None:
    order, _ = sample_order()
    payment = usdc_payment()
    text = squash(page_text(render(order, payment)))

    for field in (
        "USDC",
        "10.00 USDC",
        "Circle intent",
        payment.provider_ref,
        "a3b4c5d6-e7f8-4a1b-8c2d-3e4f5a6b7c8d",
        TX_HASH,
    ):
        assert field in text
    assert "Stripe" not in text


def test_stars_receipt_shows_whole_stars_and_the_telegram_charge() -> None:
    order, _ = sample_order()
    charge = "stxWhqM5gN6sZpT8oEe3fQk1Lr4Yc9bJ2uAv7Dx0HiR"
    payment = Payment(
        method=PaymentMethod.STARS,
        amount=Decimal("250"),
        currency="XTR",
        provider_ref=charge,
        paid_at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
        provider_payment_id="",  # Telegram leaves the provider's charge id empty for Stars
    )
    text = squash(page_text(render(order, payment)))

    for field in ("Method Telegram Stars", "Amount 250 Telegram Stars (XTR)", "Telegram charge"):
        assert field in text
    assert charge in text
    assert "Provider charge" not in text
    for other in ("Stripe", "Circle", "USD ", "10.00"):
        assert other not in text


def test_unpaid_sample_has_no_receipt_fields() -> None:
    order, payment = sample_order()
    text = squash(page_text(render(order, None)))

    assert "Unpaid sample" in text
    assert payment.provider_ref not in text
    assert order.reference in text
    assert NOT_A_TICKET in text


@pytest.mark.parametrize(
    "passenger",
    [
        "<font size=90>X</font>",
        "A & B <b>bold</b> &amp; <para>",
        "O'Brien (Jr.) \\ back\\slash",
    ],
)
def test_markup_in_user_text_prints_literally(passenger: str) -> None:
    order, payment = sample_order()
    order = with_passenger(order, passenger)

    assert passenger in page_text(render(order, payment))


def test_markup_in_flight_fields_prints_literally() -> None:
    order, payment = sample_order()
    first = order.itinerary.flights[0]
    origin = dataclasses.replace(first.origin, name="<i>Rhein</i>-Main & Co", city="<br/>Town")
    flight = dataclasses.replace(first, flight_number="<u>LH</u> 400", origin=origin)
    itinerary = Itinerary(passengers=("P",), legs=((flight,),))
    text = page_text(render(dataclasses.replace(order, itinerary=itinerary), payment))

    for literal in ("<u>LH</u> 400", "<i>Rhein</i>-Main & Co", "<br/>Town, Germany"):
        assert literal in text


def test_non_latin_and_control_characters_do_not_crash() -> None:
    order, payment = sample_order()
    order = with_passenger(order, "Мария 東京 😀 Zürich\nline\x00two \ud800")

    text = page_text(render(order, payment))

    assert "Zürich line two" in squash(text)


def test_an_unbroken_long_name_is_wrapped_not_lost() -> None:
    order, payment = sample_order()
    name = "W" * 150
    text = page_text(render(with_passenger(order, name), payment))

    assert name in "".join(text.split())


def test_a_huge_name_spills_onto_more_pages_quickly() -> None:
    order, payment = sample_order()
    name = "W" * 4096 + " " + "word " * 800  # a Telegram message's worth

    pdf = render(with_passenger(order, name), payment)

    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages) > 1
    text = page_text(pdf)
    assert "W" * 4096 in "".join(text.split())
    assert NOT_A_TICKET in squash(text)
    assert "pi_3QxT8kLz4TsY9wEo1d6hJcFg" in text


def test_two_renders_are_byte_identical_and_leave_reportlab_settings_alone() -> None:
    order, payment = sample_order()

    first = render(order, payment)

    assert render(order, payment) == first
    assert rl_config.invariant == 0


def test_renders_in_parallel_threads_are_identical() -> None:
    """The sender renders in worker threads; reportlab's shared caches must not mix them up."""
    order, payment = sample_order()
    expected = render(order, payment)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: render(order, payment), range(40)))

    assert all(pdf == expected for pdf in results)


@pytest.mark.process
def test_bytes_do_not_depend_on_the_process() -> None:
    order, payment = sample_order()
    script = (
        "import sys; from datetime import datetime, UTC; "
        "from itinerabot.pdf import render_itinerary, sample_order; "
        "order, payment = sample_order(); "
        "sys.stdout.buffer.write(render_itinerary(order, payment, "
        "issued_at=datetime(2026, 11, 26, 10, 1, tzinfo=UTC)))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}

    child = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        check=True,
        timeout=60,
        env=env,
        cwd=Path(__file__).resolve().parents[1],  # `-c` puts the working directory on sys.path
    )

    assert child.stdout == render(order, payment)


def test_issue_date_is_the_creation_date_and_changes_the_bytes() -> None:
    order, payment = sample_order()
    later = ISSUED_AT + timedelta(days=1)

    pdf = render_itinerary(order, payment, issued_at=later)
    reader = pypdf.PdfReader(io.BytesIO(pdf))

    assert reader.metadata is not None
    assert str(reader.metadata["/CreationDate"]) == "D:20261127100100+00'00'"
    assert "Issued 27 Nov 2026 10:01 UTC" in squash(page_text(pdf))
    assert pdf != render(order, payment)


@pytest.mark.parametrize(
    ("page_size", "width", "height"), [("A4", 595.28, 841.89), ("Letter", 612.0, 792.0)]
)
def test_page_size(page_size: PageSize, width: float, height: float) -> None:
    order, payment = sample_order()

    reader = pypdf.PdfReader(io.BytesIO(render(order, payment, page_size=page_size)))

    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width), 2), round(float(box.height), 2)) == (width, height)


def test_qr_helper_encodes_the_reference() -> None:
    assert order_qr("IB-7K3Q9P").value == "IB-7K3Q9P"


def drawn_qr_modules(pdf: bytes) -> list[list[bool]]:
    """Rebuild the module grid from the filled rectangles the page draws for the QR code.

    The QR is the only group of `re` operators on the page (rules are lines, text is text); it
    draws one rectangle per horizontal run of dark modules.
    """
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    operations = ContentStream(reader.pages[0].get_contents(), reader).operations
    runs = [[float(v) for v in operands] for operands, op in operations if op == b"re"]
    assert runs, "no QR rectangles on the page"
    module = min(w for _, _, w, _ in runs)
    left = min(x for x, _, _, _ in runs)
    top = max(y for _, y, _, _ in runs)
    size = round((max(x + w for x, _, w, _ in runs) - left) / module)
    grid = [[False] * size for _ in range(size)]
    for x, y, w, _ in runs:
        row = round((top - y) / module)
        col = round((x - left) / module)
        for c in range(col, col + round(w / module)):
            grid[row][c] = True
    return grid


def test_page_draws_a_qr_code_of_the_reference() -> None:
    """An independent encoder (`qrcode`) must produce exactly the symbol drawn on the page."""
    order, payment = sample_order()
    drawn = drawn_qr_modules(render(order, payment))
    version = (len(drawn) - 17) // 4
    levels = (
        qrcode.ERROR_CORRECT_L,
        qrcode.ERROR_CORRECT_M,
        qrcode.ERROR_CORRECT_Q,
        qrcode.ERROR_CORRECT_H,
    )

    def symbol(level: int, mask: int) -> list[list[bool]]:
        code = qrcode.QRCode(version=version, error_correction=level, border=0, mask_pattern=mask)
        code.add_data(order.reference, optimize=0)
        code.make(fit=False)
        return [[bool(m) for m in row] for row in code.get_matrix()]

    assert len(drawn) == 17 + 4 * version
    assert any(drawn == symbol(level, mask) for level in levels for mask in range(8))


def test_render_helpers() -> None:
    order, _ = sample_order()
    outbound, back = order.itinerary.flights

    assert format_utc_offset(timedelta(hours=5, minutes=45)) == "UTC+05:45"
    assert format_utc_offset(timedelta(hours=-3, minutes=-30)) == "UTC-03:30"
    assert format_utc_offset(None) == "UTC+00:00"
    assert format_local_time(outbound.departure_aware) == "Thu 10 Dec 2026 10:55 (UTC+01:00)"
    assert format_duration(timedelta(hours=7, minutes=5)) == "7 h 05 min"
    assert format_duration(timedelta(minutes=45)) == "45 min"
    assert format_amount(Decimal("10.000000"), "USDC") == "10.00 USDC"
    assert format_amount(Decimal("10.1234"), "USDC") == "10.1234 USDC"
    assert format_amount(Decimal("10"), "USD") == "10.00 USD"
    assert country_name("de") == "Germany"
    assert country_name("XK") == "XK"
    assert day_change_note(outbound) is None
    assert day_change_note(back) == "Arrives the next day (local time)."


def test_day_change_across_the_date_line() -> None:
    order, _ = sample_order()
    outbound = order.itinerary.flights[0]
    # Auckland to Honolulu crosses the date line: an evening departure lands on the same local
    # date, earlier on the clock; a departure after midnight lands on the previous local date.
    akl = dataclasses.replace(outbound.origin, iata="AKL", country="NZ", tz="Pacific/Auckland")
    hnl = dataclasses.replace(outbound.origin, iata="HNL", country="US", tz="Pacific/Honolulu")
    flight = Flight(
        flight_number="NZ 10",
        origin=akl,
        destination=hnl,
        departure_local=datetime(2026, 12, 10, 19, 45),
        arrival_local=datetime(2026, 12, 10, 5, 35),
    )

    assert format_duration(flight.duration) == "8 h 50 min"
    assert day_change_note(flight) is None
    later = dataclasses.replace(flight, departure_local=datetime(2026, 12, 11, 0, 30))
    assert day_change_note(later) == "Arrives the previous day (local time)."
