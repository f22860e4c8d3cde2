"""Lay out one order as an itinerary PDF: the travellers, the flights leg by leg with their
connections, the payment receipt, and a QR code of our reference.

Pure and synchronous (the caller runs it in a thread): reportlab's canvas, built-in fonts, no
images, and the same input always gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final, Literal

from reportlab.graphics.barcode.qr import QrCode
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from itinerabot.models import (
    STARS_CURRENCY,
    Airport,
    Flight,
    Itinerary,
    Order,
    Payment,
    PaymentMethod,
    TripShape,
    layover,
    stops,
)
from itinerabot.pdf.countries import country_name
from itinerabot.pdf.layout import (
    BOLD,
    GREY,
    LEADING,
    MONO,
    REGULAR,
    Flow,
    Header,
    Line,
    draw_pages,
    paginate,
)

PageSize = Literal["A4", "Letter"]

NOT_A_TICKET: Final = (
    "This is an itinerary of the flights entered by the traveller. "
    "It is not an airline ticket, a booking or a reservation."
)
#: what the header of every page says the document is, so a page printed alone says it too
NOT_A_TICKET_SHORT: Final = (
    "Itinerary of the flights entered by the traveller: not a ticket, not a reservation."
)
#: under our reference: it is ours, no airline's (we never invent one of theirs)
_OUR_REFERENCE: Final = "Our own order number for this document; airlines do not know it."

_PAGE_SIZES: Final[dict[str, tuple[float, float]]] = {"A4": A4, "Letter": LETTER}
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip

_MARGIN: Final[float] = 18 * mm
_HEADER_HEIGHT: Final[float] = 9 * LEADING + 8 * LEADING + 6 * mm  # two lines and a rule
_LABEL_WIDTH: Final[float] = 34 * mm
_QR_SIZE: Final[float] = 26 * mm
_NUMBER_WIDTH: Final[float] = 6 * mm

# --- text helpers (pure, exported for the chat side and the tests) -----------------------------


def format_utc_offset(offset: timedelta | None) -> str:
    """`UTC+01:00`, `UTC-05:00`, `UTC+05:45`; a missing offset counts as UTC."""
    minutes = int((offset or timedelta()).total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


def format_local_time(moment: datetime) -> str:
    """An airport's wall time with its offset: `Thu 10 Dec 2026 10:55 (UTC+01:00)`.

    English names are spelled out here rather than taken from `strftime`, which follows the locale.
    """
    return (
        f"{_WEEKDAYS[moment.weekday()]} {moment.day} {_MONTHS[moment.month - 1]} {moment.year} "
        f"{moment.hour:02d}:{moment.minute:02d} ({format_utc_offset(moment.utcoffset())})"
    )


def format_utc_timestamp(moment: datetime) -> str:
    """A record time in UTC: `10 Dec 2026 09:12 UTC`. A naive datetime is taken to be UTC."""
    utc = _as_utc(moment)
    return f"{utc.day} {_MONTHS[utc.month - 1]} {utc.year} {utc.hour:02d}:{utc.minute:02d} UTC"


def format_duration(duration: timedelta) -> str:
    """Block time: `7 h 05 min`, `45 min`."""
    minutes = round(duration.total_seconds() / 60)
    sign = "-" if minutes < 0 else ""
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours} h {mins:02d} min" if hours else f"{sign}{mins} min"


def day_change_note(flight: Flight) -> str | None:
    """A note when the local arrival date is not the departure date, else None."""
    days = (flight.arrival_local.date() - flight.departure_local.date()).days
    if days == 0:
        return None
    if days == 1:
        return "Arrives the next day (local time)."
    if days == -1:
        return "Arrives the previous day (local time)."
    return f"Arrives {abs(days)} days {'later' if days > 0 else 'earlier'} (local time)."


def format_amount(amount: Decimal, currency: str) -> str:
    """`10.00 USD`; digits beyond cents (USDC has six) are kept only when they are not zero;
    Telegram Stars are whole: `500 Telegram Stars (XTR)`."""
    if currency.upper() == STARS_CURRENCY:
        return f"{amount:.0f} Telegram Stars ({STARS_CURRENCY})"
    cents = amount.quantize(Decimal("0.01"))
    shown = cents if cents == amount else amount.normalize()
    return f"{shown:f} {currency}"


def airport_place(airport: Airport) -> str:
    """`Frankfurt am Main, Germany`."""
    return f"{airport.city}, {country_name(airport.country)}"


def payment_method_name(method: PaymentMethod) -> str:
    names = {
        PaymentMethod.CARD: "Card",
        PaymentMethod.USDC: "USDC",
        PaymentMethod.STARS: "Telegram Stars",
    }
    return names[method]


def flight_label(flight: Flight) -> str:
    """The flight number with its airline's name when known: `LH 400 · Lufthansa`, `LH 400`."""
    number = _clean(flight.flight_number)
    airline = _clean(flight.airline or "")
    return f"{number} · {airline}" if airline else number


