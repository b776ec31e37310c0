"""Where each call runs, where its arrays live, and what a well needs on a GPU.

Placement is decided at compile time: a call runs on the worker's GPU when
the plan is compiled for one and the catalogue function has a device twin,
otherwise on the CPU. Arrays move only where the placement changes:

* within a chain, an upload before the first device call of a run of device
  calls and a download after the last one (:func:`place_calls`);
* across steps, an image chain ending on the device leaves a channel's
  planes there when the next step that reads that channel starts on the
  device too (``ChainPlan.stays``, set by :func:`keep_on_device`).
  Regrouping between steps is indexing and ``xp.stack``, which works on
  device arrays, so that next chain takes them without a copy.

Planes left on the device go to the host where a CPU call first reads them,
or when the well's steps end. :func:`transfers` lists every copy a well
makes, per group of one channel's planes; on the CPU the same plan runs
with the NumPy namespace, where the copies are no-ops. Before a GPU well,
:func:`estimate_device_bytes` bounds its device memory and
:func:`fits_on_device` compares it with the device's free bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from openhcs_nb.execution.plan import CallPlan, ChainPlan, ExecutionPlan, StepPlan
from openhcs_nb.functions._dispatch import device_index, device_twin
from openhcs_nb.functions._xp import ArrayNamespace, cupy_namespace

# Device bytes per pixel of a chain's stack at its peak: the float32 input
# and output plus the distance transform's float64 distances and three
# int32 index planes (expand_labels), the largest working set of any twin.
BYTES_PER_PIXEL = 4 + 4 + 8 + 3 * 4
# A plane left on the device between steps: float64 at most.
HELD_BYTES_PER_PIXEL = 8
# Keep this fraction of the free memory for CuPy's pool and fragmentation.
HEADROOM = 0.9

_AXIS = {"site": "fields", "z": "z", "t": "t"}


@dataclass(frozen=True)
class Transfer:
    """One copy between host and device, placed in the plan."""

    step: str
    key: int | str | None
    position: int  # index of the call it precedes (upload) or follows
    direction: Literal["to_device", "to_host"]
    function: str
    # The channel whose group moves; None for a chain that reads no images
    # or stacks channels.
    channel: int | None = None
    # Made by the twin itself (a measurement's host copies for its host-side
    # features), not by the runner around it.
    inside: bool = False


def choose_device(fn: Any, device: str) -> str:
    """The device one call of ``fn`` runs on in a plan compiled for ``device``.

    Raises
    ------
    PipelineError
        ``device`` is neither ``"cpu"`` nor ``"cuda[:N]"``.
    """
    if device_index(device) is None or fn.gpu_impl is None:
        return "cpu"
    return device


def place_calls(calls: Sequence[CallPlan]) -> tuple[CallPlan, ...]:
    """``calls`` with uploads and downloads set where the placement changes."""
    out = []
    for i, call in enumerate(calls):
        here = call.device != "cpu"
        before = i > 0 and calls[i - 1].device == call.device
        after = i + 1 < len(calls) and calls[i + 1].device == call.device
        out.append(
            replace(call, upload=here and not before, download=here and not after)
        )
    return tuple(out)


def reads(step: StepPlan, chain: ChainPlan, channels: int) -> tuple[int, ...] | None:
    """The channels whose image planes ``chain`` reads, one group per channel.

    ``()`` for a chain that reads labels only; None where a group holds
    several channels (a measurement, a composite) or the dict key is not a
    channel: such chains are not tracked per channel.
    """
    if chain.input != "image" and step.output != "measure":
        return ()
    if "channel" in step.variable_components:
        return None
    if chain.selects is None:
        return tuple(range(channels))
    return (chain.selects,) if step.group_by == "channel" else None


def _reader(step: StepPlan, channel: int, channels: int) -> ChainPlan | None:
    """The chain of ``step`` that reads ``channel``'s images, if any."""
    for chain in step.chains:
        read = reads(step, chain, channels)
        if read is None or channel in read:
            return chain
    return None


