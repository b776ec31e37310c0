"""Which catalogue function stands in for an OpenHCS function, and how its kwargs read.

OpenHCS names its functions after their backend (``stack_percentile_normalize``,
``tophat``, pyclesperanto's ``top_hat``, CellProfiler's
``identify_primary_objects``) and spells parameters its own way
(``low_percentile``, ``selem_radius``, ``radius_x``). :data:`COUNTERPARTS` is the
one table that says, per OpenHCS name, which catalogue function it becomes and
how each keyword is renamed, pinned, accepted at its default only, or ignored
because it only tunes speed or display. A keyword the table does not mention
passes through unchanged when the target has a parameter of that name, and is
refused otherwise, so nothing is silently dropped.

Targets are looked up in the catalogue the loader was given at load time, so a
counterpart whose target is not in the catalogue yet (or not in a server's
catalogue) is refused with the name it would map to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from openhcs_nb.errors import PipelineError
from openhcs_nb.pipeline.catalogue import Catalogue, Function, Value
from openhcs_nb.pipeline.model import Step


@dataclass(frozen=True)
class Member:
    """An OpenHCS enum member read from a script, e.g. ``DetectionMethod.WATERSHED``."""

    enum: str
    name: str


@dataclass(frozen=True)
class Counterpart:
    """How one OpenHCS function maps onto one catalogue function."""

    target: str
    renames: Mapping[str, str] = field(default_factory=dict)
    fixed: Mapping[str, Value] = field(default_factory=dict)
    defaults_only: Mapping[str, object] = field(default_factory=dict)
    ignored: frozenset[str] = frozenset()
    # Per OpenHCS keyword: its value (enum member name, or literal) -> ours;
    # a value missing here is refused, ``None`` drops the keyword.
    values: Mapping[str, Mapping[object, Value]] = field(default_factory=dict)
    # Keywords whose OpenHCS default has no counterpart, so must be given.
    required: frozenset[str] = frozenset()
    note: str = ""


_TOPHAT = Counterpart(
    "subtract_background",
    renames={"selem_radius": "radius", "radius_x": "radius", "radius_y": "radius"},
    fixed={"method": "tophat"},
    defaults_only={"radius_z": 0.0},
    ignored=frozenset(
        {
            "downsample_factor",
            "downsample_anti_aliasing",
            "upsample_order",
            "slice_by_slice",
        }
    ),
    note="white top-hat; OpenHCS's down/upsampling knobs only trade accuracy "
    "for speed, ours picks its own shrink factor",
)
_BLUR = Counterpart(
    "gaussian_blur",
    renames={"sigma_x": "sigma", "sigma_y": "sigma"},
    defaults_only={"sigma_z": 0.0},
    ignored=frozenset({"slice_by_slice"}),
    note="isotropic in-plane blur; never across the stack axis",
)
_MEASURE = Counterpart(
    "measure_objects",
    ignored=frozenset(
        {"object_intensity_backend_provider", "object_intensity_prepared_labels"}
    ),
    note="per-object size, shape and intensity in one table",
)

COUNTERPARTS: dict[str, Counterpart] = {
    "stack_percentile_normalize": Counterpart(
        "percentile_normalize",
        renames={"low_percentile": "low", "high_percentile": "high"},
        defaults_only={"target_min": 0.0, "target_max": 65535.0},
        note="OpenHCS stretches to 0..65535 over the whole stack; ours to 0..1 "
        "per plane (a constant factor for scale-free thresholds such as Otsu)",
    ),
    "percentile_normalize": Counterpart(
        "percentile_normalize",
        renames={"low_percentile": "low", "high_percentile": "high"},
        defaults_only={"target_min": 0.0, "target_max": 65535.0},
        note="per plane in both; output range 0..1 here",
    ),
    "tophat": _TOPHAT,
    "top_hat": _TOPHAT,
    "gaussian_blur": _BLUR,
    "gaussian_filter": _BLUR,
    "create_projection": Counterpart("project_z"),
    "max_projection": Counterpart("project_z", fixed={"method": "max"}),
    "mean_projection": Counterpart("project_z", fixed={"method": "mean"}),
    "create_composite": Counterpart(
        "composite_channels",
        fixed={"method": "mean"},
        defaults_only={"weights": None},
        note="equal-weight mean of the channel stack",
    ),
    "label": Counterpart("label_objects"),
    # Object identification and measurement, provided by the lead's catalogue
    # functions when they are present.
    "count_cells_single_channel": Counterpart(
        "identify_primary",
        renames={
            "detection_method": "declump",
            "watershed_threshold_method": "threshold",
            "watershed_min_distance": "min_distance",
            "min_cell_area": "min_size",
            "max_cell_area": "max_size",
            "remove_border_cells": "exclude_border",
            "enable_preprocessing": "smoothing",
            "gaussian_sigma": "smoothing",
        },
        values={
            "detection_method": {"WATERSHED": "shape"},
            "watershed_threshold_method": {"OTSU": "otsu", "LI": "li"},
            "watershed_min_distance": {None: None},
            "enable_preprocessing": {True: None, False: 0.0},
        },
        required=frozenset({"detection_method"}),
        ignored=frozenset(
            {
                "min_sigma",
                "max_sigma",
                "num_sigma",
                "threshold",
                "overlap",
                "watershed_footprint_size",
                "watershed_max_eccentricity",
                "median_disk_size",
            }
        ),
        note="only detection_method=WATERSHED (threshold + declump) has a "
        "counterpart; blob parameters are unused there, and OpenHCS's peak "
        "footprint / eccentricity / median details are not reproduced",
    ),
    "identify_primary_objects": Counterpart("identify_primary"),
    "identify_secondary_objects": Counterpart("identify_secondary"),
    "identify_tertiary_objects": Counterpart("identify_tertiary"),
    "filter_objects": Counterpart("filter_objects"),
    "filter_objects_by_size": Counterpart(
        "remove_small_objects", renames={"min_area": "min_size", "max_area": "max_size"}
    ),
    "measure_object_intensity": _MEASURE,
    "measure_object_size_shape": _MEASURE,
    "measure_image_quality": Counterpart("measure_image_quality"),
    "measure_colocalization": Counterpart("measure_colocalisation"),
}
# Not mapped on purpose: correct_illumination_calculate and _apply are two
# steps (estimate, then divide) that together equal our correct_illumination;
# one name alone would compute something else. percentile_normalize_plane
# normalises one plane of the stack and leaves the rest, which no catalogue
# function does.


@dataclass(frozen=True)
class Mapped:
    """An imported OpenHCS function bound to its catalogue counterpart."""

    openhcs_name: str
    function: Function
    counterpart: Counterpart | None

    def call(
        self, kwargs: Mapping[object, object]
    ) -> tuple[Function, dict[str, Value]]:
        """``(function, kwargs)`` in catalogue terms.

        Raises
        ------
        PipelineError
            A keyword has no counterpart or a value cannot be expressed here;
            ``field`` is the OpenHCS keyword so the loader can point at it.
        """
        part = self.counterpart or Counterpart(self.function.name)
        params = {p.name: p for p in self.function.params}
        out: dict[str, Value] = dict(part.fixed)
        sources: dict[str, str] = {}
        missing = sorted(part.required - {str(k) for k in kwargs})
        if missing:
            raise PipelineError(
                f"{self.openhcs_name} needs {missing[0]}= here: its OpenHCS "
                f"default has no counterpart in {self.function.name}"
            )
        for key, value in kwargs.items():
            name = str(key)
            if name in part.ignored:
                continue
            if name in part.values:
                value = _translate_value(part, name, value)  # noqa: PLW2901
                if value is None:
                    continue
            if name in part.defaults_only:
                if value != part.defaults_only[name]:
                    raise PipelineError(
                        f"{self.openhcs_name}({name}={value!r}) has no openhcs-nb "
                        f"equivalent (only {part.defaults_only[name]!r})",
                        field=name,
                    )
                continue
            ours = part.renames.get(name, name)
            if ours not in params or ours in part.fixed:
                raise PipelineError(
                    f"OpenHCS parameter {name!r} of {self.openhcs_name} has no "
                    f"counterpart in {self.function.name}",
                    field=name,
                )
            converted = _convert(value, params[ours].type, params[ours].choices)
            if ours in out and out[ours] != converted:
                raise PipelineError(
                    f"{sources[ours]}={out[ours]!r} and {name}={converted!r} differ; "
                    f"{self.function.name} takes one {ours!r}",
                    field=name,
                )
            out[ours], sources[ours] = converted, name
        return self.function, out


def resolve(name: str, catalogue: Catalogue) -> Mapped | str:
    """The catalogue function for OpenHCS ``name``, or why there is none."""
    part = COUNTERPARTS.get(name)
    if part is not None and part.target in catalogue:
        return Mapped(name, catalogue[part.target], part)
    if name in catalogue:
        return Mapped(name, catalogue[name], None)
    if part is not None:
        return (
            f"OpenHCS function {name!r} has no counterpart in the function "
            f"catalogue (it would map to {part.target!r})"
        )
    return f"OpenHCS function {name!r} has no counterpart in the function catalogue"


def _translate_value(part: Counterpart, name: str, value: object) -> Value:
    table = part.values[name]
    key = value.name if isinstance(value, Member) else value
    if not isinstance(key, str | int | float | None) or key not in table:
        shown = f"{value.enum}.{value.name}" if isinstance(value, Member) else value
        raise PipelineError(
            f"{name}={shown} has no counterpart in {part.target} "
            f"(accepted: {', '.join(map(str, table))})",
            field=name,
        )
    return table[key]


def _convert(value: object, kind: str, choices: tuple[Value, ...]) -> Value:
    """OpenHCS spellings of a value: enum members, integral floats for ints."""
    if isinstance(value, Member):
        lowered = value.name.lower()
        if lowered in choices or not choices:
            return lowered
        raise PipelineError(
            f"{value.enum}.{value.name} has no counterpart (choices: "
            f"{', '.join(map(str, choices))})"
        )
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value  # type: ignore[return-value]


def build_step(**kwargs: object) -> Step:
    """``Step(...)`` with OpenHCS function references translated first.

    Raises
    ------
    PipelineError
        A keyword or value has no catalogue counterpart, or the step is invalid.
    """
    kwargs["func"] = translate(kwargs["func"])
    return Step(**kwargs)  # type: ignore[arg-type]


def translate(pattern: object) -> object:
    """Replace mapped OpenHCS functions, keeping the pattern's shape."""
    if isinstance(pattern, Mapped):
        function, kwargs = pattern.call({})
        return (function, kwargs) if kwargs else function
    if (
        isinstance(pattern, tuple)
        and len(pattern) == 2
        and isinstance(pattern[0], Mapped)
        and isinstance(pattern[1], dict)
    ):
        return pattern[0].call(pattern[1])
    if isinstance(pattern, list):
        return [translate(item) for item in pattern]
    if isinstance(pattern, dict):
        return {key: translate(value) for key, value in pattern.items()}
    return pattern
