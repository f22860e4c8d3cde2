"""Lay out one order as an itinerary PDF: flights, payment receipt, a QR code of the reference.

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
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from itinerabot.models import STARS_CURRENCY, Airport, Flight, Order, Payment, PaymentMethod

PageSize = Literal["A4", "Letter"]

NOT_A_TICKET: Final = (
    "This is an itinerary of the flights entered by the traveller. "
    "It is not an airline ticket, a booking or a reservation."
)

_PAGE_SIZES: Final[dict[str, tuple[float, float]]] = {"A4": A4, "Letter": LETTER}
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip

_REGULAR: Final = "Helvetica"
_BOLD: Final = "Helvetica-Bold"
_MONO: Final = "Courier"
_GREY: Final = (0.35, 0.35, 0.35)
_MARGIN: Final[float] = 18 * mm
_LABEL_WIDTH: Final[float] = 34 * mm
_QR_SIZE: Final[float] = 26 * mm


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


def country_name(code: str) -> str:
    """The English short name of an ISO 3166-1 alpha-2 code; the code itself when unknown."""
    return _COUNTRY_NAMES.get(code.upper(), code)


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


def itinerary_filename(order: Order) -> str:
    """The document's file name in the chat: `itinerary-IB-7K3Q9P.pdf`."""
    return f"itinerary-{order.reference}.pdf"


def order_qr(reference: str, size: float = _QR_SIZE) -> QrCode:
    """The vector QR code of an order reference, as drawn on the page (level M, 4-module border)."""
    return QrCode(reference, width=size, height=size, qrLevel="M", qrBorder=4)


# --- the page ---------------------------------------------------------------------------------


def render_itinerary(
    order: Order,
    payment: Payment | None,
    *,
    page_size: PageSize = "A4",
    issued_at: datetime,
) -> bytes:
    """Render the itinerary PDF of `order` and return its bytes.

    `payment` None renders an unpaid sample. `issued_at` is printed and used as the PDF creation
    date (naive means UTC). Text is drawn with canvas string operators, which never interpret
    markup, so whatever the traveller typed prints as typed; characters outside the built-in
    fonts' Latin range print as boxes rather than failing. Raises KeyError for an unknown
    `page_size`.
    """
    width, height = _PAGE_SIZES[page_size]
    buffer = io.BytesIO()
    # `invariant` on this canvas only (not rl_config.invariant, which is process-wide) fixes the
    # document id; the creation date is then set to `issued_at` below.
    canvas = Canvas(buffer, pagesize=(width, height), invariant=1, pageCompression=1)
    creation = _pdf_date(issued_at)
    canvas.setDateFormatter(lambda *_: creation)
    canvas.setTitle(f"Itinerary {_clean(order.reference)}")
    canvas.setAuthor("itinerabot")
    canvas.setCreator("itinerabot")
    canvas.setSubject("Flight itinerary (not a ticket)")

    page = _Page(canvas, width, height)
    _draw_header(page, order, issued_at)
    for number, flight in enumerate(order.itinerary.flights, start=1):
        _draw_flight(page, flight, number, len(order.itinerary.flights))
    _draw_payment(page, payment)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _draw_header(page: _Page, order: Order, issued_at: datetime) -> None:
    reference = _clean(order.reference)
    qr_x = page.width - _MARGIN - _QR_SIZE
    qr_y = page.y - _QR_SIZE + 4 * mm  # the QR's own quiet zone lines it up with the title
    order_qr(reference).drawOn(page.canvas, qr_x, qr_y)
    page.canvas.setFont(_MONO, 8)
    page.canvas.drawCentredString(qr_x + _QR_SIZE / 2, qr_y - 1 * mm, reference)

    text_width = qr_x - _MARGIN - 4 * mm
    page.text("Flight itinerary", _BOLD, 20, width=text_width, after=4)
    page.row("Order reference", reference, font=_BOLD, size=12, width=text_width)
    page.row("Issued", format_utc_timestamp(issued_at), width=text_width)
    page.y -= 1 * mm
    page.row(
        "Passenger",
        _clean(", ".join(order.itinerary.passengers)),
        font=_BOLD,
        size=13,
        width=text_width,
    )
    page.y = min(page.y, qr_y - 5 * mm)
    for sentence in NOT_A_TICKET.split(". "):
        page.text(sentence if sentence.endswith(".") else sentence + ".", _BOLD, 10)
    page.y -= 2
    page.rule()


