"""The itinerary PDF: `render_itinerary` lays out a paid order; `sample_order` and `sample_trip`
are demo orders."""

from itinerabot.pdf.render import NOT_A_TICKET, PageSize, itinerary_filename, render_itinerary
from itinerabot.pdf.sample import sample_order, sample_trip

__all__ = [
    "NOT_A_TICKET",
    "PageSize",
    "itinerary_filename",
    "render_itinerary",
    "sample_order",
    "sample_trip",
]
