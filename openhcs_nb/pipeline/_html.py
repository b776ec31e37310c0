"""Notebook display of steps, pipelines and the function catalogue.

Every piece of text that comes from the pipeline (names, channel keys, string
parameters) or from a server's catalogue is HTML-escaped: it may come from
someone else. Help text is shown whole and wraps; a biologist reads it to pick
a function, so it is never cut to a column width.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from html import escape
from typing import Any

from openhcs_nb.errors import PipelineError
from openhcs_nb.pipeline.codegen import pipeline_to_code, step_to_code
from openhcs_nb.pipeline.model import Call, Chain, Pipeline, Step

_STYLE = (
    "border-collapse:collapse;font-family:var(--jp-code-font-family,monospace);"
    "font-size:12px"
)
_CELL = "border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top"
_HEADER = ("#", "step", "functions", "grouping")


def pipeline_html(p: Pipeline) -> str:
    """A table of ``p``'s steps and a collapsible view of its code."""
    count = f"{len(p.steps)} step{'' if len(p.steps) == 1 else 's'}"
    caption = f"pipeline <b>{escape(p.name)}</b> &middot; {count}"
    rows = [_row(step, str(i)) for i, step in enumerate(p.steps)]
    return _table(caption, rows) + _code_view(lambda: pipeline_to_code(p))


def step_html(s: Step) -> str:
    """A one-row table for ``s`` and a collapsible view of its code."""
    caption = f"step <b>{escape(s.name)}</b>"
    return _table(caption, [_row(s, "")]) + _code_view(lambda: step_to_code(s))


#: Help cells wrap at word boundaries, or anywhere for a long identifier.
_WRAP = "white-space:normal;overflow-wrap:anywhere;max-width:60em"


def catalogue_html(functions: Iterable[Any]) -> str:
    """A table of catalogue functions (name, category, full help), for a notebook.

    Takes anything with ``name``, ``category`` and ``help``: the built-in
    :class:`~openhcs_nb.spec.Function` entries or a server's ``FunctionInfo``.
    """
    rows = [
        "<tr>"
        f'<td style="{_CELL}"><code>{escape(fn.name)}</code></td>'
        f'<td style="{_CELL}">{escape(fn.category)}</td>'
        f'<td style="{_CELL};{_WRAP}">{escape(fn.help)}</td>'
        "</tr>"
        for fn in functions
    ]
    head = "".join(
        f'<th style="{_CELL}">{h}</th>'
        for h in ("function", "category", "what it does")
    )
    count = f"{len(rows)} function{'' if len(rows) == 1 else 's'}"
    return (
        f'<table class="openhcs-catalogue" style="{_STYLE}">'
        f'<caption style="text-align:left">catalogue &middot; {count}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _table(caption: str, rows: list[str]) -> str:
    head = "".join(f'<th style="{_CELL}">{h}</th>' for h in _HEADER)
    body = "".join(rows) or (
        f'<tr><td style="{_CELL}" colspan="4"><i>no steps</i></td></tr>'
    )
    return (
        f'<div class="openhcs-pipeline"><table style="{_STYLE}">'
        f'<caption style="text-align:left">{caption}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _row(step: Step, index: str) -> str:
    if step.is_dict:
        group = escape(step.group_by or "")
        lines = [
            f"<code>{group}={escape(repr(key))}</code>: {_chain(chain)}"
            for key, chain in step.chains
        ]
        functions = "<br>".join(lines)
    else:
        functions = _chain(step.chains[0][1])
    grouping = "stack: " + escape(", ".join(step.variable_components))
    if step.group_by is not None:
        grouping += f"<br>group by: {escape(step.group_by)}"
    cells = (escape(index), f"<b>{escape(step.name)}</b>", functions, grouping)
    return "<tr>" + "".join(f'<td style="{_CELL}">{c}</td>' for c in cells) + "</tr>"


def _chain(chain: Chain) -> str:
    return " &rarr; ".join(_call(call) for call in chain)


def _call(call: Call) -> str:
    params = ", ".join(f"{k}={v!r}" for k, v in call.kwargs)
    text = f"{call.name}({params})" if params else call.name
    return f"<code>{escape(text)}</code>"


def _code_view(make_code: Callable[[], str]) -> str:
    try:
        code = make_code()
    except PipelineError as exc:
        code = f"# cannot write this as code: {exc}"
    return (
        "<details><summary>code</summary>"
        f"<pre><code>{escape(code)}</code></pre></details></div>"
    )
