"""Run one well through a compiled plan.

A well's state is a dict of planes keyed by ``(site, t, channel, z)`` plus
named labels sets keyed by ``(site, t, z)``. Each step groups the planes by the
components it does not stack, hands each group to its chain as one ``(n, y, x)``
array, and writes the result back. A chain that returns a single plane for an
``n``-plane group collapses the stacked components (a z projection, a channel
composite). Chains ending in a mask or labels leave the images untouched and
store a labels set under the step's name.

On a GPU plan, an image chain whose output ``stays`` on the device (see
``execution/placement.py``) leaves device planes in ``images``; the
:class:`Held` record says which, so the next device chain stacks them with
``xp.stack`` instead of a copy, a CPU reader downloads them first, and
:func:`run_steps` brings the rest to the host before it returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from openhcs_nb.errors import ExecutionError
from openhcs_nb.execution.placement import run_call
from openhcs_nb.execution.plan import ChainPlan, ExecutionPlan, StepPlan
from openhcs_nb.functions._common import named_labels
from openhcs_nb.functions._xp import ArrayNamespace, cupy_namespace
from openhcs_nb.plates.model import Plate

Key = tuple[int, int, int, int]  # site, t, channel, z
LabelKey = tuple[int, int, int]  # site, t, z
_POS = {"site": 0, "t": 1, "channel": 2, "z": 3}


@dataclass
class Held:
    """Planes left on the device between steps: each key's stack and index."""

    stacks: dict[int, Any] = field(default_factory=dict)
    where: dict[Key, tuple[int, int]] = field(default_factory=dict)
    made: int = 0

    def put(self, keys: list[Key], stack: Any) -> None:
        """Record that ``keys`` are the planes of the device ``stack``, in order."""
        self.drop(keys)
        self.made += 1
        self.stacks[self.made] = stack
        self.where |= {key: (self.made, i) for i, key in enumerate(keys)}

    def drop(self, keys: list[Key]) -> None:
        """Forget ``keys`` (replaced by new planes); unused stacks are freed."""
        for key in keys:
            self.where.pop(key, None)
        used = {sid for sid, _ in self.where.values()}
        self.stacks = {sid: s for sid, s in self.stacks.items() if sid in used}

    def holds(self, keys: list[Key]) -> bool:
        """Whether every plane of ``keys`` is on the device."""
        return bool(keys) and all(key in self.where for key in keys)

    def stack(self, keys: list[Key], xp: Any) -> Any:
        """The device stack of ``keys``: a kept stack as is, else ``xp.stack``."""
        spots = [self.where[key] for key in keys]
        first = self.stacks[spots[0][0]]
        if spots == [(spots[0][0], i) for i in range(len(first))]:
            return first
        return xp.stack([self.stacks[sid][i] for sid, i in spots])

    def fetch(self, keys: list[Key], state: WellState, ns: ArrayNamespace) -> None:
        """Download the stacks holding any of ``keys``, one copy per stack.

        Every plane of those stacks becomes a host plane in ``state.images``
        (and in ``state.raw`` where the device plane was a raw one).
        """
        wanted = {self.where[key][0] for key in keys if key in self.where}
        for sid in sorted(wanted):
            host = ns.to_host(self.stacks[sid])
            for key, (owner, i) in list(self.where.items()):
                if owner != sid:
                    continue
                plane = host[i]  # one view object: raw planes are found by identity
                if state.raw.get(key) is state.images.get(key):
                    state.raw[key] = plane
                state.images[key] = plane
                del self.where[key]
            del self.stacks[sid]


@dataclass
class WellState:
    """Everything a well accumulates while its steps run."""

    well: str
    channels: list[str]
    images: dict[Key, np.ndarray]
    labels: dict[str, dict[LabelKey, np.ndarray]] = field(default_factory=dict)
    objects: list[dict[str, np.ndarray]] = field(default_factory=list)
    # One row per field and channel from image-quality measurements.
    fields: list[dict[str, np.ndarray]] = field(default_factory=list)
    # The plate's fitted flat field per channel index, when the plan has one.
    flat_fields: dict[int, np.ndarray] = field(default_factory=dict)
    # The planes as loaded (references, not copies): a final plane that is not
    # one of these objects was made by a step, so only it is stored as derived.
    raw: dict[Key, np.ndarray] = field(default_factory=dict)
    # The array namespace device calls use; None means CuPy (see placement.py).
    device: ArrayNamespace | None = None
    # Image planes a device chain left on the device for a later step.
    held: Held = field(default_factory=Held)

    def namespace(self) -> ArrayNamespace:
        """The namespace of the device planes (imports CuPy when unset)."""
        if self.device is None:
            self.device = cupy_namespace()
        return self.device

    def host_planes(self, keys: list[Key]) -> None:
        """Bring any of ``keys`` left on the device back to the host."""
        if any(key in self.held.where for key in keys):
            self.held.fetch(keys, self, self.namespace())

    def stack_for(self, chain: ChainPlan, keys: list[Key]) -> tuple[Any, bool]:
        """The ``(n, y, x)`` input of ``chain`` for ``keys``, and if on the device.

        A chain starting on the device takes planes held there without a
        copy; otherwise held planes come to the host first.
        """
        if chain.calls[0].device != "cpu" and self.held.holds(keys):
            return self.held.stack(keys, self.namespace().xp), True
        self.host_planes(keys)
        return np.stack([self.images[k] for k in keys]), False

    @classmethod
    def load(cls, plate: Plate, well: str, site: int | None = None) -> WellState:
        """Read every plane of ``well`` (or of one field) from ``plate``."""
        if site is not None:
            lay = plate.layout
            if not 0 <= site < lay.fields:
                raise ExecutionError(
                    f"site {site} is out of range: the plate has {lay.fields} fields"
                )
            well = plate.check_well(well)
            images = {
                (site, t, c, z): plate.read_image(well, site, c, z, t)
                for t in range(lay.t)
                for c in range(len(lay.channels))
                for z in range(lay.z)
            }
            return cls(well, list(lay.channels), images, raw=dict(images))
        data = plate.read_well(well)
        n_site, n_t, n_c, n_z = data.data.shape[:4]
        images = {
            key: data.data[key]  # type: ignore[index]
            for key in np.ndindex(n_site, n_t, n_c, n_z)
        }
        return cls(data.well, list(data.channels), images, raw=dict(images))


