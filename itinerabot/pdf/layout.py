"""Flow lines of text onto pages: measured first, broken into pages, then drawn with a header
on each page that knows the page count ("Page 2 of 3").

Groups of lines (a flight, the receipt) move to the next page whole when they fit on one, so
a block is never split across a page break; a group taller than a page flows line by line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

REGULAR: Final = "Helvetica"
BOLD: Final = "Helvetica-Bold"
MONO: Final = "Courier"
GREY: Final = (0.35, 0.35, 0.35)
LEADING: Final = 1.3  # line height as a multiple of the font size

#: draws one line whose top edge is at the given height on the page
Draw = Callable[[Canvas, float], None]
#: draws the header of page `number` of `count` on the canvas, above the content's top
Header = Callable[[Canvas, int, int], None]


@dataclass(frozen=True, slots=True)
class Line:
    """A slice of the page `height` points tall; `draw` None leaves it blank."""

    height: float
    draw: Draw | None = None


class Flow:
    """Lines in reading order, `width` points wide from `left`, held in groups that stay on
    one page. Text is drawn with canvas string operators, which never read markup."""

    def __init__(self, left: float, width: float, label_width: float) -> None:
        self.left = left
        self.width = width
        self.label_width = label_width
        self.groups: list[list[Line]] = []
        self._open: list[Line] | None = None

    @contextmanager
    def together(self) -> Iterator[None]:
        """Keep the lines added inside the block on one page (when they fit on any page)."""
        if self._open is not None:  # nested: the outer group already keeps them together
            yield
            return
        self._open = []
        try:
            yield
        finally:
            group, self._open = self._open, None
            if group:
                self.groups.append(group)

    def pad_group(self, height: float) -> None:
        """Add blank space to the group being kept together until it is `height` tall.

        Raises RuntimeError outside `together()`."""
        if self._open is None:
            raise RuntimeError("pad_group() outside together()")
        self.space(max(0.0, height - sum(line.height for line in self._open)))

    def add(self, line: Line) -> None:
        if self._open is not None:
            self._open.append(line)
        else:
            self.groups.append([line])

    def space(self, height: float) -> None:
        self.add(Line(height))

    def text(
        self,
        text: str,
        font: str,
        size: float,
        *,
        width: float | None = None,
        grey: bool = False,
        indent: float = 0,
    ) -> None:
        """`text` wrapped to `width` (the whole flow by default), one line per wrapped line."""
        x = self.left + indent
        for line in wrap(text, font, size, (width or self.width) - indent):
            self.add(Line(size * LEADING, _string(x, line, font, size, grey)))

    def row(
        self,
        label: str,
        value: str,
        *,
        font: str = REGULAR,
        size: float = 10,
        width: float | None = None,
        label_width: float | None = None,
    ) -> None:
        """A grey label in the left column and its value, wrapped, in the right one."""
        column = self.label_width if label_width is None else label_width
        value_x = self.left + column
        lines = wrap(value, font, size, (width or self.width) - column)
        for index, line in enumerate(lines):
            draw = _string(value_x, line, font, size, grey=False)
            if index == 0 and label:
                draw = _labelled(self.left, label, size, draw)
            self.add(Line(size * LEADING, draw))

    def rule(self) -> None:
        """A thin grey line across the flow, with space above and below."""
        left, right = self.left, self.left + self.width

        def draw(canvas: Canvas, top: float) -> None:
            canvas.setStrokeColorRGB(*GREY)
            canvas.setLineWidth(0.5)
            canvas.line(left, top - 5.67, right, top - 5.67)

        self.add(Line(5.67 + 11.34, draw))  # 2 mm above the line, 4 mm below


def paginate(
    groups: Sequence[Sequence[Line]], top: float, bottom: float
) -> list[list[tuple[float, Draw]]]:
    """Place `groups` from `top` down to `bottom` on as many pages as they need: each page the
    drawings with the height of their line's top edge."""
    pages: list[list[tuple[float, Draw]]] = [[]]
    y = top
    room = top - bottom
    for group in groups:
        height = sum(line.height for line in group)
        if y - height < bottom and height <= room and y < top:
            pages.append([])
            y = top
        for line in group:
            if y - line.height < bottom and y < top:  # a group taller than a page flows on
                pages.append([])
                y = top
            if line.draw is None and y == top and len(pages) > 1:
                continue  # no blank space under the header of a new page
            if line.draw is not None:
                pages[-1].append((y, line.draw))
            y -= line.height
    return pages


def draw_pages(
    canvas: Canvas, pages: Sequence[Sequence[tuple[float, Draw]]], header: Header
) -> None:
    """Draw each page's header and lines, ending each page."""
    for number, page in enumerate(pages, start=1):
        header(canvas, number, len(pages))
        for top, draw in page:
            draw(canvas, top)
        canvas.showPage()


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
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


def _string(x: float, text: str, font: str, size: float, grey: bool) -> Draw:
    def draw(canvas: Canvas, top: float) -> None:
        canvas.setFont(font, size)
        if grey:
            canvas.setFillColorRGB(*GREY)
        canvas.drawString(x, top - size, text)
        if grey:
            canvas.setFillColorRGB(0, 0, 0)

    return draw


def _labelled(x: float, label: str, size: float, value: Draw) -> Draw:
    """`value` with `label` in grey on the same baseline, drawn first so it reads first."""

    def draw(canvas: Canvas, top: float) -> None:
        canvas.setFillColorRGB(*GREY)
        canvas.setFont(REGULAR, 9)
        canvas.drawString(x, top - size, label)
        canvas.setFillColorRGB(0, 0, 0)
        value(canvas, top)

    return draw
