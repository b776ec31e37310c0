"""Reading custom function definitions from pipeline code, without running them.

The safe loader hands this module the statements it does not know when the
code declares an own function (a top-level ``def`` decorated ``@function``):
plain ``import`` statements and the decorated ``def``. Nothing is compiled or
executed. The spec (kinds, version, help) is read from the decorator's
literal arguments; each parameter's type, range and help from its
annotation, evaluated by a tiny interpreter that knows only ``int``,
``float``, ``bool``, ``str``, ``typing.Annotated``, ``typing.Literal`` and
``msgspec.Meta`` with literal arguments. The result is the same
:class:`~openhcs_nb.spec.Param` records the built-ins have, so the server
validates arguments and the builder shows widgets before any custom code runs.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, NoReturn

import msgspec

from openhcs_nb.custom._model import (
    DECORATOR_DEFAULTS,
    CustomFunction,
    ShippedSource,
    docstring_help,
)
from openhcs_nb.spec import Param, param_from_annotation

Refuse = Callable[[ast.AST | None, str], NoReturn]
ImplFor = Callable[[str, str], Callable[..., Any]]

_TYPES: dict[tuple[str, str], object] = {
    ("typing", "Annotated"): Annotated,
    ("typing", "Literal"): Literal,
    ("typing_extensions", "Annotated"): Annotated,
    ("typing_extensions", "Literal"): Literal,
    ("msgspec", "Meta"): msgspec.Meta,
}
_BUILTIN_TYPES = {"int": int, "float": float, "bool": bool, "str": str}
_DECORATOR_KEYS = (*DECORATOR_DEFAULTS, "help")
_OURS = ("openhcs_nb", "openhcs_nb.functions")


def declares_custom(tree: ast.Module) -> bool:
    """Whether the module has a top-level ``def`` decorated ``@function``."""
    return any(
        isinstance(stmt, ast.FunctionDef)
        and len(stmt.decorator_list) == 1
        and _decorator_name(stmt.decorator_list[0]) == "function"
        for stmt in tree.body
    )


#: Longest constant (as source) an own function may take from the notebook.
MAX_CONSTANT = 1000


def is_constant(stmt: ast.stmt) -> bool:
    """``NAME = <literal>``: a constant an own function reads (never a call)."""
    if not (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
    ):
        return False
    try:
        ast.literal_eval(stmt.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return len(ast.unparse(stmt.value)) <= MAX_CONSTANT


def _decorator_name(node: ast.expr) -> str | None:
    target = node.func if isinstance(node, ast.Call) else node
    return target.id if isinstance(target, ast.Name) else None


def shipped(module: str, name: str) -> Callable[..., Any]:
    """The default implementation of a loaded function: source nobody runs."""
    return ShippedSource(module, name)


#: Line breaks as the parser counts them (not str.splitlines's wider set).
_LINES = re.compile(r"\r\n|\r|\n")


class CustomReader:
    """Collects imports and ``@function`` definitions of one module's code."""

    def __init__(self, code: str, refuse: Refuse, impl_for: ImplFor = shipped) -> None:
        self._lines = _LINES.split(code)
        self._refuse = refuse
        self._impl_for = impl_for
        self.imports: list[str] = []
        self._bound: dict[str, tuple[str, str | None]] = {}
        self.functions: dict[str, CustomFunction] = {}

    def claims(self, stmt: ast.stmt) -> bool:
        """Whether ``stmt`` is an import or a definition this reader takes."""
        if isinstance(stmt, ast.Import):
            return True
        if isinstance(stmt, ast.ImportFrom):
            return stmt.level == 0 and stmt.module not in _OURS
        if isinstance(stmt, ast.Assign):
            return is_constant(stmt)
        return isinstance(stmt, ast.FunctionDef) and bool(stmt.decorator_list)

    def take(self, stmt: ast.stmt) -> CustomFunction | None:
        """Record an import or constant, or read a ``def`` into a CustomFunction."""
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            self._import(stmt)
            return None
        if isinstance(stmt, ast.Assign):
            name = stmt.targets[0].id  # type: ignore[attr-defined]
            if name.startswith("__"):
                self._refuse(stmt, f"dunder name {name} is not allowed")
            self.imports.append(ast.unparse(stmt))
            return None
        assert isinstance(stmt, ast.FunctionDef)
        return self._define(stmt)

    # -- imports -----------------------------------------------------------------

    def _import(self, stmt: ast.Import | ast.ImportFrom) -> None:
        for alias in stmt.names:
            if alias.name == "*":
                self._refuse(alias, "star imports are not allowed; name each import")
            bound = alias.asname or alias.name.split(".")[0]
            if isinstance(stmt, ast.Import):
                # "import a.b" binds a; "import a.b as c" binds a.b.
                target = alias.name if alias.asname else alias.name.split(".")[0]
                self._bound[bound] = (target, None)
            else:
                self._bound[bound] = (stmt.module or "", alias.name)
        self.imports.append(ast.unparse(stmt))

    # -- definitions -------------------------------------------------------------

    def _define(self, node: ast.FunctionDef) -> CustomFunction:
        decorator = node.decorator_list[0]
        if len(node.decorator_list) != 1 or _decorator_name(decorator) != "function":
            self._refuse(decorator, "only the @function decorator is allowed")
        if node.name in self.functions:
            self._refuse(node, f"function {node.name} is defined twice")
        spec = {**DECORATOR_DEFAULTS, **self._decorator_args(decorator)}
        source = "\n".join(self._lines[node.lineno - 1 : node.end_lineno])
        if node.col_offset:
            self._refuse(node, "a custom function must be defined at the top level")
        help_text = spec.pop("help", None) or docstring_help(source)
        params = self._params(node)
        module = "\n".join(self.imports)
        module = (module + "\n\n\n" if module else "") + source
        fn = CustomFunction(
            name=node.name,
            impl=self._impl_for(module, node.name),
            help=help_text,
            params=params,
            source=source,
            imports=tuple(self.imports),
            **spec,
        )
        self.functions[node.name] = fn
        return fn

    def _decorator_args(self, node: ast.expr) -> dict[str, Any]:
        if not isinstance(node, ast.Call):
            return {}
        if node.args:
            self._refuse(node.args[0], "@function takes keyword arguments only")
        out: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg not in _DECORATOR_KEYS:
                known = ", ".join(_DECORATOR_KEYS)
                self._refuse(
                    keyword, f"@function has no argument {keyword.arg}; use {known}"
                )
            try:
                value = ast.literal_eval(keyword.value)
            except ValueError:
                self._refuse(
                    keyword.value, f"@function({keyword.arg}=...) must be a literal"
                )
            out[keyword.arg] = tuple(value) if keyword.arg == "side_outputs" else value
        return out

    def _params(self, node: ast.FunctionDef) -> tuple[Param, ...]:
        args = node.args
        if args.vararg or args.kwarg or args.posonlyargs:
            self._refuse(
                node, f"{node.name}: use named parameters only (no *args, **kwargs, /)"
            )
        positional = args.args
        if not positional:
            self._refuse(
                node, f"{node.name} must take the image stack as its first parameter"
            )
        defaults: list[ast.expr | None] = [None] * (
            len(positional) - len(args.defaults)
        )
        defaults += list(args.defaults)
        pairs = list(zip(positional, defaults, strict=True))[1:]
        pairs += list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
        params = []
        for arg, default in pairs:
            if arg.annotation is None:
                self._refuse(
                    arg, f"parameter {arg.arg} of {node.name} needs a type annotation"
                )
            hint = self._annotation(arg.annotation)
            value: object = inspect.Parameter.empty
            if default is not None:
                try:
                    value = ast.literal_eval(default)
                except ValueError:
                    self._refuse(default, f"the default of {arg.arg} must be a literal")
            try:
                params.append(param_from_annotation(arg.arg, hint, value))
            except TypeError as exc:
                self._refuse(arg, str(exc))
        return tuple(params)

    def _annotation(self, node: ast.expr) -> Any:
        """Evaluate an annotation from the few types a parameter spec may use."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                inner = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                self._refuse(node, "the annotation string is not valid Python")
            return self._annotation(inner)
        if isinstance(node, ast.Name | ast.Attribute):
            return self._known(node)
        if isinstance(node, ast.Subscript):
            base = self._known(node.value)
            items = (
                node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            )
            if base is Literal:
                return Literal[tuple(self._literal(i) for i in items)]  # type: ignore[valid-type]
            if base is Annotated and len(items) >= 2:
                values = [self._annotation(items[0])] + [
                    self._meta(i) for i in items[1:]
                ]
                return Annotated[tuple(values)]  # type: ignore[valid-type]
        self._refuse(
            node,
            "a parameter annotation may use only int, float, bool, str, "
            "Literal[...] and Annotated[..., Meta(...)]",
        )

    def _known(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Name):
            if node.id in _BUILTIN_TYPES and node.id not in self._bound:
                return _BUILTIN_TYPES[node.id]
            module, attr = self._bound.get(node.id, ("", None))
            found = _TYPES.get((module, attr or ""))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module, attr = self._bound.get(node.value.id, ("", None))
            found = _TYPES.get((module, node.attr)) if attr is None else None
        else:
            found = None
        if found is None:
            self._refuse(node, f"{ast.unparse(node)} is not a type a parameter may use")
        return found

    def _meta(self, node: ast.expr) -> msgspec.Meta:
        if not (isinstance(node, ast.Call) and self._known(node.func) is msgspec.Meta):
            self._refuse(node, "Annotated[...] extras must be Meta(...) calls")
        if node.args:
            self._refuse(node, "Meta(...) takes keyword arguments only")
        try:
            return msgspec.Meta(
                **{k.arg: self._literal(k.value) for k in node.keywords}
            )  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            self._refuse(node, f"bad Meta(...): {exc}")

    def _literal(self, node: ast.expr) -> Any:
        try:
            return ast.literal_eval(node)
        except ValueError:
            self._refuse(node, "only literal values are allowed here")
