"""The safe loader: pipeline code -> :class:`Pipeline`, without executing it.

Accepted code is exactly what :func:`pipeline_to_code` writes, in any
formatting: an optional module docstring; ``from openhcs_nb import Pipeline,
Step``; ``from openhcs_nb.functions import <catalogue names>`` (no aliases);
and one ``<name> = Pipeline(...)``. Inside, only ``Pipeline``/``Step`` calls,
int/float/str/bool/None literals (a sign before a number is fine), lists,
tuples, dicts and the imported function names are read. Anything else is
refused with :class:`PipelineCodeError` at its line and 1-based column.

Scripts importing from ``openhcs.*`` are OpenHCS scripts and are read by
:mod:`openhcs_nb.pipeline._openhcs_compat` instead.
"""

from __future__ import annotations

import ast

from openhcs_nb.custom._read import CustomReader, ImplFor, declares_custom, shipped
from openhcs_nb.errors import PipelineError
from openhcs_nb.pipeline._ast_reader import (
    MAX_STEPS,
    Builder,
    Reader,
    Source,
    parse,
    show,
)
from openhcs_nb.pipeline._ast_statements import (
    assigned_name,
    is_docstring,
    refuse_statement,
)
from openhcs_nb.pipeline.catalogue import Catalogue
from openhcs_nb.pipeline.model import Pipeline, Step

_STEP_ARGS = ("func", "name", "variable_components", "group_by")


def load_pipeline(
    code: str, catalogue: Catalogue, *, impl_for: ImplFor | None = None
) -> Pipeline:
    """Read pipeline code (or an OpenHCS script) into a :class:`Pipeline`.

    ``catalogue`` lists the functions the code may import. It has no default
    here because ``pipeline`` never imports ``functions``;
    :func:`openhcs_nb.load_pipeline` defaults it to the built-in catalogue.
    Errors carry 1-based ``line`` and ``col`` (characters, as editors count
    them). Own functions (``@function`` defs) are read without running them;
    ``impl_for(module_code, name)`` gives each its implementation (default:
    :class:`~openhcs_nb.custom.ShippedSource`, which refuses to run).

    Raises
    ------
    PipelineCodeError
        The code uses anything outside the accepted subset, exceeds a limit,
        is not valid Python, or builds an invalid step or pipeline (the
        message then keeps the validation reason, e.g. the step and field).
    """
    source, tree = parse(code)
    if is_openhcs_script(tree):
        from openhcs_nb.pipeline._openhcs_compat import read_openhcs_module

        return read_openhcs_module(source, tree, catalogue)
    return _read_module(source, tree, catalogue, impl_for)


def load_openhcs_script(
    code: str, catalogue: Catalogue, *, name: str = "openhcs"
) -> Pipeline:
    """Read an OpenHCS ``FunctionStep`` script into a Pipeline called ``name``.

    :func:`load_pipeline` does this by itself for code importing ``openhcs``;
    call this to choose the pipeline's name. See
    :mod:`openhcs_nb.pipeline._openhcs_compat` for the accepted shape.

    Raises
    ------
    PipelineCodeError
        As for :func:`load_pipeline`; functions missing from the catalogue
        are named.
    """
    source, tree = parse(code)
    from openhcs_nb.pipeline._openhcs_compat import read_openhcs_module

    return read_openhcs_module(source, tree, catalogue, name)


def is_openhcs_script(tree: ast.Module) -> bool:
    """Whether the module imports from the ``openhcs`` package (not ours)."""
    return any(
        isinstance(stmt, ast.ImportFrom)
        and stmt.level == 0
        and (stmt.module or "").split(".")[0] == "openhcs"
        for stmt in tree.body
    )


def _read_module(
    source: Source,
    tree: ast.Module,
    catalogue: Catalogue,
    impl_for: ImplFor | None = None,
) -> Pipeline:
    reader = Reader(source, {})
    # Own functions (``@function`` defs) are read, never run: see custom/_read.
    custom = (
        CustomReader(source.code, source.refuse, impl_for or shipped)
        if declares_custom(tree)
        else None
    )
    found: tuple[Pipeline, int] | None = None
    for index, stmt in enumerate(tree.body):
        if index == 0 and is_docstring(stmt):
            continue
        if custom is not None and custom.claims(stmt):
            fn = custom.take(stmt)
            if fn is not None:
                reader.names[fn.name] = fn
            continue
        if isinstance(stmt, ast.ImportFrom):
            _bind_import(reader, stmt, catalogue, custom is not None)
        elif isinstance(stmt, ast.Assign):
            assigned_name(reader, stmt)
            if found is not None:
                reader.refuse(
                    stmt,
                    "only one pipeline assignment is allowed "
                    f"(the first is on line {found[1]})",
                )
            found = (_read_assignment(reader, stmt), stmt.lineno)
        elif isinstance(stmt, ast.Expr):
            reader.value(stmt.value)
            reader.refuse(
                stmt,
                "bare expressions are not allowed; assign the pipeline: "
                "pipeline = Pipeline(...)",
            )
        else:
            refuse_statement(source, stmt)
    if found is None:
        source.refuse(
            None, "no pipeline found: the code must assign name = Pipeline(...)"
        )
    return found[0]