def run_steps(plan: ExecutionPlan, state: WellState, upto: int | None = None) -> None:
    """Apply the plan's steps (the first ``upto`` of them) to ``state`` in place.

    Raises
    ------
    ExecutionError
        A function returned something the plan cannot use; the message names
        the step and function. Errors raised by functions propagate as they are.
    """
    for step in plan.steps[:upto]:
        if step.output == "measure":
            _run_measure(step, state)
        elif step.chains[0].input == "labels":
            _run_on_labels(step, state)
        else:
            _run_on_images(step, state)
    state.host_planes(list(state.held.where))


def _groups(keys: list[Key], variable: tuple[str, ...]) -> Iterator[list[Key]]:
    fixed = [i for c, i in _POS.items() if c not in variable]
    order = [_POS[c] for c in variable]
    groups: dict[tuple[int, ...], list[Key]] = {}
    for key in sorted(keys):
        groups.setdefault(tuple(key[i] for i in fixed), []).append(key)
    for members in groups.values():
        yield sorted(members, key=lambda k: tuple(k[i] for i in order))


def _run_chain(
    step: StepPlan,
    chain: ChainPlan,
    stack: np.ndarray,
    state: WellState,
    fields: list[LabelKey],
    *,
    resident: bool = False,
    keep: bool = False,
    **extra: Any,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Run ``chain`` on ``stack``; ``resident``/``keep``: see ``run_call``."""
    side: dict[str, Any] = {}
    value = stack
    last = len(chain.calls) - 1
    for i, call in enumerate(chain.calls):
        kwargs = _with_labels(step, call.function, dict(call.kwargs), state, fields)
        if call.function.needs_labels:
            kwargs["labels"] = extra["labels"]
        if call.function.needs_context:
            kwargs["names"] = extra["names"]
        if getattr(call.function, "plate_phase", None) == "illumination":
            # None in a preview before the plate's fit: the function then
            # estimates the field's own illumination.
            kwargs["illumination"] = state.flat_fields.get(extra["channel"])
        # Device calls keep their output on the device until the plan's
        # download (placement.py); the chain always ends on the host.
        out = run_call(
            call,
            value,
            kwargs,
            state.device,
            resident=resident and i == 0,
            keep=keep and i == last,
        )
        if isinstance(out, tuple):
            out, more = out
            side.update(more)
        if getattr(out, "ndim", None) != 3:
            raise ExecutionError(
                f"step {step.name!r}: {call.name} returned "
                f"{getattr(out, 'shape', type(out).__name__)}, expected an (n, y, x) "
                "array"
            )
        value = out
    return value, side


def _with_labels(
    step: StepPlan,
    fn: Any,
    kwargs: dict[str, Any],
    state: WellState,
    fields: list[LabelKey],
) -> dict[str, Any]:
    """Swap each labels-name parameter for that set's planes of ``fields``.

    The function gets one labels plane per field in its stack, as a
    ``(n, y, x)`` array, or None for an optional reference left empty.
    """
    for param in fn.params:
        if param.type != "labels":
            continue
        name = kwargs[param.name]
        if not name:
            kwargs[param.name] = None
            continue
        planes = state.labels.get(name, {})
        missing = [f for f in fields if f not in planes]
        if missing:
            raise ExecutionError(
                f"step {step.name!r}: labels {name!r} have no plane for field "
                f"{missing[0][0]} (t={missing[0][1]}, z={missing[0][2]})"
            )
        kwargs[param.name] = named_labels(np.stack([planes[f] for f in fields]), name)
    return kwargs


def _only_plate_phase(chain: ChainPlan) -> bool:
    """Whether every call of ``chain`` applies a plate-level fit."""
    return all(getattr(c.function, "plate_phase", None) for c in chain.calls)


def _fields_of(members: list[Key]) -> list[LabelKey]:
    """The distinct fields ``(site, t, z)`` of a group's planes, in order."""
    return list(dict.fromkeys((k[0], k[1], k[3]) for k in members))


def _run_on_images(step: StepPlan, state: WellState) -> None:
    by = _POS[step.group_by] if step.group_by else None
    new_images: dict[Key, np.ndarray] = {}
    made: dict[LabelKey, np.ndarray] = {}
    # Planes this step leaves as they are, read at the end: a later group's
    # download may have replaced a held plane with its host copy meanwhile.
    unchanged: list[Key] = []
    order: list[Key] = []
    for members in _groups(list(state.images), step.variable_components):
        chain = step.chain_for(members[0][by]) if by is not None else step.chains[0]
        if chain is None:
            unchanged += members
            order += members
            continue
        stack, resident = state.stack_for(chain, members)
        keep = chain.output == "image" and _stays(chain, members)
        out, _ = _run_chain(
            step,
            chain,
            stack,
            state,
            _fields_of(members),
            resident=resident,
            keep=keep,
            channel=members[0][2],
        )
        targets = _targets(step, members, len(out))
        order += targets if chain.output == "image" else members
        if chain.output == "image":
            planes = dict(zip(targets, out, strict=True))  # one view per plane
            new_images.update(planes)
            state.held.drop(members)
            if keep:
                state.held.put(targets, out)
            if _only_plate_phase(chain):
                # Corrected planes are raw / flat field, both kept (the plate
                # and illumination.ome.zarr): not derived, so not stored.
                state.raw.update(planes)
            continue
        unchanged += members
        for key, plane in zip(targets, out, strict=True):
            made[(key[0], key[1], key[3])] = _as_labels(plane)
    new_images.update((k, state.images[k]) for k in unchanged)
    state.images = {k: new_images[k] for k in order}
    if step.output == "labels":
        state.labels[step.name] = made


def _stays(chain: ChainPlan, members: list[Key]) -> bool:
    """Whether the plan keeps this group's output on the device."""
    return chain.calls[-1].device != "cpu" and all(k[2] in chain.stays for k in members)


def _targets(step: StepPlan, members: list[Key], n_out: int) -> list[Key]:
    if n_out == len(members):
        return members
    if n_out == 1:
        return [members[0]]
    raise ExecutionError(
        f"step {step.name!r}: the chain turned {len(members)} planes into {n_out}; "
        "it must return as many planes as it got, or one"
    )


def _run_on_labels(step: StepPlan, state: WellState) -> None:
    assert step.labels_source is not None
    source = state.labels[step.labels_source]
    variable = tuple(c for c in step.variable_components if c != "channel") or ("site",)
    keys = [(s, t, 0, z) for (s, t, z) in source]
    made: dict[LabelKey, np.ndarray] = {}
    for members in _groups(keys, variable):
        stack = np.stack([source[(k[0], k[1], k[3])] for k in members])
        fields = _fields_of(members)
        out, _ = _run_chain(step, step.chains[0], stack, state, fields)
        for key, plane in zip(_targets(step, members, len(out)), out, strict=True):
            made[(key[0], key[1], key[3])] = _as_labels(plane)
    state.labels[step.name] = made


def _run_measure(step: StepPlan, state: WellState) -> None:
    source = state.labels[step.labels_source] if step.labels_source else None
    for members in _groups(list(state.images), ("channel",)):
        site, t, _, z = members[0]
        labels = source.get((site, t, z)) if source is not None else None
        if source is not None and labels is None:
            continue
        stack, resident = state.stack_for(step.chains[0], members)
        names = tuple(state.channels[k[2]] for k in members)
        _, side = _run_chain(
            step,
            step.chains[0],
            stack,
            state,
            [(site, t, z)],
            resident=resident,
            keep=_stays(step.chains[0], members),
            labels=labels,
            names=names,
        )
        table = side.get("objects")
        if table is not None:
            state.objects.append(_placed(table, step.labels_source, site, t, z))
        quality = side.get("fields")
        if quality is not None:
            state.fields.append(_placed(quality, None, site, t, z))


def _placed(
    table: dict[str, Any], object_set: str | None, site: int, t: int, z: int
) -> dict[str, np.ndarray]:
    """A side table with the field (and object set) it came from in front."""
    n = len(next(iter(table.values()))) if table else 0
    front: dict[str, np.ndarray] = {}
    if object_set is not None:
        front["object_set"] = np.full(n, object_set, dtype=object)
    front |= {
        "site": np.full(n, site, np.int32),
        "t": np.full(n, t, np.int32),
        "z": np.full(n, z, np.int32),
    }
    return front | {k: np.asarray(v) for k, v in table.items()}


def _as_labels(plane: np.ndarray) -> np.ndarray:
    if plane.dtype == bool:
        labels, _ = ndi.label(plane)
        return labels.astype(np.int32, copy=False)
    return plane.astype(np.int32, copy=False)
