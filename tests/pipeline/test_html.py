from __future__ import annotations

from html.parser import HTMLParser

from openhcs_nb.pipeline import Function, Pipeline, Step
from openhcs_nb.pipeline._html import pipeline_html, step_html

EVIL = '<script>alert("x")</script>'


class Tags(HTMLParser):
    """Collects start tags and text, to check structure without regexes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


def sample(catalogue) -> Pipeline:
    g, t = catalogue["gaussian_blur"], catalogue["threshold_otsu"]
    m = catalogue["measure_objects"]
    return Pipeline(
        "nuclei",
        [
            Step(
                {0: [(g, {"sigma": 1.5}), t], "GFP": g}, name="seg", group_by="channel"
            ),
            Step(m, name="measure", variable_components=["channel"]),
        ],
    )


def test_when_pipeline_is_shown_then_table_lists_steps_functions_and_grouping(
    catalogue,
):
    html = pipeline_html(sample(catalogue))
    tags = parse(html)
    text = "".join(tags.text)
    assert tags.tags.count("tr") == 3  # header + two steps
    assert {"table", "details", "summary", "pre", "code"} <= set(tags.tags)
    assert "gaussian_blur(sigma=1.5)" in text
    assert "channel=0" in text and "channel='GFP'" in text
    assert "group by: channel" in text and "stack: channel" in text
    assert "2 steps" in text
    assert 'pipeline = Pipeline(\n    name="nuclei",' in text  # the code view


def test_when_text_is_hostile_then_every_piece_is_escaped(catalogue):
    g, m = catalogue["gaussian_blur"], catalogue["measure_objects"]
    p = Pipeline(
        EVIL,
        [Step({EVIL: (m, {"prefix": EVIL}), "b": g}, name="s", group_by="channel")],
    )
    for html in (pipeline_html(p), step_html(p.steps[0]), p._repr_html_()):
        assert "<script" not in html
        assert "script" not in parse(html).tags
        assert "&lt;script&gt;" in html


def test_when_step_is_shown_then_its_code_is_the_step_expression(catalogue):
    step = sample(catalogue).steps[1]
    text = "".join(parse(step_html(step)).text)
    assert (
        'Step(name="measure", func=measure_objects, variable_components=["channel"])'
        in text
    )
    assert step._repr_html_() == step_html(step)


def test_when_pipeline_is_empty_then_table_says_so():
    assert "no steps" in pipeline_html(Pipeline("empty"))


def test_when_code_cannot_be_written_then_html_still_renders():
    odd = Function("not-an-identifier", "1", lambda s, **k: s, "odd", "x")
    html = pipeline_html(Pipeline("x", [Step(odd, name="s")]))
    assert "cannot write this as code" in html
    assert "not-an-identifier" in html