def leg_title(itinerary: Itinerary, index: int) -> str:
    """What leg `index` is called: the whole `Journey`; `Outbound` and `Return`; `Leg 3`."""
    if len(itinerary.legs) == 1:
        return "Journey"
    if itinerary.shape is TripShape.RETURN:
        return ("Outbound", "Return")[index]
    return f"Leg {index + 1}"


def leg_route(leg: Sequence[Flight]) -> str:
    """The airports of a leg in order: `FRA → DOH → BKK`."""
    return " → ".join(_clean(airport.iata) for airport in stops(leg))


def leg_cities(leg: Sequence[Flight]) -> str:
    """The cities of a leg in order: `Frankfurt am Main → Doha → Bangkok`."""
    return " → ".join(_clean(airport.city) for airport in stops(leg))


def connection_note(arrived: Flight, departing: Flight) -> str:
    """The time on the ground between two flights of a leg:
    `Connection in Doha (DOH): 2 h 35 min`."""
    airport = departing.origin
    waited = format_duration(layover(arrived, departing))
    return f"Connection in {_clean(airport.city)} ({_clean(airport.iata)}): {waited}"


def price_breakdown(quantity: int, unit: Decimal, total: Decimal, payment: Payment) -> str:
    """The price per traveller and the total, in the payment's currency: `2 × 10.00 USD = 20.00
    USD` (USDC is paid one for one against a USD price)."""
    each = format_amount(unit, payment.currency)
    return f"{quantity} × {each} = {format_amount(total, payment.currency)}"


def itinerary_filename(order: Order) -> str:
    """The document's file name in the chat: `itinerary-IB-7K3Q9P.pdf`."""
    return f"itinerary-{order.reference}.pdf"


def order_qr(reference: str, size: float = _QR_SIZE) -> QrCode:
    """The vector QR code of an order reference, as drawn on the page (level M, 4-module border)."""
    return QrCode(reference, width=size, height=size, qrLevel="M", qrBorder=4)


# --- the document ----------------------------------------------------------------------------


