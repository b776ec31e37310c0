"""The catalogue table shows every function's whole help text, wrapping."""

from __future__ import annotations

from html.parser import HTMLParser

from openhcs_nb.functions import builtin_catalogue
from openhcs_nb.pipeline._html import catalogue_html


class Cells(HTMLParser):
    """Text of each ``<td>`` and the style it carries."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str]] = []
        self._open = False

    def handle_starttag(self, tag, attrs):
        if tag == "td":
            self._open = True
            self.cells.append((dict(attrs).get("style", ""), ""))

    def handle_data(self, data):
        if self._open:
            style, text = self.cells[-1]
            self.cells[-1] = (style, text + data)

    def handle_endtag(self, tag):
        if tag == "td":
            self._open = False


def test_when_catalogue_is_shown_then_every_help_text_is_whole_and_wraps():
    catalogue = builtin_catalogue()
    parser = Cells()
    parser.feed(catalogue_html(catalogue.values()))
    helps = parser.cells[2::3]
    assert [text for _, text in helps] == [fn.help for fn in catalogue.values()]
    assert max(len(fn.help) for fn in catalogue.values()) > 100  # would be cut
    assert all("white-space:normal" in style for style, _ in helps)


def test_when_help_has_markup_then_it_is_escaped():
    class Entry:
        name, category, help = "evil", "x", '<script>alert("x")</script>'

    html = catalogue_html([Entry()])
    assert "<script>" not in html and "&lt;script&gt;" in html
