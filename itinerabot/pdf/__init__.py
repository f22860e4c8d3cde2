"""The itinerary PDF: `render_itinerary` lays out a paid order; `sample_order` is a demo order."""

from itinerabot.pdf.render import NOT_A_TICKET, PageSize, itinerary_filename, render_itinerary
from itinerabot.pdf.sample import sample_order

__all__ = ["NOT_A_TICKET", "PageSize", "itinerary_filename", "render_itinerary", "sample_order"]
