"""The builder's "to code": a new cell right below the builder, or a fallback.

In JupyterLab and Notebook 7 the front end (``static/builder_code.js``)
inserts a code cell below the builder's own cell at once, through the
notebook model its widget manager holds. ``shell.set_next_input`` cannot do
that: it only acts on the next execute request, below whatever cell runs
next. Where the front end has no notebook model (VS Code, Colab, or no view
at all) the kernel falls back to ``set_next_input`` and the code is shown in
the builder with a Copy button.

The code assigns the pipeline to the variable the user already has for it
(found by identity in the user namespace), so running the new cell updates
that variable rather than a fresh ``pipeline``.
"""

from __future__ import annotations

import html
import keyword
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as widgets
import traitlets

STATIC = Path(__file__).parent / "static"
#: The variable generated code assigns when the pipeline has no name yet.
DEFAULT_VARIABLE = "pipeline"
_ASSIGNMENT = f"{DEFAULT_VARIABLE} = "


def variable_of(obj: object, namespace: Mapping[str, Any] | None) -> str | None:
    """The public name bound to ``obj`` in ``namespace`` (the first), or None."""
    if obj is None or not namespace:
        return None
    for name, value in namespace.items():
        if value is obj and is_variable(name) and not name.startswith("_"):
            return name
    return None


def is_variable(name: str) -> bool:
    """Whether ``name`` can be assigned to (an identifier, not a keyword)."""
    return name.isidentifier() and not keyword.iskeyword(name)


def assign_to(code: str, variable: str) -> str:
    """Pipeline code with its ``pipeline = Pipeline(...)`` assigning ``variable``.

    Raises
    ------
    ValueError
        ``variable`` is not a Python identifier.
    """
    if not is_variable(variable):
        raise ValueError(f"{variable!r} is not a Python variable name")
    lines = code.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(_ASSIGNMENT):
            lines[i] = f"{variable} = " + line[len(_ASSIGNMENT) :]
            break
    return "\n".join(lines)


class CodeCell(anywidget.AnyWidget):
    """Inserts code below the builder's cell; shows it where that is impossible."""

    _esm = STATIC / "builder_code.js"
    can_insert = traitlets.Bool(False).tag(sync=True)
    code = traitlets.Unicode("").tag(sync=True)
    show_code = traitlets.Bool(False).tag(sync=True)

    def __init__(self, on_reply: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self._on_reply = on_reply
        self.on_msg(self._reply)

    def insert(self, code: str, shell: Any) -> str:
        """Put ``code`` in a new cell; returns how ("inserted", "next input", ...)."""
        self.code = code
        if self.can_insert:
            self.show_code = False
            self.send({"kind": "insert", "code": code})
            return "inserting"
        self.show_code = True
        if shell is None:
            return "shown"
        shell.set_next_input(code)
        return "next input"

    def _reply(self, _widget: Any, content: Any, _buffers: Any) -> None:
        kind = content.get("kind") if isinstance(content, dict) else None
        if kind == "unavailable":
            self.can_insert = False
            self.show_code = True
        if kind and self._on_reply is not None:
            self._on_reply(str(kind))


def _ipython() -> Any:
    from IPython import get_ipython

    return get_ipython()


class ToCode:
    """The "to code" half of the builder: variable, insertion and its note.

    ``shell`` is the IPython shell (default: the running one, if any);
    ``given`` the pipeline object the builder was handed, whose variable the
    code assigns unless ``variable`` names one.
    """

    def __init__(
        self, given: object = None, variable: str | None = None, shell: Any = None
    ) -> None:
        self._shell = shell
        self._given = given
        self._variable = variable or variable_of(given, self._namespace())
        self.note = widgets.HTML()
        self.cell = CodeCell(on_reply=self._reply)

    @property
    def shell(self) -> Any:
        """The IPython shell the code goes to, or None outside IPython."""
        return self._shell if self._shell is not None else _ipython()

    @property
    def variable(self) -> str:
        """The variable the code assigns the pipeline to."""
        if self._variable is None:
            self._variable = variable_of(self._given, self._namespace())
        return self._variable or DEFAULT_VARIABLE

    def send(self, code: str, shell: Any = None) -> str:
        """Put pipeline ``code`` in a new cell; returns the code as sent.

        Returns the code with its assignment renamed to :attr:`variable`.
        """
        code = assign_to(code, self.variable)
        shell = shell if shell is not None else self.shell
        how = self.cell.insert(code, shell)
        if how == "next input":
            self.note.value = _FALLBACK
        elif how == "shown":
            self.note.value = "<i>not running in IPython: copy the code below</i>"
        return code

    def _namespace(self) -> Mapping[str, Any] | None:
        return getattr(self.shell, "user_ns", None)

    def _reply(self, kind: str) -> None:
        if kind == "inserted":
            var = html.escape(self.variable)
            self.note.value = (
                f"<i>the code is in a new cell below, assigning <code>{var}</code>:"
                " run it to keep this pipeline</i>"
            )
        elif kind == "unavailable":
            if self.shell is not None:
                self.shell.set_next_input(self.cell.code)
            self.note.value = _FALLBACK


_FALLBACK = (
    "<i>this front end cannot add a cell from a widget: copy the code below "
    "(it also appears after the next cell you run)</i>"
)
