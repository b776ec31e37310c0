"""The planted truth of a synthetic plate, and where it is written.

:class:`GroundTruth` holds one :class:`FieldTruth` per field and serialises to
stable JSON (same truth, same bytes), written next to the plate
(``<plate>.truth.json`` beside an OME-Zarr store, ``ground_truth.json`` inside
an ImageXpress folder). Re-exported by :mod:`openhcs_nb.plates.synthetic`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from openhcs_nb.errors import PlateError, UnknownWellError
from openhcs_nb.plates._synthetic_spec import SyntheticPlateSpec
from openhcs_nb.plates.model import split_well, well_name

TRUTH_VERSION = 1


@dataclass(frozen=True)
class FieldTruth:
    """What was planted in one field.

    ``nuclei`` holds ``(y, x, mean radius, group)`` per nucleus, in label order
    (nucleus ``i`` has label ``i + 1`` in the truth masks); ``group`` is -1 for
    a nucleus on its own and the same number for every member of a touching
    pair (simple style) or clump (realistic style); ``touching_pairs`` counts
    those groups. ``saturated`` lists the labels of nuclei planted to clip
    (a nucleus overlapping one of them may clip where they overlap).
    """

    count: int
    touching_pairs: int
    nuclei: tuple[tuple[float, float, float, int], ...] = field(repr=False)
    out_of_focus: bool = False
    debris: int = 0
    saturated: tuple[int, ...] = ()


@dataclass(frozen=True)
class GroundTruth:
    """The planted truth of a whole plate."""

    spec: SyntheticPlateSpec
    fields: dict[str, tuple[FieldTruth, ...]]
    levels: dict[str, tuple[float, ...]]  # well -> planted level per channel

    def count(self, well: str) -> int:
        """Nuclei planted in all fields of ``well``.

        Raises
        ------
        UnknownWellError
            ``well`` is not a well name or not on this plate.
        """
        name = well_name(*split_well(well))
        if name not in self.fields:
            raise UnknownWellError(
                f"synthetic plate {self.spec.name!r} has no well {well!r}"
            )
        return sum(f.count for f in self.fields[name])

    def counts(self) -> dict[str, int]:
        """Nuclei planted per well, for every well."""
        return {w: self.count(w) for w in self.fields}

    def to_json(self) -> str:
        """Stable JSON (sorted keys, rounded floats): same truth, same bytes."""
        doc = {
            "version": TRUTH_VERSION,
            "spec": asdict(self.spec),
            "wells": {
                w: {
                    "levels": list(self.levels[w]),
                    "fields": [
                        {
                            "count": f.count,
                            "touching_pairs": f.touching_pairs,
                            "nuclei": [list(n) for n in f.nuclei],
                            "out_of_focus": f.out_of_focus,
                            "debris": f.debris,
                            "saturated": list(f.saturated),
                        }
                        for f in fs
                    ],
                }
                for w, fs in self.fields.items()
            },
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> GroundTruth:
        """Inverse of :meth:`to_json`.

        Raises
        ------
        PlateError
            The text is not ground truth of a version this code reads.
        """
        try:
            doc = json.loads(text)
            if doc.get("version") != TRUTH_VERSION:
                raise ValueError(f"version {doc.get('version')!r} != {TRUTH_VERSION}")
            raw = doc["spec"]
            spec = SyntheticPlateSpec(
                **{
                    f.name: tuple(raw[f.name])
                    if isinstance(raw[f.name], list)
                    else raw[f.name]
                    for f in dataclasses.fields(SyntheticPlateSpec)
                    if f.name in raw  # older truth lacks the realistic fields
                }
            )
            wells = doc["wells"]
            truth = {
                w: tuple(
                    FieldTruth(
                        f["count"],
                        f["touching_pairs"],
                        tuple((y, x, r, int(p)) for y, x, r, p in f["nuclei"]),
                        bool(f.get("out_of_focus", False)),
                        int(f.get("debris", 0)),
                        tuple(int(i) for i in f.get("saturated", ())),
                    )
                    for f in entry["fields"]
                )
                for w, entry in wells.items()
            }
            levels = {w: tuple(entry["levels"]) for w, entry in wells.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PlateError(f"not readable ground truth: {exc}") from exc
        return cls(spec, truth, levels)


def truth_path(path: Path, plate_format: str) -> Path:
    """Where the ground truth of a plate at ``path`` is written."""
    if plate_format == "imagexpress":
        return path / "ground_truth.json"
    return path.with_name(path.name + ".truth.json")


def load_ground_truth(path: Path) -> GroundTruth:
    """The ground truth written by :func:`generate_plate` for the plate at ``path``.

    Raises
    ------
    PlateError
        No ground truth file belongs to ``path``, or it is not readable.
    """
    path = Path(path)
    for candidate in (truth_path(path, "ome-zarr"), truth_path(path, "imagexpress")):
        if candidate.is_file():
            return GroundTruth.from_json(candidate.read_text(encoding="utf-8"))
    raise PlateError(f"no ground truth for {path} (looked for {path.name}.truth.json)")
