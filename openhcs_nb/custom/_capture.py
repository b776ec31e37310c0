"""``@openhcs_nb.function``: a notebook function becomes a shippable catalogue entry.

The decorator takes the function's source (``inspect.getsource``, which
IPython makes work for cells; ``dill.source`` as a fallback), strips the
decorators, and works out the imports that source needs from the names it
reads: a module becomes ``import numpy as np``, an importable function or
type ``from scipy.ndimage import gaussian_filter``. Whatever else the body
depends on (a closure, a notebook variable, a helper defined in the notebook,
a lambda) cannot travel as source and is refused here, in one line that
names the variable. The text is then read back by the same reader the server
uses (:mod:`openhcs_nb.custom._read`), so what the notebook declares is what
the server will see.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import math
import re
import textwrap
import types
from collections.abc import Callable, Sequence
from typing import Any, overload

from openhcs_nb.custom._model import CustomFunction, docstring_help
from openhcs_nb.custom._read import CustomReader, is_constant
from openhcs_nb.errors import PipelineError
from openhcs_nb.spec import Kind

#: Line breaks as the parser counts them (not str.splitlines's wider set).
_LINES = re.compile(r"\r\n|\r|\n")


class ShippingError(PipelineError):
    """A function cannot travel as source; the message names the culprit."""

    code = "invalid_pipeline"


@overload
def function(fn: Callable[..., Any], /) -> CustomFunction: ...
@overload
def function(
    fn: None = None,
    /,
    *,
    version: str = "1",
    help: str | None = None,
    category: str = "custom",
    input: Kind = "image",
    output: Kind = "image",
    side_outputs: Sequence[str] = (),
) -> Callable[[Callable[..., Any]], CustomFunction]: ...


def function(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    version: str = "1",
    help: str | None = None,
    category: str = "custom",
    input: Kind = "image",
    output: Kind = "image",
    side_outputs: Sequence[str] = (),
) -> Any:
    """Declare an own function on an ``(n, y, x)`` stack, bare or with arguments.

    Parameters after the stack are declared like the built-ins'
    (``k: Annotated[float, Meta(ge=0, le=5, description="...")] = 1.0``);
    ``input``/``output`` are value kinds; ``help`` defaults to the docstring.

    Raises
    ------
    ShippingError
        The function uses a closure, a notebook variable or helper, is a
        lambda, or its source cannot be found.
    """

    def declare(target: Callable[..., Any]) -> CustomFunction:
        return _declare(
            target,
            version=version,
            help_text=help,
            category=category,
            input_kind=input,
            output_kind=output,
            side_outputs=tuple(side_outputs),
        )

    return declare if fn is None else declare(fn)


def _declare(
    fn: Callable[..., Any],
    *,
    version: str,
    help_text: str | None,
    category: str,
    input_kind: Kind,
    output_kind: Kind,
    side_outputs: tuple[str, ...],
) -> CustomFunction:
    source, node = _source(fn)
    imports = _imports(fn, node)
    declared = CustomFunction(
        name=fn.__name__,
        version=version,
        impl=fn,
        help=help_text or docstring_help(source),
        category=category,
        input=input_kind,
        output=output_kind,
        side_outputs=side_outputs,
        source=source,
        imports=imports,
    )
    _read_back(declared)
    return declared


def _source(fn: Callable[..., Any]) -> tuple[str, ast.FunctionDef]:
    """The dedented ``def`` of ``fn`` without its decorators, and its AST."""
    name = getattr(fn, "__name__", repr(fn))
    if not isinstance(fn, types.FunctionType):
        raise ShippingError(f"{name} is not a plain Python function; write a def")
    if name == "<lambda>":
        raise ShippingError("a lambda cannot be shipped as source; write a def")
    free = fn.__code__.co_freevars
    if free:
        raise ShippingError(
            f"{name} uses the variable {free[0]!r} of an enclosing function "
            "(a closure); make it a parameter"
        )
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        try:
            import dill.source

            text = dill.source.getsource(fn)
        except (OSError, TypeError, ImportError) as exc:
            raise ShippingError(
                f"the source of {name} cannot be found: {exc}"
            ) from None
    text = textwrap.dedent(text)
    tree = ast.parse(text)
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef) or node.name != name:
        raise ShippingError(f"{name} is not defined by a plain def statement")
    lines = _LINES.split(text)
    return "\n".join(lines[node.lineno - 1 : node.end_lineno]), node


def _read_names(node: ast.FunctionDef) -> list[str]:
    """Names the function reads from outside itself, in order of appearance."""
    parts: list[ast.AST] = [node.args, *node.body]
    if node.returns is not None:
        parts.append(node.returns)
    everything = [sub for part in parts for sub in ast.walk(part)]
    local = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
    for sub in everything:
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store | ast.Del):
            local.add(sub.id)
        elif isinstance(sub, ast.FunctionDef | ast.ClassDef):
            local.add(sub.name)
        elif isinstance(sub, ast.Import | ast.ImportFrom):
            local.update((a.asname or a.name.split(".")[0]) for a in sub.names)
    names: list[str] = []
    for sub in everything:
        if (
            isinstance(sub, ast.Name)
            and isinstance(sub.ctx, ast.Load)
            and sub.id not in local
            and sub.id not in names
        ):
            names.append(sub.id)
    return names


def _imports(fn: types.FunctionType, node: ast.FunctionDef) -> tuple[str, ...]:
    """The import statements that give the source every global it reads."""
    lines: set[str] = set()
    scope = fn.__globals__
    for name in _read_names(node):
        if name not in scope:
            continue  # a builtin, or a name only defined later (caught on run)
        lines.add(_import_for(name, scope[name]))
    return tuple(sorted(lines))


def _constant_line(name: str, value: object) -> str | None:
    """``NAME = <literal>`` when ``value`` is a plain constant, else None."""
    if not _is_plain(value):
        return None
    line = f"{name} = {value!r}"
    try:
        stmt = ast.parse(line).body[0]
    except SyntaxError:
        return None
    if not is_constant(stmt) or ast.literal_eval(stmt.value) != value:  # type: ignore[attr-defined]
        return None
    return ast.unparse(stmt)


def _is_plain(value: object, depth: int = 0) -> bool:
    if isinstance(value, bool | int | str | type(None)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, tuple) and depth < 3:
        return all(_is_plain(v, depth + 1) for v in value)
    return False


def _import_for(name: str, value: object) -> str:
    """The line that binds one global: an import, or a plain constant."""
    constant = _constant_line(name, value)
    if constant is not None:
        return constant
    if isinstance(value, types.ModuleType):
        module = value.__name__
        if module == name:
            return f"import {module}"
        if "." not in module and name == module:
            return f"import {module}"
        return f"import {module} as {name}"
    module = getattr(value, "__module__", None)
    attr = getattr(value, "__qualname__", getattr(value, "__name__", None))
    if (
        isinstance(module, str)
        and isinstance(attr, str)
        and module != "__main__"
        and "." not in attr
        and _importable(module, attr, value)
    ):
        return f"from {module} import {attr}" + ("" if attr == name else f" as {name}")
    kind = type(value).__name__
    if isinstance(value, CustomFunction):
        reason = "another custom function; call it from the pipeline as its own step"
    elif callable(value):
        reason = "a helper defined in the notebook; move it inside the function"
    else:
        reason = (
            "only numbers, strings, None and tuples of them can be shipped; "
            "pass it as a parameter"
        )
    raise ShippingError(f"the function reads the global {name!r} ({kind}): {reason}")


def _importable(module: str, attr: str, value: object) -> bool:
    try:
        return getattr(importlib.import_module(module), attr, None) is value
    except ImportError:
        return False


def _read_back(declared: CustomFunction) -> None:
    """Read the shipped text as the server will, and insist on the same spec."""
    from openhcs_nb.pipeline._ast_reader import Source

    code = declared.module_code().replace(
        declared.source, declared.decorator() + "\n" + declared.source, 1
    )
    tree = ast.parse(code)
    reader = CustomReader(code, Source(code).refuse)
    found = None
    for stmt in tree.body:
        found = reader.take(stmt) or found
    if found is None or found.params != declared.params:
        raise ShippingError(
            f"{declared.name}: the parameters read from its source differ from "
            "the function's own; annotate each parameter directly"
        )