def keep_on_device(steps: Sequence[StepPlan], channels: int) -> list[StepPlan]:
    """``steps`` with ``stays`` set on image chains that end on the device.

    A channel stays when the next step that reads it starts its chain on
    the device; otherwise the chain downloads as :func:`place_calls` said.
    A measurement step's pass-through stack is never downloaded.

    A device measurement runs on the device only where every channel it
    reads is already there: its host-side features need host copies, so
    uploading planes just for its sums costs more than it saves. Otherwise
    it is placed on the CPU, and the ``stays`` are decided again.
    """
    placed = _with_stays(steps, channels)
    while True:
        moved = _measure_where_held(placed, channels)
        if moved == placed:
            return placed
        placed = _with_stays(moved, channels)


def _measure_where_held(steps: list[StepPlan], channels: int) -> list[StepPlan]:
    held: set[int] = set()
    every = set(range(channels))
    out = []
    for given in steps:
        step = given
        if step.output == "measure" and not every <= held:
            step = replace(step, chains=tuple(_on_cpu(c) for c in step.chains))
        for chain in step.chains:
            read = reads(step, chain, channels)
            for unit in list(read) if read else [None]:
                wanted = {unit} if unit is not None else set()
                if unit is None and read is None:
                    wanted = every
                _chain_transfers(step, chain, unit, wanted, held)
        out.append(step)
    return out


def _on_cpu(chain: ChainPlan) -> ChainPlan:
    calls = tuple(
        replace(c, device="cpu", upload=False, download=False) for c in chain.calls
    )
    return replace(chain, calls=calls)


def _with_stays(steps: Sequence[StepPlan], channels: int) -> list[StepPlan]:
    out = []
    for index, step in enumerate(steps):
        chains = []
        for chain in step.chains:
            read = reads(step, chain, channels)
            stays: tuple[int, ...] = ()
            if step.output == "measure":
                stays = tuple(range(channels))
            elif (
                read
                and chain.output == "image"
                and step.output == "image"
                and chain.calls[-1].device != "cpu"
            ):
                stays = tuple(
                    c for c in read if _next_on_device(steps[index + 1 :], c, channels)
                )
            chains.append(replace(chain, stays=stays))
        out.append(replace(step, chains=tuple(chains)))
    return out


def _next_on_device(later: Sequence[StepPlan], channel: int, channels: int) -> bool:
    for step in later:
        chain = _reader(step, channel, channels)
        if chain is not None:
            return chain.calls[0].device != "cpu"
    return False


def transfers(plan: ExecutionPlan) -> tuple[Transfer, ...]:
    """Every host/device copy a well of ``plan`` makes, per channel group, in order.

    Mirrors the runner: a device chain takes planes already on the device
    without a copy; a CPU reader downloads them first; what is left on the
    device when the steps end comes back under the step ``"(end)"``.
    """
    channels = len(plan.layout.channels)
    held: set[int] = set()
    found: list[Transfer] = []
    for step in plan.steps:
        for chain in step.chains:
            read = reads(step, chain, channels)
            units: list[int | None] = list(read) if read else [None]
            if step.output == "measure":  # one group per field
                layout = plan.layout
                units = [None] * (layout.fields * layout.t * layout.z)
            for unit in units:
                if unit is not None:
                    wanted = {unit}
                else:
                    wanted = set(range(channels)) if read is None else set()
                found += _chain_transfers(step, chain, unit, wanted, held)
    found += [
        Transfer("(end)", None, -1, "to_host", "", channel=c) for c in sorted(held)
    ]
    return tuple(found)


def _chain_transfers(
    step: StepPlan,
    chain: ChainPlan,
    unit: int | None,
    wanted: set[int],
    held: set[int],
) -> list[Transfer]:
    """The copies of one group's run of ``chain``; updates ``held`` in place."""
    calls = chain.calls
    first, last = calls[0], len(calls) - 1
    on_device = first.device != "cpu" and bool(wanted) and wanted <= held
    found = []
    if not on_device:
        found += [
            Transfer(step.name, chain.key, 0, "to_host", first.name, channel=c)
            for c in sorted(wanted & held)
        ]
        held -= wanted
    keep = bool(wanted) and wanted <= set(chain.stays)
    for i, call in enumerate(calls):
        if call.upload and not (i == 0 and on_device):
            found.append(
                Transfer(step.name, chain.key, i, "to_device", call.name, unit)
            )
        if call.device != "cpu" and call.function.needs_labels:
            labels = f"{call.name} labels"
            found.append(Transfer(step.name, chain.key, i, "to_device", labels, unit))
            found += [
                Transfer(step.name, chain.key, i, "to_host", what, unit, inside=True)
                for what in (call.name, labels)
            ]
        if call.download and not (i == last and keep):
            found.append(Transfer(step.name, chain.key, i, "to_host", call.name, unit))
    if chain.output == "image" and step.output == "image":
        if keep and unit is not None:
            held.add(unit)
        else:
            held -= wanted
    return found


