"""Compile a pipeline against a plate into an :class:`ExecutionPlan`.

Everything that can be known before a pixel is read is checked here, so a bad
pipeline fails in milliseconds with a message naming the step and key, rather
than in every worker: dict keys naming channels the plate lacks, missing
required parameters, chains whose value kinds do not connect, steps that read
labels before any step made them. The plan is the same for every well, so
compiling a 384-well plate costs one pass over the steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from openhcs_nb.errors import CompileError
from openhcs_nb.execution.placement import choose_device, keep_on_device, place_calls
from openhcs_nb.execution.plan import (
    CallPlan,
    ChainPlan,
    ExecutionPlan,
    IlluminationPhase,
    StepPlan,
)
from openhcs_nb.pipeline.catalogue import Function, Kind, Value
from openhcs_nb.pipeline.model import Chain, DictKey, Pipeline, Step
from openhcs_nb.plates.model import Plate, PlateLayout

_AXIS_SIZE = {"site": "fields", "channel": "channels", "z": "z", "t": "t"}


def compile_pipeline(
    pipeline: Pipeline,
    plate: Plate,
    wells: Sequence[str] | None = None,
    *,
    device: str = "cpu",
    code: str | None = None,
    gpu_oom: Literal["cpu", "fail"] = "cpu",
) -> ExecutionPlan:
    """Check ``pipeline`` against ``plate`` and resolve it into a plan.

    ``wells`` restricts the run (names are checked and canonicalised);
    ``code`` is the pipeline's source if the caller already has it.
    On a ``"cuda[:N]"`` device, calls with a device twin are placed on it
    (see :mod:`openhcs_nb.execution.placement`); ``gpu_oom`` says what a
    well does on a GPU out-of-memory error.

    Raises
    ------
    CompileError
        The pipeline cannot run on this plate; the message names step and key.
    UnknownWellError
        A requested well is not on the plate.
    """
    layout = plate.layout
    chosen = tuple(plate.check_well(w) for w in wells) if wells else layout.wells
    if not pipeline.steps:
        raise CompileError("the pipeline has no steps", step=pipeline.name)
    labels: list[str] = []
    steps = []
    for index, step in enumerate(pipeline.steps):
        plan = _compile_step(index, step, layout, labels, device)
        if plan.output == "labels":
            labels.append(plan.name)
        steps.append(plan)
    steps = keep_on_device(steps, len(layout.channels))
    return ExecutionPlan(
        plate_phase=_plate_phase(steps, layout),
        pipeline_name=pipeline.name,
        pipeline_code=code if code is not None else pipeline.to_code(),
        plate_ref=plate.ref,
        layout=layout,
        steps=tuple(steps),
        wells=chosen,
        confine=plate.confine,
        gpu_oom=gpu_oom,
    )


def _compile_step(
    index: int, step: Step, layout: PlateLayout, labels: list[str], device: str
) -> StepPlan:
    chains = tuple(
        _compile_chain(step, key, chain, layout, labels, device)
        for key, chain in step.chains
    )
    selected = [c.selects for c in chains if c.selects is not None]
    if len(selected) != len(set(selected)):
        raise CompileError(
            f"two keys name the same {step.group_by} (keys: {[c.key for c in chains]})",
            step=step.name,
        )
    outputs = {_step_output(c) for c in chains}
    if len(outputs) > 1:
        raise CompileError(
            "every chain of a dict pattern must end in the same kind "
            f"(got {sorted(outputs)})",
            step=step.name,
        )
    output = outputs.pop()
    measures = any(
        call.function.needs_labels or call.function.side_outputs
        for c in chains
        for call in c.calls
    )
    reads_objects = any(call.function.needs_labels for c in chains for call in c.calls)
    if output == "labels":
        _check_single_channel(step, layout, chains)
    if measures and not set(step.variable_components) <= {"channel"}:
        raise CompileError(
            "measurement functions see one field at a time: use "
            "variable_components=['channel']",
            step=step.name,
            key="variable_components",
        )
    reads_labels = reads_objects or any(c.input == "labels" for c in chains)
    return StepPlan(
        index=index,
        name=step.name,
        variable_components=step.variable_components,
        group_by=step.group_by,
        chains=chains,
        output="measure" if measures and output == "image" else output,
        labels_source=_measured_set(chains, labels) if reads_labels else None,
    )


def _step_output(chain: ChainPlan) -> str:
    return "image" if chain.output == "image" else "labels"


def _check_single_channel(
    step: Step, layout: PlateLayout, chains: tuple[ChainPlan, ...]
) -> None:
    if chains[0].input == "labels" or len(layout.channels) == 1:
        return
    if step.group_by == "channel" and len(chains) == 1:
        return
    if "channel" in step.variable_components:
        return
    if step.group_by == "channel":
        keys = ", ".join(repr(c.key) for c in chains)
        raise CompileError(
            f"a labels step segments exactly one channel, but this one has a chain "
            f"for each of {keys}; make one labels step per channel, e.g. "
            "Step(name='nuclei', func={0: [...]}, group_by='channel') and "
            "Step(name='cells', func={1: [...]}, group_by='channel')",
            step=step.name,
            key="func",
        )
    raise CompileError(
        "a labels step segments exactly one channel, and this plate has "
        f"{len(layout.channels)}: pick it with a dict pattern, e.g. "
        "func={0: [...]} with group_by='channel'",
        step=step.name,
        key="func",
    )


def _compile_chain(
    step: Step,
    key: DictKey | None,
    chain: Chain,
    layout: PlateLayout,
    labels: list[str],
    device: str,
) -> ChainPlan:
    selects = None if key is None else _resolve_key(step, key, layout)
    first = chain[0].function
    if first.input == "mask":
        raise CompileError(
            f"{first.name} takes a mask, but steps start from images or labels; "
            "put a threshold before it in the same chain",
            step=step.name,
            key=_key_text(key),
        )
    needs_labels = first.input == "labels" or any(
        c.function.needs_labels for c in chain
    )
    if needs_labels and not labels:
        raise CompileError(
            f"{first.name if first.input == 'labels' else 'a measurement'} needs "
            "labels, but no earlier step produces any",
            step=step.name,
            key=_key_text(key),
        )
    kind: Kind = first.input
    calls = []
    for call in chain:
        fn = call.function
        if fn.input != kind:
            raise CompileError(
                f"{fn.name} takes {_a(fn.input)}, but the chain gives it {_a(kind)}",
                step=step.name,
                key=_key_text(key),
            )
        given = call.kwargs_dict()
        for param in fn.params:
            if param.required and param.name not in given:
                raise CompileError(
                    f"{fn.name} needs a value for {param.name!r} ({param.help})",
                    step=step.name,
                    key=param.name,
                )
        full = _resolve_labels_refs(step, fn, fn.resolved_kwargs(given), labels)
        use = choose_device(fn, device)
        calls.append(CallPlan(fn, tuple(full.items()), use))
        kind = fn.output
    return ChainPlan(key, selects, place_calls(calls), first.input, kind)


def _plate_phase(
    steps: list[StepPlan], layout: PlateLayout
) -> IlluminationPhase | None:
    """The plate-level phase the plan needs, if a step corrects illumination.

    The flat field is fitted on the raw images, so the correcting function
    must come first in the first step, applied to single channels.

    Raises
    ------
    CompileError
        The correcting function is anywhere else, or the step stacks channels.
    """
    found: IlluminationPhase | None = None
    for step in steps:
        for chain in step.chains:
            for position, call in enumerate(chain.calls):
                if getattr(call.function, "plate_phase", None) != "illumination":
                    continue
                if step.index != 0 or position != 0:
                    raise CompileError(
                        f"{call.name} fits its flat field on the raw images: make "
                        "it the first function of the first step",
                        step=step.name,
                        key=_key_text(chain.key),
                    )
                if "channel" in step.variable_components:
                    raise CompileError(
                        f"{call.name} corrects one channel at a time: remove "
                        "'channel' from variable_components",
                        step=step.name,
                        key="variable_components",
                    )
                kwargs = dict(call.kwargs)
                channels = (
                    (chain.selects,)
                    if chain.selects is not None
                    else tuple(range(len(layout.channels)))
                )
                if found is not None:
                    channels = tuple(sorted({*found.channels, *channels}))
                found = IlluminationPhase(
                    channels=channels,
                    channel_names=tuple(layout.channels[c] for c in channels),
                    smoothing=float(kwargs["smoothing"]),  # type: ignore[arg-type]
                    method=str(kwargs["method"]),
                )
    return found


def _resolve_labels_refs(
    step: Step, fn: Function, kwargs: dict[str, Value], labels: list[str]
) -> dict[str, Value]:
    """Give every labels-name parameter the name of an existing labels set.

    ``""`` means the latest labels for a required reference (``objects``,
    ``seeds``) and "none" for an optional one (``parent``, ``children``).
    """
    for param in fn.params:
        if param.type != "labels":
            continue
        name = kwargs[param.name]
        if name == "" and not getattr(param, "optional", False):
            if not labels:
                raise CompileError(
                    f"{fn.name} needs labels for {param.name!r}, but no earlier "
                    "step produces any",
                    step=step.name,
                    key=param.name,
                )
            name = labels[-1]
        if name and name not in labels:
            earlier = ", ".join(repr(n) for n in labels) or "none"
            raise CompileError(
                f"{param.name}={name!r} names no earlier labels step "
                f"(earlier labels steps: {earlier})",
                step=step.name,
                key=param.name,
            )
        kwargs[param.name] = name
    return kwargs


def _measured_set(chains: tuple[ChainPlan, ...], labels: list[str]) -> str | None:
    """The labels set a measurement step measures: its ``objects``, else the latest."""
    for chain in chains:
        for call in chain.calls:
            named = dict(call.kwargs).get("objects")
            if call.function.needs_labels and isinstance(named, str) and named:
                return named
    return labels[-1] if labels else None


def _resolve_key(step: Step, key: DictKey, layout: PlateLayout) -> int:
    component = step.group_by or "channel"
    size = (
        len(layout.channels)
        if component == "channel"
        else getattr(layout, _AXIS_SIZE[component])
    )
    if isinstance(key, str):
        if component == "channel" and key in layout.channels:
            return layout.channels.index(key)
        expected = (
            f"one of the plate's channels {list(layout.channels)} or an index "
            f"0..{size - 1}"
            if component == "channel"
            else f"an index 0..{size - 1}"
        )
        raise CompileError(
            f"the plate has no {component} {key!r}; expected {expected}",
            step=step.name,
            key=key,
        )
    if not 0 <= key < size:
        raise CompileError(
            f"{component} index {key} is out of range: the plate has {size} "
            f"{component}{'s' if size != 1 else ''} (0..{size - 1})",
            step=step.name,
            key=str(key),
        )
    return key


def _key_text(key: DictKey | None) -> str | None:
    return None if key is None else str(key)


def _a(kind: str) -> str:
    return f"an {kind}" if kind == "image" else f"a {kind}"
