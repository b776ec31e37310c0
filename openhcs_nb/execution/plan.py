"""The compiled form of a pipeline: typed plans, no string-keyed dicts.

A plan is everything a worker needs to process a well without asking anyone:
the plate reference (never pixels), and per step the resolved chains with full
parameter values, the value kinds flowing through them and the device to use.
Plans are small, immutable and picklable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from openhcs_nb.pipeline.catalogue import Function, Kind, Value
from openhcs_nb.plates._containment import Confinement
from openhcs_nb.plates.model import PlateLayout

StepOutput = Literal["image", "labels", "measure"]
Placement = Literal["cpu", "gpu"]


@dataclass(frozen=True)
class CallPlan:
    """One function call with every parameter resolved."""

    function: Function
    kwargs: tuple[tuple[str, Value], ...]
    device: str = "cpu"
    # Transfers around a device call (see execution/placement.py): copy the
    # input to the device before it / the output to the host after it.
    upload: bool = False
    download: bool = False

    @property
    def name(self) -> str:
        """The catalogue name of the function."""
        return self.function.name

    @property
    def placement(self) -> Placement:
        """Where the call runs: ``"gpu"`` for a CUDA device, else ``"cpu"``."""
        return "cpu" if self.device == "cpu" else "gpu"


@dataclass(frozen=True)
class ChainPlan:
    """A chain bound to one value of the step's ``group_by`` component.

    ``selects`` is the component index the dict key resolved to (a channel
    index, say), or None for a plain pattern that applies to every group.
    """

    key: int | str | None
    selects: int | None
    calls: tuple[CallPlan, ...]
    input: Kind
    output: Kind
    # Channels whose output this chain leaves on the device for the next
    # step's device call, instead of its last call's download (placement.py).
    stays: tuple[int, ...] = ()


@dataclass(frozen=True)
class StepPlan:
    """One step: how to group the well's planes and which chain each group gets.

    ``output`` says what the step produces: new images, a labels set named
    ``name`` (the images stay as they were), or measurements (images pass
    through). ``labels_source`` is the labels set read by chains that start
    from labels or by measurement functions.
    """

    index: int
    name: str
    variable_components: tuple[str, ...]
    group_by: str | None
    chains: tuple[ChainPlan, ...]
    output: StepOutput
    labels_source: str | None = None

    def chain_for(self, value: int) -> ChainPlan | None:
        """The chain for a group whose ``group_by`` component equals ``value``."""
        for chain in self.chains:
            if chain.selects is None or chain.selects == value:
                return chain
        return None


@dataclass(frozen=True)
class IlluminationPhase:
    """The plate-level flat-field fit that runs before any well.

    ``channels`` are the channel indices the correcting step applies to;
    ``smoothing`` is a Gaussian sigma as a fraction of the fit grid's shorter
    side; ``method`` is "background" (block low percentile) or "mean".
    """

    channels: tuple[int, ...]
    channel_names: tuple[str, ...]
    smoothing: float
    method: str


@dataclass(frozen=True)
class ExecutionPlan:
    """A pipeline compiled against one plate."""

    pipeline_name: str
    pipeline_code: str
    plate_ref: str
    layout: PlateLayout
    steps: tuple[StepPlan, ...]
    wells: tuple[str, ...]
    # The plate roots a worker must reopen ``plate_ref`` under (None: local).
    confine: Confinement | None = None
    # Set when the first step corrects illumination: fitted before the wells.
    plate_phase: IlluminationPhase | None = None
    # On a GPU out-of-memory error: rerun the well on the CPU, or fail it.
    gpu_oom: Literal["cpu", "fail"] = "cpu"

    @property
    def labels_names(self) -> tuple[str, ...]:
        """Names of the labels sets the pipeline produces, in order."""
        return tuple(s.name for s in self.steps if s.output == "labels")