def uses_device(plan: ExecutionPlan) -> bool:
    """Whether any call of ``plan`` runs on a GPU."""
    return any(
        call.device != "cpu"
        for step in plan.steps
        for chain in step.chains
        for call in chain.calls
    )


def on_cpu(plan: ExecutionPlan) -> ExecutionPlan:
    """The same plan with every call on the CPU (the out-of-memory fallback)."""

    def step_on_cpu(step: StepPlan) -> StepPlan:
        return replace(step, chains=tuple(_on_cpu(c) for c in step.chains))

    return replace(plan, steps=tuple(step_on_cpu(s) for s in plan.steps))


def _group_planes(step: StepPlan, plan: ExecutionPlan) -> int:
    layout = plan.layout
    sizes = {
        "site": layout.fields,
        "channel": len(layout.channels),
        "z": layout.z,
        "t": layout.t,
    }
    return math.prod(sizes[c] for c in step.variable_components if c in sizes) or 1


def estimate_device_bytes(plan: ExecutionPlan) -> int:
    """Peak device bytes of one well: the largest device chain's stack, worst case.

    A chain holds one group's stack (the planes its step stacks) at a time;
    :data:`BYTES_PER_PIXEL` covers the hungriest twin. Channels a chain
    leaves on the device for a later step (``stays``) add their planes at
    :data:`HELD_BYTES_PER_PIXEL` for the whole well. Zero when nothing runs
    on a device.
    """
    height, width = plan.layout.shape
    peak = 0
    for step in plan.steps:
        if any(c.device != "cpu" for chain in step.chains for c in chain.calls):
            planes = _group_planes(step, plan)
            peak = max(peak, planes * height * width * BYTES_PER_PIXEL)
    held = {
        c
        for step in plan.steps
        if step.output != "measure"
        for chain in step.chains
        if chain.calls[-1].device != "cpu"
        for c in chain.stays
    }
    layout = plan.layout
    per_channel = layout.fields * layout.t * layout.z * height * width
    return peak + len(held) * per_channel * HELD_BYTES_PER_PIXEL


def fits_on_device(free_bytes: int | None, estimate: int) -> bool:
    """Whether a well needing ``estimate`` bytes fits in ``free_bytes``.

    ``None`` (no device to ask) fits: nothing is allocated on a device then.
    """
    return free_bytes is None or estimate <= free_bytes * HEADROOM


def run_call(
    call: CallPlan,
    value: Any,
    kwargs: dict[str, Any],
    device: ArrayNamespace | None,
    *,
    resident: bool = False,
    keep: bool = False,
) -> Any:
    """Run one call where the plan put it, copying only where the plan says.

    ``device`` is the namespace device calls use (None: CuPy, imported now).
    ``resident``: ``value`` is already on the device (no upload); ``keep``:
    the output stays there for the next step (no download).

    Raises
    ------
    OptionalDependencyError
        A device call, no namespace given, and CuPy is missing.
    """
    if call.device == "cpu":
        return call.function.impl(value, **kwargs)
    twin = device_twin(call.function)
    assert twin is not None, f"{call.name} was placed on {call.device} without a twin"
    ns = device if device is not None else cupy_namespace()
    with ns.on(device_index(call.device) or 0):
        if call.upload and not resident:
            value = ns.to_device(value)
        moved = {
            key: ns.to_device(item) if key == "labels" and item is not None else item
            for key, item in kwargs.items()
        }
        out = twin(value, **moved)
        return ns.to_host(out) if call.download and not keep else out