def _draw_flight(page: _Page, flight: Flight, number: int, count: int) -> None:
    page.need(40 * mm)
    heading = f"Flight {number} of {count}  ·  {_clean(flight.flight_number)}"
    page.text(heading, _BOLD, 12, after=3)
    _draw_airport(page, "From", flight.origin)
    page.row("Departs", format_local_time(flight.departure_aware))
    page.y -= 1.5 * mm
    _draw_airport(page, "To", flight.destination)
    page.row("Arrives", format_local_time(flight.arrival_aware))
    note = day_change_note(flight)
    if note is not None:
        page.row("", note, font=_BOLD)
    page.y -= 1.5 * mm
    page.row("Duration", format_duration(flight.duration))
    page.rule()


def _draw_airport(page: _Page, label: str, airport: Airport) -> None:
    page.row(label, f"{_clean(airport.iata)}  {_clean(airport.name)}", font=_BOLD)
    page.row("", _clean(airport_place(airport)))


#: how the receipt names each method's payment reference and its provider's payment id
_REFERENCE_LABELS = {
    PaymentMethod.CARD: ("Stripe session", "Stripe payment"),
    PaymentMethod.USDC: ("Circle intent", "Circle payment"),
    PaymentMethod.STARS: ("Telegram charge", "Provider charge"),
}


def _draw_payment(page: _Page, payment: Payment | None) -> None:
    page.need(35 * mm)
    page.text("Payment receipt", _BOLD, 12, after=3)
    if payment is None:
        page.text("Unpaid sample: no payment has been recorded for this order.", _REGULAR, 10)
        return
    page.row("Method", payment_method_name(payment.method))
    page.row("Amount", _clean(format_amount(payment.amount, payment.currency)), font=_BOLD)
    page.row("Paid", format_utc_timestamp(payment.paid_at))
    reference, payment_id = _REFERENCE_LABELS[payment.method]
    page.row(reference, _clean(payment.provider_ref), font=_MONO)
    if payment.provider_payment_id:
        page.row(payment_id, _clean(payment.provider_payment_id), font=_MONO)
    if payment.tx_hash:
        page.row("Transaction hash", _clean(payment.tx_hash), font=_MONO, size=8)