def render_itinerary(
    order: Order,
    payment: Payment | None,
    *,
    page_size: PageSize = "A4",
    issued_at: datetime,
) -> bytes:
    """Render the itinerary PDF of `order` and return its bytes.

    `payment` None renders an unpaid sample. `issued_at` is printed and used as the PDF creation
    date (naive means UTC). As many pages as the trip needs, each under a header with the order
    reference and "Page n of N"; a flight is never split across two pages. Text is drawn with
    canvas string operators, which never interpret markup, so whatever the traveller typed
    prints as typed; characters outside the built-in fonts' Latin range print as boxes rather
    than failing. Raises KeyError for an unknown `page_size`.
    """
    width, height = _PAGE_SIZES[page_size]
    reference = _clean(order.reference)
    flow = Flow(_MARGIN, width - 2 * _MARGIN, _LABEL_WIDTH)
    _add_title(flow, reference, issued_at)
    _add_passengers(flow, order.itinerary.passengers)
    _add_honesty(flow)
    _add_journey(flow, order.itinerary)
    _add_payment(flow, order, payment)
    pages = paginate(flow.groups, top=height - _MARGIN - _HEADER_HEIGHT, bottom=_MARGIN)

    buffer = io.BytesIO()
    # `invariant` on this canvas only (not rl_config.invariant, which is process-wide) fixes the
    # document id; the creation date is then set to `issued_at` below.
    canvas = Canvas(buffer, pagesize=(width, height), invariant=1, pageCompression=1)
    creation = _pdf_date(issued_at)
    canvas.setDateFormatter(lambda *_: creation)
    canvas.setTitle(f"Itinerary {reference}")
    canvas.setAuthor("itinerabot")
    canvas.setCreator("itinerabot")
    canvas.setSubject("Flight itinerary (not a ticket)")
    draw_pages(canvas, pages, _page_header(reference, width, height))
    canvas.save()
    return buffer.getvalue()


def _page_header(reference: str, width: float, height: float) -> Header:
    """The lines above every page's content: whose document this is, which page, and what it
    is not (a page printed alone must still say so)."""
    top = height - _MARGIN

    def draw(canvas: Canvas, number: int, count: int) -> None:
        canvas.setFont(BOLD, 9)
        canvas.drawString(_MARGIN, top - 9, f"Flight itinerary  ·  Order {reference}")
        canvas.setFont(REGULAR, 9)
        canvas.drawRightString(width - _MARGIN, top - 9, f"Page {number} of {count}")
        canvas.setFillColorRGB(*GREY)
        canvas.setFont(REGULAR, 8)
        canvas.drawString(_MARGIN, top - 9 * LEADING - 8, NOT_A_TICKET_SHORT)
        canvas.setFillColorRGB(0, 0, 0)
        canvas.setStrokeColorRGB(*GREY)
        canvas.setLineWidth(0.5)
        rule = top - _HEADER_HEIGHT + 4 * mm
        canvas.line(_MARGIN, rule, width - _MARGIN, rule)

    return draw


def _add_title(flow: Flow, reference: str, issued_at: datetime) -> None:
    qr_x = flow.left + flow.width - _QR_SIZE

    def draw_qr(canvas: Canvas, top: float) -> None:
        qr_y = top - _QR_SIZE + 4 * mm  # the QR's own quiet zone lines it up with the title
        order_qr(reference).drawOn(canvas, qr_x, qr_y)
        canvas.setFont(MONO, 8)
        canvas.drawCentredString(qr_x + _QR_SIZE / 2, qr_y - 1 * mm, reference)

    text_width = qr_x - flow.left - 4 * mm
    with flow.together():
        flow.add(Line(0, draw_qr))
        flow.text("Flight itinerary", BOLD, 20, width=text_width)
        flow.space(4)
        flow.row("Order reference", reference, font=BOLD, size=12, width=text_width)
        flow.text(_OUR_REFERENCE, REGULAR, 8, width=text_width, grey=True, indent=_LABEL_WIDTH)
        flow.space(2)
        flow.row("Issued", format_utc_timestamp(issued_at), width=text_width)
        flow.pad_group(_QR_SIZE + 1 * mm)  # as tall as the QR code and its caption
    flow.space(1 * mm)


def _add_passengers(flow: Flow, passengers: Sequence[str]) -> None:
    """Every traveller's name on a line of its own, across the whole width so that a passport
    name of 60 capitals is not broken; numbered when there are several."""
    several = len(passengers) > 1
    with flow.together():
        flow.text(
            f"Passengers ({len(passengers)})" if several else "Passenger", REGULAR, 9, grey=True
        )
        flow.space(2)
        for number, passenger in enumerate(passengers, start=1):
            label = f"{number}." if several else ""
            gutter = _NUMBER_WIDTH if several else 0
            flow.row(label, _clean(passenger), font=BOLD, size=12, label_width=gutter)
            flow.space(1)


