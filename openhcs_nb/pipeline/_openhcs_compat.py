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
``openhcs.processing`` module (or the generated ``openhcs.pyclesperanto``
namespace) map to catalogue functions through the table in
:mod:`._openhcs_names`, else by identical name; anything else is refused.
CamelCase names from those modules are option enums. ``VariableComponents.X``
and ``GroupBy.X`` (SITE, CHANNEL, Z_INDEX, TIMEPOINT, WELL; GroupBy.NONE)
become component names; ``Enum.MEMBER`` of an imported enum is the only
attribute access accepted anywhere. Step names that openhcs-nb cannot
use (spaces, ...) have each offending character replaced by ``_`` (and a
leading ``_`` added before a digit), cut to 64 characters.

OpenHCS 0.8 scripts also put grouping in ``processing_config=
LazyProcessingConfig(variable_components=..., group_by=..., input_source=...)``
and attach display/IO configs (``napari_streaming_config``,
``fiji_streaming_config``, ``step_materialization_config``,
``step_well_filter_config`` without arguments). Those configs do not change the
pixels a step computes, so their literal arguments are read and dropped;
``input_source=InputSource.PIPELINE_START`` does change them and is refused.
``pipeline_config = PipelineConfig()`` (no arguments) is accepted. A dict
pattern without ``group_by`` groups by channel, OpenHCS's default.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from openhcs_nb.pipeline._ast_reader import (
    Arguments,
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
from openhcs_nb.pipeline._openhcs_names import Member, build_step, resolve
from openhcs_nb.pipeline.catalogue import Catalogue
from openhcs_nb.pipeline.loader import build_pipeline, read_steps
from openhcs_nb.pipeline.model import Pipeline, Step

STEPS_VARIABLE = "pipeline_steps"
CONFIG_VARIABLE = "pipeline_config"
_COMPONENTS = {
    "SITE": "site",
    "CHANNEL": "channel",
    "Z_INDEX": "z",
    "TIMEPOINT": "t",
    "WELL": "well",
}
_INPUT_SOURCES = ("PREVIOUS_STEP", "PIPELINE_START")
# Display and IO configs: read (literals only) and dropped.
_DISPLAY_CONFIGS = (
    "LazyNapariStreamingConfig",
    "LazyFijiStreamingConfig",
    "LazyStepMaterializationConfig",
    "LazyStepWellFilterConfig",
)
_CONFIGS = ("LazyProcessingConfig", *_DISPLAY_CONFIGS, "PipelineConfig")
_ENUMS = ("VariableComponents", "GroupBy")
_MODULES = {
    "openhcs.core.steps.function_step": ("FunctionStep",),
    "openhcs.core.steps": ("FunctionStep",),
    "openhcs.constants.constants": _ENUMS,
    "openhcs.constants": _ENUMS,
    "openhcs.constants.input_source": ("InputSource",),
    "openhcs.core.config": (*_CONFIGS, "NapariVariableSizeHandling"),
}
# Namespaces OpenHCS generates for wrapped libraries (e.g. pyclesperanto).
_FUNCTION_NAMESPACES = ("openhcs.pyclesperanto", "openhcs.skimage", "openhcs.cucim")
# FunctionStep arguments with no openhcs-nb meaning, accepted at these values.
_IGNORED = {"force_disk_output": False}
_GROUPING = ("variable_components", "group_by", "input_source")
_CONFIG_ARGS = (
    "processing_config",
    "napari_streaming_config",
    "fiji_streaming_config",
    "step_materialization_config",
    "step_well_filter_config",
)
_STEP_ARGS = ("func", "name", *_GROUPING, *_CONFIG_ARGS, *_IGNORED)
_BAD_NAME_CHAR = re.compile(r"[^A-Za-z0-9_\-]")


@dataclass(frozen=True)
class _Enum:
    """An imported OpenHCS enum; only its members may be read.

    ``open`` enums (those of processing modules and display configs) accept
    any member name: what a member means is decided where it is used.
    """

    name: str
    open: bool = False

    @property
    def members(self) -> dict[str, object]:
        if self.name == "InputSource":
            return {m: Member(self.name, m) for m in _INPUT_SOURCES}
        extra = {"NONE": None} if self.name == "GroupBy" else {}
        return {**_COMPONENTS, **extra}


