"""The AST-walking core of the safe loaders: parse with limits, read literals.

Pipeline code arrives from the network, so it is never executed: it is parsed
with :mod:`ast` and the few accepted node kinds are turned into values here,
by hand. Everything else is refused with a :class:`PipelineCodeError` that
names the construct and points at it.

Positions are ``(line, column)``, both 1-based, columns counted in characters
(as editors show them), not in the UTF-8 bytes :mod:`ast` reports.

The limits below bound the work done on hostile input. The size limit is
checked before :func:`ast.parse`, because parsing a huge text is itself the
attack; the parser's own recursion limits surface as refusals too.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn

from openhcs_nb.errors import PipelineCodeError, PipelineError

MAX_CODE_BYTES = 256 * 1024
MAX_NODES = 20_000
MAX_DEPTH = 20
MAX_STRING = 4096
MAX_ITEMS = 1000
MAX_STEPS = 200
MAX_INT = 2**53

_LINE_BREAK = re.compile(r"\r\n|\r|\n")

_OPERATORS: dict[type, str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.MatMult: "@",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.Not: "not",
    ast.Invert: "~",
    ast.USub: "-",
    ast.UAdd: "+",
}

# Expression kinds that are never accepted, with the reason shown to the user.
_REFUSED: dict[str, str] = {
    "Subscript": "subscripts (x[...]) are not allowed",
    "Lambda": "lambda expressions are not allowed",
    "ListComp": "comprehensions are not allowed",
    "SetComp": "comprehensions are not allowed",
    "DictComp": "comprehensions are not allowed",
    "GeneratorExp": "generator expressions are not allowed",
    "JoinedStr": "f-strings are not allowed",
    "FormattedValue": "f-strings are not allowed",
    "NamedExpr": "assignment expressions (:=) are not allowed",
    "Starred": "starred expressions (*x) are not allowed",
    "Await": "await is not allowed",
    "Yield": "yield is not allowed",
    "YieldFrom": "yield is not allowed",
    "BoolOp": "'and' / 'or' are not allowed",
    "Compare": "comparisons are not allowed",
    "IfExp": "conditional expressions (a if c else b) are not allowed",
    "Set": "set literals are not allowed (use a list)",
    "Slice": "slices are not allowed",
}


def show(name: str) -> str:
    """Quote a name; non-ASCII is escaped so homoglyphs are visible."""
    return repr(name) if name.isascii() else ascii(name)


class Source:
    """The code text, kept to turn AST byte offsets into character columns."""

    def __init__(self, code: str) -> None:
        self.code = code
        self._lines: list[str] | None = None

    def position(self, node: ast.AST) -> tuple[int, int]:
        """1-based line and character column of ``node``."""
        line = getattr(node, "lineno", 1) or 1
        offset = getattr(node, "col_offset", 0) or 0
        if self._lines is None:
            self._lines = _LINE_BREAK.split(self.code)
        text = self._lines[line - 1] if line <= len(self._lines) else ""
        prefix = text.encode("utf-8", "surrogatepass")[:offset]
        return line, len(prefix.decode("utf-8", "ignore")) + 1

    def refuse(self, node: ast.AST | None, reason: str) -> NoReturn:
        """Raise the refusal for ``node`` (``None``: the start of the code)."""
        line, col = self.position(node) if node is not None else (1, 1)
        raise PipelineCodeError(reason, line, col)


def parse(code: object) -> tuple[Source, ast.Module]:
    """Parse ``code`` within the size, node and parser-depth limits.

    Raises
    ------
    PipelineCodeError
        The code is not a str, is too large, is not valid Python, is nested
        too deeply for the parser, or has too many syntax nodes.
    """
    if not isinstance(code, str):
        raise PipelineCodeError(
            f"pipeline code must be str, got {type(code).__name__}", 1, 1
        )
    # Every character is at least one byte: only encode text that might fit.
    too_big = len(code) > MAX_CODE_BYTES or (
        len(code.encode("utf-8", "surrogatepass")) > MAX_CODE_BYTES
    )
    if too_big:
        raise PipelineCodeError(
            f"pipeline code is larger than {MAX_CODE_BYTES // 1024} KiB", 1, 1
        )
    code = code.removeprefix("\ufeff")  # a byte-order mark from a saved file
    try:
        tree = ast.parse(code, mode="exec")
    except SyntaxError as exc:
        line, col = exc.lineno or 1, max(exc.offset or 1, 1)
        raise PipelineCodeError(f"syntax error: {exc.msg}", line, col) from None
    except (RecursionError, MemoryError):
        raise PipelineCodeError("code is nested too deeply to parse", 1, 1) from None
    except ValueError as exc:  # e.g. null bytes on some Python versions
        raise PipelineCodeError(f"syntax error: {exc}", 1, 1) from None
    source = Source(code)
    for count, _node in enumerate(ast.walk(tree)):
        if count >= MAX_NODES:
            source.refuse(None, f"code has more than {MAX_NODES} syntax nodes")
    return source, tree


@dataclass(frozen=True)
class Builder:
    """A callable name the loader accepts, such as ``Pipeline`` or ``Step``.

    ``build(reader, call, depth)`` reads the call's arguments through the
    reader and returns the value.
    """

    name: str
    build: Callable[[Reader, ast.Call, int], object]

    def __repr__(self) -> str:
        return self.name


Arguments = dict[str, tuple[object, ast.expr]]
AttributeHook = Callable[["Reader", ast.Attribute, int], object]


class Reader:
    """Turns accepted expression nodes into values; refuses everything else.

    ``names`` maps the names bound so far (imports, and in the OpenHCS layer,
    step variables) to values; a :class:`Builder` value makes a name callable.
    ``attribute`` lets the OpenHCS layer accept its two enums.
    """

    def __init__(
        self,
        source: Source,
        names: Mapping[str, object],
        *,
        attribute: AttributeHook | None = None,
        unknown_name: str = "name {name} is not an imported catalogue function",
        callables: str = "Pipeline(...) and Step(...)",
    ) -> None:
        self.source = source
        self.names = dict(names)
        self._attribute = attribute
        self._unknown_name = unknown_name
        self._callable_names = callables

    def refuse(self, node: ast.AST | None, reason: str) -> NoReturn:
        """Raise a :class:`PipelineCodeError` located at ``node``."""
        self.source.refuse(node, reason)

    def check_name(self, name: str, node: ast.AST) -> None:
        """Refuse double-underscore names wherever they appear."""
        if name.startswith("__"):
            self.refuse(node, f"dunder name {show(name)} is not allowed")

    def value(self, node: ast.expr, depth: int = 0) -> object:
        """The value of an accepted expression.

        Raises
        ------
        PipelineCodeError
            The expression, or part of it, is not accepted.
        """
        if depth > MAX_DEPTH:
            self.refuse(node, f"expression is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Constant):
            return self._constant(node, node.value)
        if isinstance(node, ast.UnaryOp):
            return self._signed(node)
        if isinstance(node, ast.List | ast.Tuple):
            items = [self.value(e, depth + 1) for e in self._items(node, node.elts)]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict):
            return self._dict(node, depth)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        if isinstance(node, ast.Attribute):
            if self._attribute is not None:
                return self._attribute(self, node, depth)
            self.refuse_attribute(node)
        if isinstance(node, ast.BinOp):
            op = _OPERATORS.get(type(node.op), "?")
            self.refuse(node, f"operator '{op}' is not allowed (write the value)")
        reason = _REFUSED.get(type(node).__name__)
        self.refuse(node, reason or f"{type(node).__name__} is not allowed")

    def refuse_attribute(self, node: ast.Attribute) -> NoReturn:
        """Refuse ``x.attr`` (the default for every attribute)."""
        self.refuse(node, f"attribute access (.{node.attr}) is not allowed")

    def arguments(
        self,
        call: ast.Call,
        depth: int,
        *,
        what: str,
        positional: tuple[str, ...],
        allowed: tuple[str, ...],
    ) -> Arguments:
        """Read a call's arguments as ``{name: (value, node)}`` in source order."""
        out: Arguments = {}
        for i, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred):
                self.refuse(arg, "starred arguments (*x) are not allowed")
            if i >= len(positional):
                self.refuse(
                    arg,
                    f"{what} takes at most {len(positional)} positional "
                    f"argument(s) ({', '.join(positional)}); use keywords",
                )
            out[positional[i]] = (self.value(arg, depth + 1), arg)
        for kw in call.keywords:
            if kw.arg is None:
                self.refuse(kw, "keyword unpacking (**x) is not allowed")
            self.check_name(kw.arg, kw)
            if kw.arg not in allowed:
                self.refuse(
                    kw,
                    f"{what} has no argument {show(kw.arg)} "
                    f"(expected {', '.join(allowed)})",
                )
            if kw.arg in out:
                self.refuse(kw, f"{what} got argument {show(kw.arg)} twice")
            out[kw.arg] = (self.value(kw.value, depth + 1), kw.value)
        return out

    def construct(
        self, call: ast.Call, factory: Callable[..., object], args: Arguments
    ) -> object:
        """Call ``factory(**args)``; a :class:`PipelineError` points at its cause."""
        try:
            return factory(**{name: value for name, (value, _) in args.items()})
        except PipelineError as exc:
            self.refuse(_culprit(exc, args, call), str(exc))

    # -- node kinds --------------------------------------------------------

    def _constant(self, node: ast.AST, value: object) -> object:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            if abs(value) >= MAX_INT:
                self.refuse(node, "integer is out of range (|x| must be < 2**53)")
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                self.refuse(node, "float literal is not finite")
            return value
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                self.refuse(node, f"string is longer than {MAX_STRING} characters")
            return value
        if isinstance(value, bytes):
            self.refuse(node, "bytes literals are not allowed")
        if isinstance(value, complex):
            self.refuse(node, "complex numbers are not allowed")
        self.refuse(node, f"the literal {value!r} is not allowed")

    def _signed(self, node: ast.UnaryOp) -> object:
        op = _OPERATORS.get(type(node.op), "?")
        operand = node.operand
        if (
            isinstance(node.op, ast.USub | ast.UAdd)
            and isinstance(operand, ast.Constant)
            and isinstance(operand.value, int | float)
            and not isinstance(operand.value, bool)
        ):
            value = operand.value
            return self._constant(node, -value if op == "-" else value)
        if op in ("-", "+"):
            self.refuse(node, f"unary '{op}' is only allowed before a number")
        self.refuse(node, f"operator '{op}' is not allowed")

    def _items(self, node: ast.AST, items: list[ast.expr]) -> list[ast.expr]:
        if len(items) > MAX_ITEMS:
            self.refuse(node, f"{len(items)} items in one literal; at most {MAX_ITEMS}")
        return items

    def _dict(self, node: ast.Dict, depth: int) -> dict[object, object]:
        out: dict[object, object] = {}
        for key_node, value_node in zip(
            node.keys, self._items(node, node.values), strict=True
        ):
            if key_node is None:
                self.refuse(value_node, "dict unpacking (**x) is not allowed")
            key = self.value(key_node, depth + 1)
            if isinstance(key, bool) or not isinstance(key, str | int):
                self.refuse(
                    key_node,
                    f"dict keys must be str or int literals, got {type(key).__name__}",
                )
            if key in out:
                self.refuse(key_node, f"duplicate dict key {key!r}")
            out[key] = self.value(value_node, depth + 1)
        return out

    def _name(self, node: ast.Name) -> object:
        self.check_name(node.id, node)
        if node.id not in self.names:
            self.refuse(node, self._unknown_name.format(name=show(node.id)))
        return self.names[node.id]

    def _call(self, node: ast.Call, depth: int) -> object:
        func = node.func
        if not isinstance(func, ast.Name):
            self.value(func, depth + 1)  # refuses, unless a hook accepts it
            self.refuse(func, f"only {self._callable_names} can be called")
        self.check_name(func.id, func)
        target = self.names.get(func.id)
        if isinstance(target, Builder):
            return target.build(self, node, depth)
        if target is not None:
            self.refuse(
                func,
                f"{show(func.id)} cannot be called here; write the function "
                "itself, or (function, {kwargs}), in func=",
            )
        self.refuse(
            func,
            f"calls to {show(func.id)} are not allowed (only {self._callable_names})",
        )


def _culprit(exc: PipelineError, args: Arguments, call: ast.Call) -> ast.AST:
    """The node a validation error is about: the argument, a kwarg key, or the call."""
    if exc.field in args:
        return args[exc.field][1]
    func = args.get("func")
    if func is None:
        return call
    keys = [
        key
        for node in ast.walk(func[1])
        if isinstance(node, ast.Dict)
        for key in node.keys
        if isinstance(key, ast.Constant) and key.value == exc.field
    ]
    return keys[0] if len(keys) == 1 else func[1]
