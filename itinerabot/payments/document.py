"""The PDF of a stored paid order, ready to send: rendered off the trio thread, the same bytes
each time (the issue time is the payment's), with a caption in the chat's language (the PDF
itself stays in English: border officers read it)."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from itinerabot.errors import ItinerabotError
from itinerabot.i18n import Texts, english
from itinerabot.models import Order, Payment
from itinerabot.pdf.render import PageSize, itinerary_filename, render_itinerary
from itinerabot.store import Store, languages
from itinerabot.store import orders as order_rows

#: PDFs rendered at once: each holds a worker thread and some memory
RENDER_THREADS = 2
#: Telegram's limit on a document's caption, in UTF-16 code units
CAPTION_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class Document:
    content: bytes
    filename: str
    caption: str


class OrderNotPaid(ItinerabotError):
    """A PDF was asked for an order that is not paid (or not there): a bug upstream."""


#: renders the PDF of an order (by id) for sending; raises OrderNotPaid
DocumentRenderer = Callable[[int], Awaitable[Document]]


def _load_for_render(
    conn: sqlite3.Connection, order_id: int
) -> tuple[Order | None, Payment | None, Texts]:
    order = order_rows.get_order(conn, order_id)
    texts = languages.texts_of(conn, order.chat_id) if order else english()
    return order, order_rows.get_payment(conn, order_id), texts


def document_renderer(store: Store, page_size: PageSize) -> DocumentRenderer:
    """A `DocumentRenderer` reading orders from `store`."""
    limiter = trio.CapacityLimiter(RENDER_THREADS)

    async def render(order_id: int) -> Document:
        order, payment, t = await store.run(_load_for_render, order_id)
        if order is None or payment is None:
            # a PDF row for an order that is not paid: a bug upstream, not Telegram's doing
            raise OrderNotPaid(f"order {order_id} is not paid")
        content = await trio.to_thread.run_sync(
            lambda: render_itinerary(
                order, payment, page_size=page_size, issued_at=payment.paid_at
            ),
            limiter=limiter,
        )
        return Document(
            content=content,
            filename=itinerary_filename(order),
            caption=document_caption(t, order),
        )

    return render


def document_caption(t: Texts, order: Order) -> str:
    """The caption under the PDF: our reference, the first traveller and how many more (the PDF
    lists them all), within Telegram's limit: an over-long name is cut with an ellipsis."""
    first, *others = order.itinerary.passengers

    def caption(passenger: str) -> str:
        if not others:
            return t.gettext(
                "Flight itinerary {reference} for {passenger}. Not an airline ticket.",
                reference=order.reference,
                passenger=passenger,
            )
        return t.ngettext(
            "Flight itinerary {reference} for {passenger} and {count} more traveller. "
            "Not an airline ticket.",
            "Flight itinerary {reference} for {passenger} and {count} more travellers. "
            "Not an airline ticket.",
            len(others),
            reference=order.reference,
            passenger=passenger,
            count=len(others),
        )

    full = caption(first)
    over = _utf16_length(full) - CAPTION_LIMIT
    if over <= 0:
        return full
    return caption(_cut(first, _utf16_length(first) - over - 1) + "…")


def _utf16_length(text: str) -> int:
    """The length Telegram counts: a character beyond the BMP (an emoji) is two units."""
    return len(text.encode("utf-16-le")) // 2


def _cut(text: str, units: int) -> str:
    """The longest start of `text` at most `units` UTF-16 code units long."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > units:
            return text[:index]
    return text
