"""Step and Pipeline: immutable values that describe what to run, not how.

A Step's ``func`` pattern follows OpenHCS: a catalogue function; a
``(function, {kwargs})`` pair; a list, meaning a chain applied in order; or a
dict keyed by a component value (a channel name, or a 0-based channel index)
mapping to any of those. Everything is validated and normalised when the Step
is built, so two spellings of the same step are equal and generate the same code.

``variable_components`` names the components stacked into the ``(n, y, x)``
array a function receives (default: the fields of one channel);
``group_by`` names the component a dict pattern's keys refer to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from openhcs_nb.errors import PipelineError
from openhcs_nb.pipeline.catalogue import Function, Value

Component = Literal["well", "site", "channel", "z", "t"]
COMPONENTS: tuple[str, ...] = get_args(Component)
# Components a step can stack or group over; wells are always processed apart.
WELL_COMPONENTS: tuple[str, ...] = ("site", "channel", "z", "t")
# \Z, not $: "$" would also accept a trailing newline.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}\Z")
DictKey = int | str


@dataclass(frozen=True)
class Call:
    """One function call inside a chain: the function and its non-default kwargs."""

    function: Function
    kwargs: tuple[tuple[str, Value], ...] = ()

    @property
    def name(self) -> str:
        """The catalogue name of the called function."""
        return self.function.name

    def kwargs_dict(self) -> dict[str, Value]:
        """The kwargs given explicitly, as a dict."""
        return dict(self.kwargs)


Chain = tuple[Call, ...]


@dataclass(frozen=True)
class Step:
    """One processing step: a function pattern plus how images are grouped."""

    func: Any = field(compare=False)
    name: str = ""
    variable_components: tuple[str, ...] = ("site",)
    group_by: str | None = None
    chains: tuple[tuple[DictKey | None, Chain], ...] = field(
        init=False, repr=False, compare=True
    )

    def __post_init__(self) -> None:
        chains = _normalise_pattern(self.func, self.name or None)
        first = chains[0][1][0].name
        name = self.name or first
        if not isinstance(name, str) or not _NAME.match(name):
            raise PipelineError(
                "step names are 1-64 letters, digits, '_' or '-', starting with "
                "a letter or '_'",
                step=name,
                field="name",
            )
        variable = _check_components(self.variable_components, name)
        group_by = self.group_by
        is_dict = chains[0][0] is not None
        if group_by is not None and group_by not in WELL_COMPONENTS:
            raise PipelineError(
                f"must be one of {list(WELL_COMPONENTS)} or None, got {group_by!r}",
                step=name,
                field="group_by",
            )
        if is_dict and group_by is None:
            raise PipelineError(
                "a dict pattern needs group_by (the component its keys name, "
                "usually 'channel')",
                step=name,
                field="group_by",
            )
        if is_dict and group_by in variable:
            raise PipelineError(
                f"cannot group by {group_by!r} while also stacking it "
                "(remove it from variable_components)",
                step=name,
                field="group_by",
            )
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "variable_components", variable)
        object.__setattr__(self, "chains", chains)
        object.__setattr__(self, "func", _canonical_func(chains))

    @property
    def is_dict(self) -> bool:
        """Whether the pattern picks a chain per component value."""
        return self.chains[0][0] is not None

    def functions(self) -> list[Function]:
        """Every catalogue function this step calls, in order of appearance."""
        return [call.function for _, chain in self.chains for call in chain]

    def _repr_html_(self) -> str:
        from openhcs_nb.pipeline._html import step_html

        return step_html(self)


@dataclass(frozen=True)
class Pipeline:
    """A named, ordered list of steps; compare with ``==``, save with ``to_code``."""

    name: str
    steps: tuple[Step, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise PipelineError("a pipeline needs a non-empty name", field="name")
        if not isinstance(self.steps, list | tuple):
            raise PipelineError(
                f"steps must be a list of Steps, got {type(self.steps).__name__}",
                field="steps",
            )
        steps = tuple(self.steps)
        for i, step in enumerate(steps):
            if not isinstance(step, Step):
                raise PipelineError(
                    f"steps[{i}] must be a Step, got {type(step).__name__}",
                    field="steps",
                )
        seen: set[str] = set()
        for step in steps:
            if step.name in seen:
                raise PipelineError(
                    "step names must be unique within a pipeline",
                    step=step.name,
                    field="name",
                )
            seen.add(step.name)
        object.__setattr__(self, "steps", steps)

    def __len__(self) -> int:
        return len(self.steps)

    def step(self, name: str) -> Step:
        """The step called ``name``.

        Raises
        ------
        KeyError
            No step has that name.
        """
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"pipeline {self.name!r} has no step {name!r}")

    def with_step(self, step: Step, index: int | None = None) -> Pipeline:
        """A copy with ``step`` replacing the step of the same name, or appended.

        ``index`` inserts a new step at that position instead of appending.
        """
        steps = list(self.steps)
        for i, existing in enumerate(steps):
            if existing.name == step.name:
                steps[i] = step
                return Pipeline(self.name, tuple(steps))
        steps.insert(len(steps) if index is None else index, step)
        return Pipeline(self.name, tuple(steps))

    def without_step(self, name: str) -> Pipeline:
        """A copy without the step called ``name``."""
        self.step(name)
        return Pipeline(self.name, tuple(s for s in self.steps if s.name != name))

    def upto(self, count: int) -> Pipeline:
        """A copy holding only the first ``count`` steps (for previews)."""
        if not 0 <= count <= len(self.steps):
            raise PipelineError(
                f"upto must be between 0 and {len(self.steps)}, got {count}",
                field="upto",
            )
        return Pipeline(self.name, self.steps[:count])

    def to_code(self) -> str:
        """Readable Python that re-creates this pipeline through the safe loader."""
        from openhcs_nb.pipeline.codegen import pipeline_to_code

        return pipeline_to_code(self)

    def _repr_html_(self) -> str:
        from openhcs_nb.pipeline._html import pipeline_html

        return pipeline_html(self)


def _check_components(values: Iterable[str] | str, step: str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    if not isinstance(values, list | tuple):
        raise PipelineError(
            f"expected a list of component names, got {type(values).__name__}",
            step=step,
            field="variable_components",
        )
    out: list[str] = []
    for value in values:
        if value == "well":
            raise PipelineError(
                "wells are always processed one at a time and cannot be stacked",
                step=step,
                field="variable_components",
            )
        if value not in WELL_COMPONENTS:
            raise PipelineError(
                f"unknown component {value!r}; choose from {list(WELL_COMPONENTS)}",
                step=step,
                field="variable_components",
            )
        if value in out:
            raise PipelineError(
                f"component {value!r} is listed twice",
                step=step,
                field="variable_components",
            )
        out.append(value)
    if not out:
        raise PipelineError(
            "at least one component must vary within a stack",
            step=step,
            field="variable_components",
        )
    return tuple(out)


def _normalise_pattern(
    pattern: object, step: str | None
) -> tuple[tuple[DictKey | None, Chain], ...]:
    if isinstance(pattern, Mapping):
        if not pattern:
            raise PipelineError("a dict pattern needs at least one key", step=step)
        chains: list[tuple[DictKey | None, Chain]] = []
        for key, sub in pattern.items():
            if isinstance(key, bool) or not isinstance(key, int | str):
                raise PipelineError(
                    f"dict keys are channel names (str) or 0-based indices (int), "
                    f"got {key!r}",
                    step=step,
                    field="func",
                )
            if isinstance(key, int) and key < 0:
                raise PipelineError(
                    f"index keys must be >= 0, got {key}", step=step, field="func"
                )
            chains.append((key, _normalise_chain(sub, step)))
        return tuple(chains)
    return ((None, _normalise_chain(pattern, step)),)


def _normalise_chain(pattern: object, step: str | None) -> Chain:
    if isinstance(pattern, list):
        if not pattern:
            raise PipelineError("a chain needs at least one function", step=step)
        return tuple(_normalise_call(item, step) for item in pattern)
    return (_normalise_call(pattern, step),)


def _normalise_call(item: object, step: str | None) -> Call:
    kwargs: object = {}
    fn = item
    if isinstance(item, tuple):
        if len(item) != 2:
            raise PipelineError(
                "a call is written (function, {kwargs}), a 2-tuple",
                step=step,
                field="func",
            )
        fn, kwargs = item
    if not isinstance(fn, Function):
        raise PipelineError(
            f"{fn!r} is not a catalogue function (import it from openhcs_nb.functions)",
            step=step,
            field="func",
        )
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise PipelineError(
            f"the kwargs of {fn.name} must be a dict with str keys",
            step=step,
            field="func",
        )
    checked = fn.check_kwargs(kwargs, step=step)
    for param in fn.params:
        if param.required and param.name not in checked:
            raise PipelineError(
                f"{fn.name} needs a value for this parameter (it has no default)",
                step=step,
                field=param.name,
            )
    return Call(fn, tuple(checked.items()))


def _canonical_func(chains: Sequence[tuple[DictKey | None, Chain]]) -> object:
    """The shortest pattern spelling; ``Step(func=step.func) == step``."""

    def call_form(call: Call) -> object:
        return (call.function, call.kwargs_dict()) if call.kwargs else call.function

    def chain_form(chain: Chain) -> object:
        if len(chain) == 1:
            return call_form(chain[0])
        return [call_form(c) for c in chain]

    if chains[0][0] is None:
        return chain_form(chains[0][1])
    return {key: chain_form(chain) for key, chain in chains}
