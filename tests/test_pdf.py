"""The itinerary PDF read back with pypdf: every field, every traveller, flights by leg with their
connections, pages with headers, literal markup, same bytes, sizes, QR; and the chat caption."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import os
import re
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

from itinerabot.i18n import english
from itinerabot.models import Flight, Itinerary, Order, Payment, PaymentMethod
from itinerabot.payments.document import CAPTION_LIMIT, document_caption
from itinerabot.pdf import NOT_A_TICKET, PageSize, render_itinerary, sample_order, sample_trip
from itinerabot.pdf.countries import country_name
from itinerabot.pdf.render import (
    NOT_A_TICKET_SHORT,
    day_change_note,
    flight_label,
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


def page_texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


_HEADER_LINE = re.compile(r"Flight itinerary +· +Order IB-\w+|Page \d+ of \d+")


def body_text(pdf: bytes) -> str:
    """The text of every page without the header repeated at the top of each."""
    return "\n".join(
        line
        for text in page_texts(pdf)
        for line in text.splitlines()
        if not _HEADER_LINE.fullmatch(line) and line != NOT_A_TICKET_SHORT
    )


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
    text = body_text(pdf)
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
    assert country_name("AF") == "Afghanistan"  # beyond our own list: the CLDR's name
    assert country_name("CI") == "Côte d’Ivoire"
    assert country_name("QQ") == "QQ"
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


# --- real trips: several travellers, legs, connections, pages ------------------------------------

#: the sample trip around the world: each leg's heading and the connections inside it
TRIP_LEGS = [
    "Leg 1 · FRA → DOH → BKK",
    "Leg 2 · BKK → SIN → SYD",
    "Leg 3 · SYD → AKL",
    "Leg 4 · AKL → HNL → LAX → JFK",
    "Leg 5 · JFK → YYZ → LHR",
    "Leg 6 · LHR → DXB → DEL",
    "Leg 7 · DEL → IST → VIE",
    "Leg 8 · VIE → ZRH → FRA",
]
TRIP_CONNECTIONS = [
    "Connection in Doha (DOH): 2 h 35 min",
    "Connection in Singapore (SIN): 1 h 50 min",
    "Connection in Honolulu (HNL): 3 h 35 min",
    "Connection in Los Angeles (LAX): 1 h 40 min",
    "Connection in Toronto (YYZ): 3 h 15 min",
    "Connection in Dubai (DXB): 2 h 20 min",
    "Connection in Istanbul (IST): 1 h 35 min",
    "Connection in Zurich (ZRH): 1 h 05 min",
]


def test_a_sixteen_flight_trip_for_nine_prints_every_name_flight_airline_leg_and_layover() -> None:
    order, payment = sample_trip(16, 9)
    pdf = render(order, payment)
    text = squash(body_text(pdf))

    assert len(order.itinerary.passengers) == 9
    assert max(len(name) for name in order.itinerary.passengers) == 60
    missing = [name for name in order.itinerary.passengers if name not in text]
    assert missing == []
    assert "Passengers (9)" in text
    for number, flight in enumerate(order.itinerary.flights, start=1):
        assert flight.airline  # every flight of the sample names its airline
        assert f"Flight {number} of 16 — {flight.flight_number} · {flight.airline}" in text
    assert [heading for heading in TRIP_LEGS if heading in text] == TRIP_LEGS
    assert [stop for stop in TRIP_CONNECTIONS if stop in text] == TRIP_CONNECTIONS
    assert text.count("Connection in") == len(TRIP_CONNECTIONS)  # none between two legs
    # in order: leg 4's heading, then its flights with their two connections between them
    leg4 = text.index("Leg 4 ·")
    assert (
        leg4
        < text.index("NZ 10 · Air New Zealand")
        < text.index("Connection in Honolulu")
        < text.index("HA 2 · Hawaiian Airlines")
        < text.index("Connection in Los Angeles")
        < text.index("AA 4 · American Airlines")
        < text.index("Leg 5 ·")
    )
    assert "Auckland → Honolulu → Los Angeles → New York" in text
    assert "Travellers × price 9 × 10.00 USD = 90.00 USD" in text
    assert "Amount 90.00 USD" in text


@pytest.mark.parametrize("page_size", ["A4", "Letter"])
@pytest.mark.parametrize(("flights", "travellers"), [(16, 9), (16, 1), (9, 4)])
def test_every_page_has_the_header_and_no_flight_is_split(
    flights: int, travellers: int, page_size: PageSize
) -> None:
    order, payment = sample_trip(flights, travellers)
    pages = page_texts(render(order, payment, page_size))

    assert len(pages) > 1
    for number, text in enumerate(pages, start=1):
        assert f"Order {order.reference}" in text
        assert f"Page {number} of {len(pages)}" in text
        assert NOT_A_TICKET_SHORT in text
    for number, flight in enumerate(order.itinerary.flights, start=1):
        # the page with the flight's heading has its whole block, down to its duration
        heading = f"Flight {number} of {flights} — {flight.flight_number}"
        (page,) = [squash(text) for text in pages if heading in text]
        block = page[page.index(heading) :]
        arrival = format_local_time(flight.arrival_aware)
        assert f"Departs {format_local_time(flight.departure_aware)}" in block
        assert f"Arrives {arrival}" in block
        assert f"Duration {format_duration(flight.duration)}" in block
    # a leg's heading is on the page of its first flight, not left alone at a page's foot
    for index, leg in enumerate(order.itinerary.legs, start=1):
        first = f"Flight {order.itinerary.flights.index(leg[0]) + 1} of {flights} —"
        assert any(f"Leg {index} ·" in text and first in text for text in pages)
    # the receipt is whole on the last page
    assert "Payment receipt" in pages[-1] and payment.provider_ref in pages[-1]


def test_a_page_cannot_be_mistaken_for_a_ticket_and_no_booking_code_is_invented() -> None:
    order, payment = sample_trip(16, 9)
    text = squash(page_text(render(order, payment)))

    assert NOT_A_TICKET in text
    assert f"Order reference {order.reference}" in text
    assert "Our own order number for this document; airlines do not know it." in text
    for invented in ("PNR", "booking reference", "booking code", "confirmation", "e-ticket"):
        assert invented.casefold() not in text.casefold()


def leg(*hops: tuple[str, str, str, datetime, int]) -> tuple[Flight, ...]:
    """Flights from `(number, origin, destination, departure local, block minutes)`."""
    order, _ = sample_trip(16, 1)
    airports = {a.iata: a for f in order.itinerary.flights for a in (f.origin, f.destination)}
    flights = []
    for number, origin, destination, departs, minutes in hops:
        draft = Flight(number, airports[origin], airports[destination], departs, departs)
        arrives = (draft.departure_utc + timedelta(minutes=minutes)).astimezone(
            draft.arrival_aware.tzinfo
        )
        flights.append(dataclasses.replace(draft, arrival_local=arrives.replace(tzinfo=None)))
    return tuple(flights)


def test_a_return_trip_with_connections_for_two_reads_outbound_and_return() -> None:
    order, payment = sample_order()
    itinerary = Itinerary(
        passengers=("JANE DOE", "JOHN DOE"),
        legs=(
            leg(
                ("QR 68", "FRA", "DOH", datetime(2026, 12, 10, 10, 15), 365),
                ("QR 836", "DOH", "BKK", datetime(2026, 12, 10, 20, 55), 400),
            ),
            leg(
                ("QR 833", "BKK", "DOH", datetime(2026, 12, 24, 19, 50), 415),
                ("QR 67", "DOH", "FRA", datetime(2026, 12, 25, 0, 55), 390),
            ),
        ),
    )
    outbound, back = itinerary.legs
    itinerary = Itinerary(
        passengers=itinerary.passengers,
        legs=(outbound, (dataclasses.replace(back[0], airline="Qatar Airways"), back[1])),
    )
    order = dataclasses.replace(order, itinerary=itinerary, price=Decimal("20.00"), quantity=2)
    payment = dataclasses.replace(payment, amount=Decimal("20.00"))
    text = squash(page_text(render(order, payment)))

    assert "Passengers (2) 1. JANE DOE 2. JOHN DOE" in text
    assert text.index("Outbound · FRA → DOH → BKK") < text.index("Return · BKK → DOH → FRA")
    assert "Connection in Doha (DOH): 2 h 35 min" in text
    assert "Connection in Doha (DOH): 2 h 10 min" in text
    # the airline's name where it is known, the bare number where it is not
    assert "Flight 3 of 4 — QR 833 · Qatar Airways" in text
    assert "Flight 4 of 4 — QR 67 From" in text
    assert "Travellers × price 2 × 10.00 USD = 20.00 USD" in text
    assert "Amount 20.00 USD" in text


def test_a_one_leg_trip_is_the_journey() -> None:
    order, payment = sample_trip(2, 1)
    text = squash(page_text(render(order, payment)))

    assert "Journey · FRA → DOH → BKK" in text
    assert "Frankfurt am Main → Doha → Bangkok" in text
    assert "Leg 1" not in text and "Outbound" not in text
    assert "Passenger MARIA-ALEJANDRA" in text and "Passengers" not in text
    assert "Travellers × price" not in text  # one traveller: the amount says it all


def test_per_traveller_price_in_usdc_and_whole_stars_for_several() -> None:
    order, _ = sample_trip(4, 3)
    usdc = dataclasses.replace(usdc_payment(), amount=Decimal("30.000000"))
    stars = Payment(
        method=PaymentMethod.STARS,
        amount=Decimal("750"),
        currency="XTR",
        provider_ref="stxWhqM5gN6sZpT8oEe3fQk1Lr4Yc9bJ2uAv7Dx0HiR",
        paid_at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
    )

    usdc_text = squash(page_text(render(order, usdc)))
    stars_text = squash(page_text(render(order, stars)))

    assert "Travellers × price 3 × 10.00 USDC = 30.00 USDC" in usdc_text
    assert "Amount 30.00 USDC" in usdc_text
    # Stars are priced by the invoice: what was paid, with no per-traveller sum in dollars
    assert "Amount 750 Telegram Stars (XTR)" in stars_text
    assert "×" not in stars_text and "USD" not in stars_text


def test_hostile_names_and_airlines_print_literally_and_wrap() -> None:
    order, payment = sample_trip(3, 1)
    long_word = "Q" * 180
    passengers = ("<b>JANE</b> & DOE", f"ANNA {long_word} &amp; <para>")
    airline = f"<font size=40>Evil</font> & Co {long_word}"
    first, *rest = order.itinerary.legs[0]
    legs = ((dataclasses.replace(first, airline=airline), *rest), *order.itinerary.legs[1:])
    itinerary = Itinerary(passengers=passengers, legs=legs)
    pdf = render(dataclasses.replace(order, itinerary=itinerary), payment)
    text = body_text(pdf)

    assert "<b>JANE</b> & DOE" in text
    assert "&amp; <para>" in text
    assert "<font size=40>Evil</font> & Co" in text
    # the long word is broken across lines to stay on the page, and nothing of it is lost
    assert all(long_word not in line for line in text.splitlines())
    assert "".join(text.split()).count(long_word) == 2
    assert "Flight 1 of 3 —" in text  # the heading still there, above the wrapped airline


def test_an_order_stored_before_trips_still_renders() -> None:
    """Orders stored as `{"passenger", "flights"}` read as one passenger, a leg per flight."""
    stored = json.loads(
        """{"passenger": "Maria Schneider", "flights": [
        {"flight_number": "LH 400",
         "origin": {"iata": "FRA", "name": "Frankfurt am Main International Airport",
                    "city": "Frankfurt am Main", "country": "DE", "tz": "Europe/Berlin"},
         "destination": {"iata": "JFK", "name": "John F Kennedy International Airport",
                         "city": "New York", "country": "US", "tz": "America/New_York"},
         "departure_local": "2026-12-10T10:55", "arrival_local": "2026-12-10T13:50"},
        {"flight_number": "LH 401",
         "origin": {"iata": "JFK", "name": "John F Kennedy International Airport",
                    "city": "New York", "country": "US", "tz": "America/New_York"},
         "destination": {"iata": "FRA", "name": "Frankfurt am Main International Airport",
                         "city": "Frankfurt am Main", "country": "DE", "tz": "Europe/Berlin"},
         "departure_local": "2026-12-20T17:45", "arrival_local": "2026-12-21T07:35"}]}"""
    )
    order, payment = sample_order()
    order = dataclasses.replace(order, itinerary=Itinerary.from_dict(stored))
    text = squash(page_text(render(order, payment)))

    for field in (
        "Passenger Maria Schneider",
        "Outbound · FRA → JFK",
        "Flight 1 of 2 — LH 400 From FRA",
        "Return · JFK → FRA",
        "Flight 2 of 2 — LH 401 From JFK",
        "Mon 21 Dec 2026 07:35 (UTC+01:00)",
        "Amount 10.00 USD",
        "Page 1 of 1",
    ):
        assert field in text
    assert "Connection" not in text and "Travellers × price" not in text


def test_the_largest_trip_stays_within_the_size_budget() -> None:
    order, payment = sample_trip(16, 9)

    assert len(render(order, payment)) <= 150 * 1024
    assert len(render(order, payment, "Letter")) <= 150 * 1024


def test_flight_label_names_the_airline_when_known() -> None:
    order, _ = sample_order()
    flight = order.itinerary.flights[0]

    assert flight_label(flight) == "LH 400"
    assert flight_label(dataclasses.replace(flight, airline="Lufthansa")) == "LH 400 · Lufthansa"
    assert flight_label(dataclasses.replace(flight, airline=" \n")) == "LH 400"


def test_sample_trip_is_a_valid_trip() -> None:
    """The sample keeps the trip rules: connections leave where the flight before landed, 30 min
    to 24 h later; each leg starts after the one before ends."""
    order, payment = sample_trip(16, 9)
    legs = order.itinerary.legs

    assert [len(leg) for leg in legs] == [2, 2, 1, 3, 2, 2, 2, 2]
    for flights in legs:
        for arrived, departing in itertools.pairwise(flights):
            assert departing.origin == arrived.destination
            assert timedelta(minutes=30) <= departing.departure_utc - arrived.arrival_utc
            assert departing.departure_utc - arrived.arrival_utc <= timedelta(hours=24)
    for before, after in itertools.pairwise(legs):
        assert after[0].departure_utc - before[-1].arrival_utc > timedelta(hours=24)
    assert (order.quantity, order.price, payment.amount) == (9, Decimal("90.00"), Decimal("90.00"))
    assert [len(sample_trip(n, 1)[0].itinerary.flights) for n in (1, 4, 16)] == [1, 4, 16]
    with pytest.raises(ValueError):
        sample_trip(17, 1)
    with pytest.raises(ValueError):
        sample_trip(1, 10)


# --- the caption under the PDF in the chat ------------------------------------------------------


def test_caption_names_the_traveller_or_the_first_and_how_many_more() -> None:
    t = english()
    one, _ = sample_order()
    two = with_passengers(one, "JANE DOE", "JOHN DOE")
    nine, _ = sample_trip(1, 9)

    assert document_caption(t, one) == (
        "Flight itinerary IB-7K3Q9P for Maria Schneider. Not an airline ticket."
    )
    assert document_caption(t, two) == (
        "Flight itinerary IB-7K3Q9P for JANE DOE and 1 more traveller. Not an airline ticket."
    )
    assert document_caption(t, nine) == (
        f"Flight itinerary {nine.reference} for {nine.itinerary.passengers[0]} "
        "and 8 more travellers. Not an airline ticket."
    )


def test_caption_fits_telegrams_limit_with_a_huge_name() -> None:
    order, _ = sample_order()
    huge = with_passengers(order, "😀" * 600 + "W" * 600, "JOHN DOE")

    caption = document_caption(english(), huge)

    units = len(caption.encode("utf-16-le")) // 2
    assert CAPTION_LIMIT - 1 <= units <= CAPTION_LIMIT  # cut between two halves of an emoji
    assert caption.startswith("Flight itinerary IB-7K3Q9P for 😀😀")
    assert caption.endswith("… and 1 more traveller. Not an airline ticket.")


def with_passengers(order: Order, *passengers: str) -> Order:
    itinerary = Itinerary(passengers=passengers, legs=order.itinerary.legs)
    return dataclasses.replace(order, itinerary=itinerary)
