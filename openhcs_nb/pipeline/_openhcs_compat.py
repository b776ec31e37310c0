"""Read OpenHCS pipeline scripts (``FunctionStep``) into a :class:`Pipeline`.

The accepted shape is what the OpenHCS pipeline editor writes, minus anything
that would run code::

    from openhcs.constants.constants import GroupBy, VariableComponents
    from openhcs.core.steps.function_step import FunctionStep
    from openhcs.processing.backends.processors.numpy_processor import tophat

    pipeline_steps = [
        FunctionStep(func=(tophat, {"selem_radius": 50}), name="bg",
                     variable_components=[VariableComponents.SITE]),
    ]

or ``pipeline_steps = []`` followed by ``step_1 = FunctionStep(...)`` and
``pipeline_steps.append(step_1)``. Functions imported from any
``openhcs.processing`` module map to catalogue functions *by name*; a name the
catalogue lacks is refused. ``VariableComponents.X`` and ``GroupBy.X`` (SITE,
CHANNEL, Z_INDEX, TIMEPOINT, WELL; GroupBy.NONE) become component names: the
only attribute access accepted anywhere. Step names that openhcs-nb cannot
use (spaces, ...) have each offending character replaced by ``_`` (and a
leading ``_`` added before a digit), cut to 64 characters.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from openhcs_nb.pipeline._ast_reader import (
    Builder,
    Reader,
    Source,
    show,
)
from openhcs_nb.pipeline._ast_statements import (
    assigned_name,
    is_docstring,
    refuse_statement,
)
from openhcs_nb.pipeline.catalogue import Catalogue
from openhcs_nb.pipeline.loader import build_pipeline, read_steps
from openhcs_nb.pipeline.model import Pipeline, Step

STEPS_VARIABLE = "pipeline_steps"
_COMPONENTS = {
    "SITE": "site",
    "CHANNEL": "channel",
    "Z_INDEX": "z",
    "TIMEPOINT": "t",
    "WELL": "well",
}
_MODULES = {
    "openhcs.core.steps.function_step": ("FunctionStep",),
    "openhcs.core.steps": ("FunctionStep",),
    "openhcs.constants.constants": ("VariableComponents", "GroupBy"),
    "openhcs.constants": ("VariableComponents", "GroupBy"),
}
# FunctionStep arguments with no openhcs-nb meaning, accepted at these values.
_IGNORED = {"force_disk_output": False}
_STEP_ARGS = ("func", "name", "variable_components", "group_by", *_IGNORED)
_BAD_NAME_CHAR = re.compile(r"[^A-Za-z0-9_\-]")


@dataclass(frozen=True)
class _Enum:
    """An imported OpenHCS enum; only its members may be read."""

    name: str

    @property
    def members(self) -> dict[str, str | None]:
        extra = {"NONE": None} if self.name == "GroupBy" else {}
        return {**_COMPONENTS, **extra}


def read_openhcs_module(
    source: Source, tree: ast.Module, catalogue: Catalogue, name: str = "openhcs"
) -> Pipeline:
    """Build the pipeline an OpenHCS script describes, refusing anything else.

    Raises
    ------
    PipelineCodeError
        As for :func:`openhcs_nb.pipeline.loader.load_pipeline`; functions
        missing from the catalogue are named.
    """
    reader = Reader(
        source,
        {},
        attribute=_enum_member,
        unknown_name="name {name} is not an imported catalogue function or step",
        callables="FunctionStep(...)",
    )
    steps: list[Step] | None = None
    nodes: list[ast.AST] = []
    first: ast.stmt | None = None
    for index, stmt in enumerate(tree.body):
        if index == 0 and is_docstring(stmt):
            continue
        if isinstance(stmt, ast.ImportFrom):
            _bind_import(reader, stmt, catalogue)
        elif isinstance(stmt, ast.Assign):
            target = assigned_name(reader, stmt)
            if target == STEPS_VARIABLE:
                if steps is not None:
                    reader.refuse(stmt, f"{STEPS_VARIABLE} is assigned twice")
                steps, nodes = _step_list(reader, stmt.value), []
                if isinstance(stmt.value, ast.List):
                    nodes = list(stmt.value.elts)
                first = stmt
            else:
                _bind_step(reader, target, stmt)
        elif isinstance(stmt, ast.Expr) and _is_append(stmt.value):
            if steps is None:
                reader.refuse(stmt, f"{STEPS_VARIABLE} is appended to before it is set")
            arg = stmt.value.args[0]
            steps.append(_one_step(reader, arg))
            nodes.append(arg)
        elif isinstance(stmt, ast.Expr):
            reader.value(stmt.value)
            reader.refuse(stmt, "bare expressions are not allowed")
        else:
            refuse_statement(source, stmt)
    if steps is None or first is None:
        source.refuse(None, f"no OpenHCS steps found: assign {STEPS_VARIABLE} = [...]")
    read_steps(reader, first.value, steps)
    return build_pipeline(reader, first, name, tuple(steps), nodes)


def _bind_import(reader: Reader, stmt: ast.ImportFrom, catalogue: Catalogue) -> None:
    module = stmt.module or ""
    if stmt.level:
        reader.refuse(stmt, "relative imports are not allowed")
    is_processing = module.startswith("openhcs.processing.")
    if module not in _MODULES and not is_processing:
        reader.refuse(stmt, f"imports from {show(module)} are not allowed")
    for alias in stmt.names:
        if alias.name == "*":
            reader.refuse(alias, "star imports are not allowed; name each function")
        reader.check_name(alias.name, alias)
        bound = alias.asname or alias.name
        reader.check_name(bound, alias)
        if is_processing:
            if alias.name not in catalogue:
                reader.refuse(
                    alias,
                    f"OpenHCS function {show(alias.name)} has no counterpart "
                    "in the function catalogue",
                )
            value: object = catalogue[alias.name]
        elif alias.name not in _MODULES[module]:
            allowed = ", ".join(_MODULES[module])
            reader.refuse(
                alias,
                f"{show(alias.name)} cannot be imported from {module} (only {allowed})",
            )
        elif alias.name == "FunctionStep":
            value = Builder("FunctionStep", _function_step)
        else:
            value = _Enum(alias.name)
        previous = reader.names.get(bound)
        if previous is not None and previous != value:
            reader.refuse(alias, f"name {show(bound)} is imported twice")
        reader.names[bound] = value


def _step_list(reader: Reader, node: ast.expr) -> list[Step]:
    steps = reader.value(node)
    if not isinstance(steps, list):
        reader.refuse(node, f"{STEPS_VARIABLE} must be a list of FunctionStep(...)")
    read_steps(reader, node, steps)
    return steps


def _bind_step(reader: Reader, target: str, stmt: ast.Assign) -> None:
    step = reader.value(stmt.value)
    if not isinstance(step, Step):
        reader.refuse(
            stmt.value, f"only FunctionStep(...) can be assigned to {show(target)}"
        )
    if target in reader.names:
        reader.refuse(stmt, f"name {show(target)} is already bound")
    reader.names[target] = step


def _is_append(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == STEPS_VARIABLE
        and node.func.attr == "append"
        and len(node.args) == 1
        and not node.keywords
        and not isinstance(node.args[0], ast.Starred)
    )


def _one_step(reader: Reader, node: ast.expr) -> Step:
    step = reader.value(node)
    if not isinstance(step, Step):
        reader.refuse(node, f"only steps can be appended, got {type(step).__name__}")
    return step


def _enum_member(reader: Reader, node: ast.Attribute, depth: int) -> object:
    owner = node.value
    enum = reader.names.get(owner.id) if isinstance(owner, ast.Name) else None
    if not isinstance(enum, _Enum):
        reader.refuse_attribute(node)
    if node.attr not in enum.members:
        known = ", ".join(enum.members)
        reader.refuse(node, f"{enum.name} has no member {show(node.attr)} ({known})")
    return enum.members[node.attr]


def _step_name(text: str) -> str:
    """OpenHCS allows any step name; ours are identifiers-with-dashes."""
    name = _BAD_NAME_CHAR.sub("_", text.strip())
    if name and not (name[0].isalpha() or name[0] == "_"):
        name = "_" + name
    return name[:64]


def _function_step(reader: Reader, call: ast.Call, depth: int) -> Step:
    args = reader.arguments(
        call, depth, what="FunctionStep()", positional=("func",), allowed=_STEP_ARGS
    )
    if "func" not in args:
        reader.refuse(call, "FunctionStep() needs func")
    for key, expected in _IGNORED.items():
        if key in args:
            value, node = args.pop(key)
            if value != expected or type(value) is not type(expected):
                reader.refuse(
                    node,
                    f"{key}={value!r} has no openhcs-nb equivalent (use {expected!r})",
                )
    if "name" in args:
        value, node = args["name"]
        if isinstance(value, str):
            args["name"] = (_step_name(value), node)
    return reader.construct(call, Step, args)  # type: ignore[return-value]
