"""What the builder says is wrong, in the words of its own controls.

The model and the server's compiler explain problems in code terms
(``group_by='channel'``, ``variable_components``), which a user of the
widget never typed. :func:`check_steps` looks at the editors the way the
compiler will look at the pipeline (value kinds, one channel per
segmentation, measurements per field, labels references) and names the
control to change instead. :func:`describe` rewrites any other pipeline or
compile error the same way, so no message shown in the builder quotes code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

#: Where each model/compiler field is set in the builder.
CONTROLS = {
    "variable_components": "the stack box",
    "group_by": "the 'per channel' box",
    "func": "the step's functions and Channel dropdown",
    "name": "the step box",
    "steps": "the steps",
}
_CLAUSE = re.compile(r"(?::|;|,? e\.g\.) ")
_CODE = re.compile(r"[={}\[\]]|\w\(")


def produces_labels(info: Any) -> bool:
    """Whether a call of ``info`` ends with objects (labels)."""
    return getattr(info, "output", "image") == "labels"


def segments(info: Any) -> bool:
    """Whether ``info`` turns an image into labels (so needs one channel)."""
    return produces_labels(info) and getattr(info, "input", "image") == "image"


def measures(info: Any) -> bool:
    """Whether ``info`` measures (objects or the field), one field at a time."""
    return bool(getattr(info, "needs_labels", False)) or bool(
        getattr(info, "side_outputs", ())
    )


def labels_params(info: Any) -> list[Any]:
    """The parameters of ``info`` that name a labels set."""
    return [p for p in info.params if p.type == "labels"]


def _a(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def check_steps(
    steps: Sequence[Any], channels: int | None, local: Mapping[str, Any]
) -> str | None:
    """The first problem of the editors as one line naming a control, or None.

    ``channels`` is the plate's channel count (None: not known, so the
    one-channel rule is not checked); ``local`` is the local catalogue, which
    says which labels references may stay empty.
    """
    labels: list[str] = []
    for step in steps:
        name = step.name.value.strip()
        problem = _check_step(step, name, labels, channels, local)
        if problem:
            return f"Step '{name}': {problem}"
        calls = [c for chain in step.chains for c in chain.calls]
        if calls and produces_labels(calls[-1].info):
            labels.append(name)
    return None


def _check_step(
    step: Any,
    name: str,
    labels: list[str],
    channels: int | None,
    local: Mapping[str, Any],
) -> str | None:
    per_channel = bool(step.per_channel.value)
    stacked = list(step.components.value)
    if not stacked:
        return "choose at least one component in the stack box (e.g. site)"
    if per_channel and "channel" in stacked:
        return "remove 'channel' from the stack box, or untick 'per channel'"
    for chain in step.chains:
        problem = _check_chain(chain, labels, local)
        if problem:
            return problem
    calls = [c for chain in step.chains for c in chain.calls]
    first = step.chains[0].calls[0].info
    if any(measures(c.info) for c in calls) and not set(stacked) <= {"channel"}:
        return (
            "measurements see one field at a time: set the stack box to 'channel' only"
        )
    if produces_labels(calls[-1].info) and first.input != "labels":
        one = channels == 1 or "channel" in stacked
        if per_channel and len(step.chains) > 1:
            return (
                "a segmentation step uses one channel: remove the other channels "
                "(the x beside their Channel dropdown), or make one step each"
            )
        if not per_channel and not one and channels is not None:
            return "tick 'per channel' and choose one channel in the Channel dropdown"
    return None


def is_optional(local: Mapping[str, Any], function: str, param: str) -> bool:
    """Whether ``function``'s labels reference ``param`` may stay empty."""
    fn = local.get(function)
    found = [p for p in getattr(fn, "params", ()) if p.name == param]
    return bool(found and getattr(found[0], "optional", False))


def _check_chain(chain: Any, labels: list[str], local: Mapping[str, Any]) -> str | None:
    if not chain.calls:
        return "add a function with the 'add function' button"
    kind = chain.calls[0].info.input
    if kind == "mask":
        name = chain.calls[0].info.name
        return f"{name} needs a mask: add a threshold function before it"
    for position, call in enumerate(chain.calls):
        info = call.info
        if info.input != kind:
            return (
                f"{info.name} needs {_a(info.input)} but gets {_a(kind)}: "
                "add or move a function before it with the arrow buttons"
            )
        reads_step_labels = position == 0 and info.input == "labels"
        if (info.needs_labels or reads_step_labels) and not labels:
            return f"{info.name} works on objects: add a segmentation step above it"
        for param in labels_params(info):
            value = str(call.controls[param.name].value).strip()
            if value and value not in labels:
                known = ", ".join(labels) or "none yet"
                return (
                    f"the {param.name} box of {info.name} names no earlier "
                    f"segmentation step; type one of: {known}"
                )
            optional = is_optional(local, info.name, param.name)
            if not value and not labels and not optional:
                return f"{info.name} needs objects: add a segmentation step above it"
        for param in info.params:
            required = param.default is None
            if required and not str(call.controls[param.name].value).strip():
                return f"set {param.name} in {info.name}"
        kind = info.output
    return None


def describe(exc: BaseException, channels: Sequence[str] = ()) -> str:
    """Any pipeline/compile error as "Step 'x': what to change", one line.

    ``channels`` are the plate's channel names: a compile error keyed by one
    (or by an index) points at the Channel dropdown.
    """
    reason = str(getattr(exc, "reason", "") or "")
    step = getattr(exc, "step", None)
    field = getattr(exc, "field", None) or getattr(exc, "key", None)
    if not reason:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        where, sep, rest = text.partition(": ")
        reason = rest if sep and where.startswith("step ") else text
    reason = _plain(reason)
    control = CONTROLS.get(str(field)) if field else None
    if field and control is None:
        channel = str(field).isdigit() or str(field) in channels
        control = "the Channel dropdown" if channel else f"the {field} control"
    hint = f" (change {control})" if control else ""
    prefix = f"Step '{step}': " if step else ""
    return f"{prefix}{reason}{hint}"


def _plain(reason: str) -> str:
    """``reason`` up to its first clause that spells code."""
    kept = []
    for clause in _CLAUSE.split(reason):
        if _CODE.search(clause):
            break
        kept.append(clause)
    return ": ".join(kept).strip() or "this step does not fit the plate"
