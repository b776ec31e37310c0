"""Pipeline -> readable Python, already in ``ruff format`` style.

The code is the wire format (the server re-reads it with the safe loader) and
what users see in "to code" cells, so it must be byte-stable and look hand
written. Rather than shelling out to a formatter, a small layout engine mimics
ruff's (black's) rules for the few shapes we emit:

* a node is written flat when it fits in 88 columns at its indent, counting
  what follows it on the line (``,`` or a closing bracket);
* otherwise a call with several arguments first tries its arguments on one
  line of their own, then one per line with a trailing comma;
* a list, tuple or dict with several items goes one per line with a trailing
  comma (ruff never keeps a broken collection on one line);
* a single argument or item goes on a line of its own without a trailing
  comma, and may be split further.

Strings choose their quotes as ruff does (double unless that needs more
escapes) and escape only what must be escaped, so ruff leaves them alone.
Characters whose display width is uncertain (combining marks, zero-width and
format characters, separators, a few symbols Unicode 16 widened) are written
as escapes, so our column count equals ruff's; every other character was
checked against ruff 0.17 at the 88-column boundary.

The loader's limits (string length, number of steps...) still apply: a
pipeline built in Python beyond them generates code the loader refuses.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
import unicodedata
from dataclasses import dataclass

from openhcs_nb.custom._model import CustomFunction
from openhcs_nb.errors import PipelineError
from openhcs_nb.pipeline.catalogue import Function
from openhcs_nb.pipeline.model import Call, Chain, Pipeline, Step

LINE_LENGTH = 88
_INDENT = 4
_RESERVED = frozenset({"Pipeline", "Step"})
_IMPORTS = ("import ", "from ")


@dataclass(frozen=True)
class _Group:
    """A bracketed node: ``open`` items ``close``; ``call`` marks call parens."""

    open: str
    items: tuple[tuple[str, _Doc], ...]
    close: str
    call: bool = False


_Doc = str | _Group


def pipeline_to_code(p: Pipeline) -> str:
    """Python source that rebuilds ``p`` through :func:`load_pipeline`.

    Raises
    ------
    PipelineError
        A function name cannot be written as a Python identifier, or a value
        (e.g. a non-finite float) has no literal spelling.
    """
    names = sorted({fn.name for step in p.steps for fn in step.functions()})
    for name in names:
        _check_identifier(name)
    custom = _custom_functions(p)
    names = [n for n in names if n not in custom]
    classes = ["Pipeline", "Step"] if p.steps else ["Pipeline"]
    lines = [_import_line("openhcs_nb", classes + (["function"] if custom else []))]
    if names:
        lines.append(_import_line("openhcs_nb.functions", names))
    lines.append("")
    if custom:
        lines += _custom_blocks(list(custom.values()))
    steps = _list([_step_doc(s) for s in p.steps])
    doc = _call("Pipeline", [("name", _literal(p.name)), ("steps", steps)])
    _render(doc, 0, "pipeline = ", "", lines)
    return "\n".join(lines) + "\n"


def _custom_functions(p: Pipeline) -> dict[str, CustomFunction]:
    """The pipeline's own functions by name, in order of first use."""
    found: dict[str, CustomFunction] = {}
    for step in p.steps:
        for fn in step.functions():
            if not isinstance(fn, CustomFunction):
                continue
            if found.setdefault(fn.name, fn) != fn:
                raise PipelineError(
                    f"two different functions are both called {fn.name}", field="func"
                )
    return found


def _custom_blocks(functions: list[CustomFunction]) -> list[str]:
    """Their imports (merged, sorted) and each ``@function`` def, as ruff spaces them.

    Raises
    ------
    PipelineError
        Two functions bind one name to different imports.
    """
    lines = {line for fn in functions for line in fn.imports}
    # Imports first, then the constants the functions read (NAME = literal).
    imports = sorted(lines, key=lambda line: (not line.startswith(_IMPORTS), line))
    bound: dict[str, str] = {}
    for line in imports:
        stmt = ast.parse(line).body[0]
        names = (
            [a.asname or a.name.split(".")[0] for a in stmt.names]
            if isinstance(stmt, ast.Import | ast.ImportFrom)
            else [t.id for t in stmt.targets if isinstance(t, ast.Name)]  # type: ignore[attr-defined]
        )
        for name in names:
            if bound.setdefault(name, line) != line:
                raise PipelineError(
                    f"custom functions import {name!r} differently "
                    f"({bound[name]!r} and {line!r})",
                    field="func",
                )
    out = [*imports, ""] if imports else []
    for fn in functions:
        out += ["", fn.decorator(), *fn.source.splitlines(), "", ""]
    return out


def step_to_code(step: Step) -> str:
    """The ``Step(...)`` expression alone, as it appears inside a pipeline.

    Raises
    ------
    PipelineError
        As for :func:`pipeline_to_code`.
    """
    for fn in step.functions():
        _check_identifier(fn.name)
    out: list[str] = []
    _render(_step_doc(step), 0, "", "", out)
    return "\n".join(out)


def _step_doc(step: Step) -> _Group:
    args: list[tuple[str, _Doc]] = [
        ("name", _literal(step.name)),
        ("func", _pattern_doc(step)),
    ]
    if step.variable_components != ("site",):
        components = [_literal(c) for c in step.variable_components]
        args.append(("variable_components", _list(components)))
    if step.group_by is not None:
        args.append(("group_by", _literal(step.group_by)))
    return _call("Step", args)


