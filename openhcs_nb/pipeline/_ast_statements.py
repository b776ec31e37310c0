"""Module-level statement rules shared by the native and OpenHCS loaders.

Both accept only imports, assignments of plain names and (for OpenHCS) one
``.append`` form; every other statement kind is refused here with a reason
that names it. Positions follow :mod:`openhcs_nb.pipeline._ast_reader`.
"""

from __future__ import annotations

import ast
from typing import NoReturn

from openhcs_nb.pipeline._ast_reader import Reader, Source


def is_docstring(stmt: ast.stmt) -> bool:
    """A bare string as the first statement documents the module."""
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


# Statements never accepted at module level, with the reason shown.
_STATEMENTS: dict[str, str] = {
    "FunctionDef": "function definitions (def) are not allowed",
    "AsyncFunctionDef": "async function definitions are not allowed",
    "ClassDef": "class definitions are not allowed",
    "Return": "'return' is not allowed",
    "Delete": "'del' statements are not allowed",
    "AugAssign": "augmented assignment (x += ...) is not allowed",
    "AnnAssign": "annotated assignments (x: T = ...) are not allowed",
    "For": "'for' loops are not allowed",
    "AsyncFor": "'async for' loops are not allowed",
    "While": "'while' loops are not allowed",
    "If": "'if' statements are not allowed",
    "With": "'with' statements are not allowed",
    "AsyncWith": "'async with' statements are not allowed",
    "Match": "'match' statements are not allowed",
    "Raise": "'raise' statements are not allowed",
    "Try": "'try' statements are not allowed",
    "TryStar": "'try' statements are not allowed",
    "Assert": "'assert' statements are not allowed",
    "Global": "'global' statements are not allowed",
    "Nonlocal": "'nonlocal' statements are not allowed",
    "Pass": "'pass' is not allowed",
    "Break": "'break' is not allowed",
    "Continue": "'continue' is not allowed",
    "TypeAlias": "'type' statements are not allowed",
}


def refuse_statement(source: Source, stmt: ast.stmt) -> NoReturn:
    """Refuse a statement kind that no loader accepts (decorators first)."""
    decorators = getattr(stmt, "decorator_list", None)
    if decorators:
        source.refuse(decorators[0], "decorators are not allowed")
    kind = type(stmt).__name__
    if isinstance(stmt, ast.Import):
        names = ", ".join(alias.name for alias in stmt.names)
        source.refuse(
            stmt,
            f"'import {names}' is not allowed; only "
            "'from openhcs_nb.functions import <function>' imports functions",
        )
    source.refuse(stmt, _STATEMENTS.get(kind, f"{kind} statements are not allowed"))


def assigned_name(reader: Reader, stmt: ast.Assign) -> str:
    """The single plain name an assignment binds; anything else is refused."""
    if len(stmt.targets) != 1:
        reader.refuse(stmt, "chained assignment (a = b = ...) is not allowed")
    target = stmt.targets[0]
    if not isinstance(target, ast.Name):
        kinds = {
            "Attribute": "an attribute",
            "Subscript": "a subscript",
            "Tuple": "a tuple",
            "List": "a list",
            "Starred": "a starred target",
        }
        kind = kinds.get(type(target).__name__, type(target).__name__)
        reader.refuse(target, f"assignment to {kind} is not allowed; assign a name")
    reader.check_name(target.id, target)
    return target.id