@dataclass(frozen=True)
class _Config:
    """A ``Lazy*Config(...)`` value: its name and the keywords it was given."""

    name: str
    args: Arguments = field(compare=False)


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
            elif target == CONFIG_VARIABLE:
                _pipeline_config(reader, stmt)
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
    is_processing = module.startswith("openhcs.processing.") or (
        module in _FUNCTION_NAMESPACES
    )
    if module not in _MODULES and not is_processing:
        reader.refuse(stmt, f"imports from {show(module)} are not allowed")
    for alias in stmt.names:
        if alias.name == "*":
            reader.refuse(alias, "star imports are not allowed; name each function")
        reader.check_name(alias.name, alias)
        bound = alias.asname or alias.name
        reader.check_name(bound, alias)
        value = (
            _processing_name(reader, alias, catalogue)
            if is_processing
            else _openhcs_name(reader, alias, module)
        )
        previous = reader.names.get(bound)
        if previous is not None and previous != value:
            reader.refuse(alias, f"name {show(bound)} is imported twice")
        reader.names[bound] = value


def _processing_name(reader: Reader, alias: ast.alias, catalogue: Catalogue) -> object:
    """A function (mapped to the catalogue) or, if CamelCase, an enum of options."""
    if alias.name[:1].isupper():
        return _Enum(alias.name, open=True)
    mapped = resolve(alias.name, catalogue)
    if isinstance(mapped, str):
        reader.refuse(alias, mapped)
    return mapped


def _openhcs_name(reader: Reader, alias: ast.alias, module: str) -> object:
    if alias.name not in _MODULES[module]:
        allowed = ", ".join(_MODULES[module])
        reader.refuse(
            alias,
            f"{show(alias.name)} cannot be imported from {module} (only {allowed})",
        )
    if alias.name == "FunctionStep":
        return Builder("FunctionStep", _function_step)
    if alias.name in _CONFIGS:
        return Builder(alias.name, _config)
    return _Enum(alias.name, open=alias.name not in (*_ENUMS, "InputSource"))


def _config(reader: Reader, call: ast.Call, depth: int) -> _Config:
    """Read ``Lazy*Config(...)``: keywords only, each a literal or enum member."""
    name = call.func.id  # type: ignore[attr-defined]
    if call.args:
        reader.refuse(call.args[0], f"{name}() takes keyword arguments only")
    allowed: tuple[str, ...] | None = None
    if name == "LazyProcessingConfig":
        allowed = _GROUPING
    elif name in ("PipelineConfig", "LazyStepWellFilterConfig"):
        allowed = ()
    args: Arguments = {}
    for kw in call.keywords:
        if kw.arg is None:
            reader.refuse(kw, "keyword unpacking (**x) is not allowed")
        reader.check_name(kw.arg, kw)
        if allowed is not None and kw.arg not in allowed:
            what = (
                f"(expected {', '.join(allowed)})"
                if allowed
                else "(it changes which wells or settings run; set those on the "
                "openhcs-nb run instead)"
            )
            reader.refuse(kw, f"{name}() does not accept {show(kw.arg)} {what}")
        if kw.arg in args:
            reader.refuse(kw, f"{name}() got argument {show(kw.arg)} twice")
        args[kw.arg] = (reader.value(kw.value, depth + 1), kw.value)
    return _Config(name, args)


def _pipeline_config(reader: Reader, stmt: ast.Assign) -> None:
    value = reader.value(stmt.value)
    if not (isinstance(value, _Config) and value.name == "PipelineConfig"):
        reader.refuse(stmt.value, f"{CONFIG_VARIABLE} must be PipelineConfig()")


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
    if enum.open:
        reader.check_name(node.attr, node)
        return Member(enum.name, node.attr)
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
    _merge_configs(reader, args)
    if "input_source" in args:
        value, node = args.pop("input_source")
        if value != Member("InputSource", "PREVIOUS_STEP"):
            reader.refuse(
                node,
                "input_source=InputSource.PIPELINE_START (re-reading the plate's "
                "original images) has no openhcs-nb equivalent",
            )
    if "name" in args:
        value, node = args["name"]
        if isinstance(value, str):
            args["name"] = (_step_name(value), node)
    if isinstance(args["func"][0], dict) and "group_by" not in args:
        args["group_by"] = ("channel", args["func"][1])
    return reader.construct(call, build_step, args)  # type: ignore[return-value]


def _merge_configs(reader: Reader, args: Arguments) -> None:
    """Lift ``processing_config`` grouping into the step; drop display configs."""
    for key in _CONFIG_ARGS:
        if key not in args:
            continue
        value, node = args.pop(key)
        expected = "LazyProcessingConfig" if key == "processing_config" else None
        if value is None:
            continue
        if not isinstance(value, _Config) or (
            expected is not None and value.name != expected
        ):
            reader.refuse(node, f"{key} must be a Lazy...Config(...) call")
        if key != "processing_config":
            continue
        for name, (inner, inner_node) in value.args.items():
            if name in args:
                reader.refuse(
                    inner_node, f"{name} is given both on the step and in {key}"
                )
            args[name] = (inner, inner_node)