class _Page:
    """A top-down cursor on the canvas that draws plain strings and wraps them to a width."""

    def __init__(self, canvas: Canvas, width: float, height: float) -> None:
        self.canvas = canvas
        self.width = width
        self.height = height
        self.y = height - _MARGIN

    @property
    def content_width(self) -> float:
        return self.width - 2 * _MARGIN

    def need(self, space: float) -> None:
        """Start a new page unless `space` points are left above the bottom margin."""
        if self.y - space < _MARGIN:
            self.canvas.showPage()
            self.y = self.height - _MARGIN

    def text(
        self, text: str, font: str, size: float, *, width: float | None = None, after: float = 0
    ) -> None:
        lines = _wrap(text, font, size, width or self.content_width)
        self._lines(_MARGIN, lines, font, size)
        self.y -= after

    def row(
        self,
        label: str,
        value: str,
        *,
        font: str = _REGULAR,
        size: float = 10,
        width: float | None = None,
    ) -> None:
        """A grey label in the left column and its value, wrapped, in the right one."""
        value_width = (width or self.content_width) - _LABEL_WIDTH
        lines = _wrap(value, font, size, value_width)
        self.need(len(lines) * size * 1.3)
        top = self.y
        if label:
            self.canvas.setFillColorRGB(*_GREY)
            self.canvas.setFont(_REGULAR, 9)
            self.canvas.drawString(_MARGIN, top - size, label)
            self.canvas.setFillColorRGB(0, 0, 0)
        self._lines(_MARGIN + _LABEL_WIDTH, lines, font, size)

    def rule(self) -> None:
        self.y -= 2 * mm
        self.canvas.setStrokeColorRGB(*_GREY)
        self.canvas.setLineWidth(0.5)
        self.canvas.line(_MARGIN, self.y, self.width - _MARGIN, self.y)
        self.y -= 4 * mm

    def _lines(self, x: float, lines: Sequence[str], font: str, size: float) -> None:
        self.canvas.setFont(font, size)
        for line in lines:
            self.y -= size * 1.3
            self.canvas.drawString(x, self.y + size * 0.3, line)


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Break at spaces, and inside a word only when the word alone is wider than `width`."""
    lines: list[str] = []
    for line in simpleSplit(text, font, size, width) or [""]:
        if stringWidth(line, font, size) <= width:
            lines.append(line)
            continue
        # One pass over the characters: the built-in fonts have no kerning, so widths add up.
        start, used = 0, 0.0
        for index, char in enumerate(line):
            char_width = stringWidth(char, font, size)
            if used + char_width > width and index > start:
                lines.append(line[start:index])
                start, used = index, 0.0
            used += char_width
        lines.append(line[start:])
    return lines


def _clean(text: str) -> str:
    """Replace unprintable characters (newlines, NULs, lone surrogates) by spaces."""
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _pdf_date(moment: datetime) -> str:
    return _as_utc(moment).strftime("D:%Y%m%d%H%M%S+00'00'")


_COUNTRY_NAMES: Final[dict[str, str]] = {
    "AE": "United Arab Emirates",
    "AR": "Argentina",
    "AT": "Austria",
    "AU": "Australia",
    "BA": "Bosnia and Herzegovina",
    "BD": "Bangladesh",
    "BE": "Belgium",
    "BG": "Bulgaria",
    "BH": "Bahrain",
    "BR": "Brazil",
    "CA": "Canada",
    "CH": "Switzerland",
    "CL": "Chile",
    "CN": "China",
    "CO": "Colombia",
    "CR": "Costa Rica",
    "CU": "Cuba",
    "CY": "Cyprus",
    "CZ": "Czechia",
    "DE": "Germany",
    "DK": "Denmark",
    "DO": "Dominican Republic",
    "DZ": "Algeria",
    "EC": "Ecuador",
    "EE": "Estonia",
    "EG": "Egypt",
    "ES": "Spain",
    "ET": "Ethiopia",
    "FI": "Finland",
    "FJ": "Fiji",
    "FR": "France",
    "GB": "United Kingdom",
    "GE": "Georgia",
    "GH": "Ghana",
    "GR": "Greece",
    "HK": "Hong Kong",
    "HR": "Croatia",
    "HU": "Hungary",
    "ID": "Indonesia",
    "IE": "Ireland",
    "IL": "Israel",
    "IN": "India",
    "IQ": "Iraq",
    "IR": "Iran",
    "IS": "Iceland",
    "IT": "Italy",
    "JM": "Jamaica",
    "JO": "Jordan",
    "JP": "Japan",
    "KE": "Kenya",
    "KH": "Cambodia",
    "KR": "South Korea",
    "KW": "Kuwait",
    "KZ": "Kazakhstan",
    "LB": "Lebanon",
    "LK": "Sri Lanka",
    "LT": "Lithuania",
    "LU": "Luxembourg",
    "LV": "Latvia",
    "MA": "Morocco",
    "MD": "Moldova",
    "ME": "Montenegro",
    "MK": "North Macedonia",
    "MT": "Malta",
    "MU": "Mauritius",
    "MV": "Maldives",
    "MX": "Mexico",
    "MY": "Malaysia",
    "NG": "Nigeria",
    "NL": "Netherlands",
    "NO": "Norway",
    "NP": "Nepal",
    "NZ": "New Zealand",
    "OM": "Oman",
    "PA": "Panama",
    "PE": "Peru",
    "PH": "Philippines",
    "PK": "Pakistan",
    "PL": "Poland",
    "PR": "Puerto Rico",
    "PT": "Portugal",
    "QA": "Qatar",
    "RO": "Romania",
    "RS": "Serbia",
    "RU": "Russia",
    "SA": "Saudi Arabia",
    "SC": "Seychelles",
    "SE": "Sweden",
    "SG": "Singapore",
    "SI": "Slovenia",
    "SK": "Slovakia",
    "SN": "Senegal",
    "TH": "Thailand",
    "TN": "Tunisia",
    "TR": "Türkiye",
    "TW": "Taiwan",
    "TZ": "Tanzania",
    "UA": "Ukraine",
    "US": "United States",
    "UY": "Uruguay",
    "UZ": "Uzbekistan",
    "VE": "Venezuela",
    "VN": "Vietnam",
    "ZA": "South Africa",
}