def _read_assignment(reader: Reader, stmt: ast.Assign) -> Pipeline:
    value = reader.value(stmt.value)
    if not isinstance(value, Pipeline):
        reader.refuse(stmt.value, "the assigned value must be a Pipeline(...) call")
    return value


def _bind_import(
    reader: Reader,
    stmt: ast.ImportFrom,
    catalogue: Catalogue,
    declares_custom_import: bool = False,
) -> None:
    if stmt.level:
        reader.refuse(stmt, "relative imports are not allowed")
    module = stmt.module
    if module not in ("openhcs_nb", "openhcs_nb.functions"):
        reader.refuse(
            stmt,
            f"imports from {show(module or '')} are not allowed "
            "(only openhcs_nb and openhcs_nb.functions)",
        )
    for alias in stmt.names:
        if alias.name == "*":
            reader.refuse(alias, "star imports are not allowed; name each function")
        reader.check_name(alias.name, alias)
        if alias.asname is not None:
            reader.refuse(
                alias,
                f"import aliases are not allowed ({alias.name} as {alias.asname})",
            )
        if module == "openhcs_nb":
            if alias.name == "function" and declares_custom_import:
                continue
            if alias.name not in BUILDERS:
                reader.refuse(
                    alias,
                    f"{show(alias.name)} cannot be imported from openhcs_nb "
                    "(only Pipeline and Step)",
                )
            reader.names[alias.name] = BUILDERS[alias.name]
        else:
            if alias.name not in catalogue:
                reader.refuse(
                    alias, f"{show(alias.name)} is not in the function catalogue"
                )
            reader.names[alias.name] = catalogue[alias.name]


def read_steps(reader: Reader, node: ast.expr | None, steps: object) -> None:
    """Check a ``steps`` value element by element, pointing at a bad one.

    Raises
    ------
    PipelineCodeError
        Too many steps, or an element is not a Step.
    """
    if node is None or not isinstance(steps, list | tuple):
        return
    if len(steps) > MAX_STEPS:
        reader.refuse(node, f"{len(steps)} steps; a pipeline holds at most {MAX_STEPS}")
    elements = node.elts if isinstance(node, ast.List | ast.Tuple) else []
    for i, (element, step) in enumerate(zip(elements, steps, strict=False)):
        if not isinstance(step, Step):
            reader.refuse(
                element, f"steps[{i}] must be a Step, got {type(step).__name__}"
            )


def build_pipeline(
    reader: Reader,
    call: ast.AST,
    name: object,
    steps: tuple[object, ...],
    step_nodes: list[ast.AST],
    name_node: ast.AST | None = None,
) -> Pipeline:
    """``Pipeline(name, steps)``; a duplicate step name points at the repeat.

    Raises
    ------
    PipelineCodeError
        The pipeline is invalid; the reason is the validation message.
    """
    try:
        return Pipeline(name, steps)  # type: ignore[arg-type]
    except PipelineError as exc:
        culprit = name_node if name_node is not None else call
        if exc.step is not None:
            repeats = [
                node
                for node, step in zip(step_nodes, steps, strict=False)
                if isinstance(step, Step) and step.name == exc.step
            ]
            culprit = repeats[-1] if repeats else call
        reader.refuse(culprit, str(exc))


def _pipeline(reader: Reader, call: ast.Call, depth: int) -> Pipeline:
    args = reader.arguments(
        call,
        depth,
        what="Pipeline()",
        positional=("name", "steps"),
        allowed=("name", "steps"),
    )
    if "name" not in args:
        reader.refuse(call, "Pipeline() needs a name")
    steps, steps_node = args.get("steps", ([], None))
    read_steps(reader, steps_node, steps)
    if not isinstance(steps, list | tuple):
        reader.refuse(steps_node, f"steps must be a list, got {type(steps).__name__}")
    nodes = steps_node.elts if isinstance(steps_node, ast.List | ast.Tuple) else []
    name, name_node = args["name"]
    return build_pipeline(reader, call, name, tuple(steps), nodes, name_node)


def _step(reader: Reader, call: ast.Call, depth: int) -> Step:
    args = reader.arguments(
        call, depth, what="Step()", positional=("func",), allowed=_STEP_ARGS
    )
    if "func" not in args:
        reader.refuse(call, "Step() needs func")
    return reader.construct(call, Step, args)  # type: ignore[return-value]


BUILDERS: dict[str, Builder] = {
    "Pipeline": Builder("Pipeline", _pipeline),
    "Step": Builder("Step", _step),
}