def _add_honesty(flow: Flow) -> None:
    flow.space(2 * mm)
    with flow.together():
        for sentence in NOT_A_TICKET.split(". "):
            flow.text(sentence if sentence.endswith(".") else sentence + ".", BOLD, 10)
    flow.space(2)
    flow.rule()


def _add_journey(flow: Flow, itinerary: Itinerary) -> None:
    count = len(itinerary.flights)
    number = 0
    for index, leg in enumerate(itinerary.legs):
        for position, flight in enumerate(leg):
            number += 1
            # a leg's heading, or the connection before a flight, stays with that flight
            with flow.together():
                if position == 0:
                    _add_leg_heading(flow, itinerary, index)
                else:
                    flow.space(1.5 * mm)
                    flow.text(connection_note(leg[position - 1], flight), BOLD, 10, grey=True)
                    flow.space(2.5 * mm)
                _add_flight(flow, flight, number, count)
        flow.rule()


def _add_leg_heading(flow: Flow, itinerary: Itinerary, index: int) -> None:
    leg = itinerary.legs[index]
    flow.text(f"{leg_title(itinerary, index)}  ·  {leg_route(leg)}", BOLD, 14)
    flow.text(leg_cities(leg), REGULAR, 9, grey=True)
    flow.space(3 * mm)


def _add_flight(flow: Flow, flight: Flight, number: int, count: int) -> None:
    flow.text(f"Flight {number} of {count}  —  {flight_label(flight)}", BOLD, 12)
    flow.space(3)
    _add_airport(flow, "From", flight.origin)
    flow.row("Departs", format_local_time(flight.departure_aware))
    flow.space(1.5 * mm)
    _add_airport(flow, "To", flight.destination)
    flow.row("Arrives", format_local_time(flight.arrival_aware))
    note = day_change_note(flight)
    if note is not None:
        flow.row("", note, font=BOLD)
    flow.space(1.5 * mm)
    flow.row("Duration", format_duration(flight.duration))


def _add_airport(flow: Flow, label: str, airport: Airport) -> None:
    flow.row(label, f"{_clean(airport.iata)}  {_clean(airport.name)}", font=BOLD)
    flow.row("", _clean(airport_place(airport)))


#: how the receipt names each method's payment reference and its provider's payment id
_REFERENCE_LABELS = {
    PaymentMethod.CARD: ("Stripe session", "Stripe payment"),
    PaymentMethod.USDC: ("Circle intent", "Circle payment"),
    PaymentMethod.STARS: ("Telegram charge", "Provider charge"),
}


def _add_payment(flow: Flow, order: Order, payment: Payment | None) -> None:
    with flow.together():
        flow.text("Payment receipt", BOLD, 12)
        flow.space(3)
        if payment is None:
            flow.text("Unpaid sample: no payment has been recorded for this order.", REGULAR, 10)
            return
        flow.row("Method", payment_method_name(payment.method))
        # Stars are priced by the invoice, not per traveller: the amount is what was paid
        if order.quantity > 1 and payment.method is not PaymentMethod.STARS:
            breakdown = price_breakdown(order.quantity, order.unit_price, order.price, payment)
            flow.row("Travellers × price", _clean(breakdown))
        flow.row("Amount", _clean(format_amount(payment.amount, payment.currency)), font=BOLD)
        flow.row("Paid", format_utc_timestamp(payment.paid_at))
        reference, payment_id = _REFERENCE_LABELS[payment.method]
        flow.row(reference, _clean(payment.provider_ref), font=MONO)
        if payment.provider_payment_id:
            flow.row(payment_id, _clean(payment.provider_payment_id), font=MONO)
        if payment.tx_hash:
            flow.row("Transaction hash", _clean(payment.tx_hash), font=MONO, size=8)


def _clean(text: str) -> str:
    """Replace unprintable characters (newlines, NULs, lone surrogates) by spaces."""
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _pdf_date(moment: datetime) -> str:
    return _as_utc(moment).strftime("D:%Y%m%d%H%M%S+00'00'")
