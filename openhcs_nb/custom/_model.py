"""A catalogue function whose implementation travels as Python source.

:class:`CustomFunction` is a :class:`~openhcs_nb.spec.Function` plus the
exact text that defines it: ``source`` (the ``def``, decorators stripped,
dedented) and ``imports`` (the import statements that source needs). In the
notebook its ``impl`` is the user's own function; on the server it is a
:class:`ShippedSource`, which only a sandbox may run.

Equality also compares the ``def`` text, so a changed body is a different
function even when the name and version did not change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from openhcs_nb.errors import ExecutionError
from openhcs_nb.spec import Function

#: Keyword arguments of ``@function`` and their defaults, in the order written.
DECORATOR_DEFAULTS: dict[str, object] = {
    "version": "1",
    "category": "custom",
    "input": "image",
    "output": "image",
    "side_outputs": (),
}


@dataclass(frozen=True)
class ShippedSource:
    """The server-side implementation of a custom function: text, never run here.

    ``module`` is the code that defines ``name`` (imports then the ``def``).
    Calling it outside a sandbox is refused; the worker hands it to
    :mod:`openhcs_nb.execution.sandbox` instead (``runner`` is that hand-off,
    set by the server's trust policy when the user is trusted).
    """

    module: str
    name: str
    runner: Any = None

    def __call__(self, stack: Any, **kwargs: Any) -> Any:
        """Run in the sandbox the trust policy armed this with.

        Raises
        ------
        ExecutionError
            Nothing armed this source: it is never executed in this process.
        """
        if self.runner is None:
            raise ExecutionError(
                f"custom function {self.name} runs only in the server's sandbox"
            )
        return self.runner(self.module, self.name, stack, kwargs)


@dataclass(frozen=True, eq=False)
class CustomFunction(Function):
    """A user's own function: a catalogue entry plus the source that defines it."""

    source: str = ""
    imports: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Function):
            return NotImplemented
        # Not ``imports``: read back from code, each function sees the merged
        # import block of the whole pipeline, which to_code writes again.
        return isinstance(other, CustomFunction) and (
            self.name,
            self.version,
            self.source,
        ) == (other.name, other.version, other.source)

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.source))

    def __repr__(self) -> str:
        return f"<openhcs custom function {self.name} v{self.version}>"

    def decorator(self) -> str:
        """The ``@function(...)`` line that re-declares this function's spec."""
        values = {
            "version": self.version,
            "category": self.category,
            "input": self.input,
            "output": self.output,
            "side_outputs": tuple(self.side_outputs),
        }
        parts = [
            f"{k}={_literal(v)}"
            for k, v in values.items()
            if v != DECORATOR_DEFAULTS[k]
        ]
        if self.help != docstring_help(self.source):
            parts.append(f"help={_literal(self.help)}")
        return "@function" + (f"({', '.join(parts)})" if parts else "")

    def module_code(self) -> str:
        """Imports and ``def``: what a sandbox compiles to get the function."""
        head = "\n".join(self.imports)
        return (head + "\n\n\n" if head else "") + self.source


def _literal(value: object) -> str:
    """A str or tuple of str as ruff would write it (double quotes)."""
    if isinstance(value, tuple):
        items = ", ".join(json.dumps(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    return json.dumps(value)


def docstring_help(source: str) -> str:
    """The help a function gets from its docstring: the first paragraph, one line."""
    import ast
    import inspect

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef):
        return ""
    doc = ast.get_docstring(node) or ""
    first = inspect.cleandoc(doc).split("\n\n")[0]
    return " ".join(first.split())