def _pattern_doc(step: Step) -> _Doc:
    if not step.is_dict:
        return _chain_doc(step.chains[0][1])
    items = tuple((f"{_literal(k)}: ", _chain_doc(chain)) for k, chain in step.chains)
    return _Group("{", items, "}")


def _chain_doc(chain: Chain) -> _Doc:
    if len(chain) == 1:
        return _call_doc(chain[0])
    return _list([_call_doc(c) for c in chain])


def _call_doc(call: Call) -> _Doc:
    if not call.kwargs:
        return call.name
    kwargs = tuple((f"{_literal(k)}: ", _literal(v)) for k, v in call.kwargs)
    return _Group("(", (("", call.name), ("", _Group("{", kwargs, "}"))), ")")


def _call(name: str, kwargs: list[tuple[str, _Doc]]) -> _Group:
    return _Group(f"{name}(", tuple((f"{k}=", v) for k, v in kwargs), ")", call=True)


def _list(items: list[_Doc]) -> _Group:
    return _Group("[", tuple(("", d) for d in items), "]")


# -- layout -----------------------------------------------------------------


def _flat(doc: _Doc) -> str:
    if isinstance(doc, str):
        return doc
    return doc.open + ", ".join(p + _flat(d) for p, d in doc.items) + doc.close


def _render(doc: _Doc, indent: int, prefix: str, suffix: str, out: list[str]) -> None:
    """Append the lines of ``prefix doc suffix`` at ``indent`` to ``out``."""
    pad = " " * indent
    flat = pad + prefix + _flat(doc) + suffix
    if isinstance(doc, str) or not doc.items or _width(flat) <= LINE_LENGTH:
        out.append(flat)
        return
    inner = " " * (indent + _INDENT)
    out.append(pad + prefix + doc.open)
    if len(doc.items) == 1:
        item_prefix, item = doc.items[0]
        _render(item, indent + _INDENT, item_prefix, "", out)
    else:
        body = inner + ", ".join(p + _flat(d) for p, d in doc.items)
        if doc.call and _width(body) <= LINE_LENGTH:
            out.append(body)
        else:
            for item_prefix, item in doc.items:
                _render(item, indent + _INDENT, item_prefix, ",", out)
    out.append(pad + doc.close + suffix)


def _width(text: str) -> int:
    """Display columns as ruff counts them: East Asian wide characters take two."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _import_line(module: str, names: list[str]) -> str:
    names = sorted(names, key=_isort_key)
    flat = f"from {module} import {', '.join(names)}"
    if _width(flat) <= LINE_LENGTH:
        return flat
    body = "".join(f"\n{' ' * _INDENT}{n}," for n in names)
    return f"from {module} import ({body}\n)"


def _isort_key(name: str) -> tuple[int, list[tuple[int, int | str]], str]:
    """Ruff's isort order: CONSTANTS, Classes, the rest; digit runs as numbers."""
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    parts: list[tuple[int, int | str]] = [
        (0, int(run)) if run.isdigit() else (1, run)
        for run in re.findall(r"\d+|\D+", name.lower())
    ]
    return kind, parts, name


# -- literals ---------------------------------------------------------------


def _check_identifier(name: str) -> None:
    if (
        not name.isascii()
        or not name.isidentifier()
        or keyword.iskeyword(name)
        or name in _RESERVED
        or name.startswith("__")
    ):
        raise PipelineError(
            f"function name {name!r} cannot be written as a Python name", field="func"
        )


def _literal(value: object) -> str:
    """Ruff-stable source text for a literal value."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Function):
        return value.name
    raise PipelineError(f"cannot write {type(value).__name__} {value!r} as code")


def _float(value: float) -> str:
    if not math.isfinite(value):
        raise PipelineError(f"cannot write the non-finite float {value!r} as code")
    text = repr(value)
    # ruff drops the "+" of positive exponents: 1e+20 -> 1e20.
    return text.replace("e+", "e")


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string(value: str) -> str:
    """Quote like ruff: double quotes unless the text holds more ``"`` than ``'``."""
    quote = "'" if value.count('"') > value.count("'") else '"'
    parts: list[str] = []
    for char in value:
        if char == quote:
            parts.append("\\" + char)
        elif char in _ESCAPES:
            parts.append(_ESCAPES[char])
        elif char == " " or _readable(char):
            parts.append(char)
        else:
            parts.append(_escape(char))
    return quote + "".join(parts) + quote


# Characters whose width Unicode 16 changed to 2 (ruff uses that table; Python
# 3.11's unicodedata says 1): escaped, so both agree on every kept character.
_WIDTH_CHANGED = (
    (0x17A4, 0x17A4),
    (0x17D8, 0x17D8),
    (0x2630, 0x2637),
    (0x268A, 0x268F),
    (0x4DC0, 0x4DFF),
    (0x1D300, 0x1D376),
)


def _readable(char: str) -> bool:
    """Printable letters, digits, punctuation and symbols stay readable.

    Marks (combining, zero-width) and separators are escaped so that every
    kept character is one or two columns wide, which keeps the layout exact.
    """
    if not char.isprintable() or unicodedata.category(char)[0] not in "LNPS":
        return False
    code = ord(char)
    return not any(lo <= code <= hi for lo, hi in _WIDTH_CHANGED)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
