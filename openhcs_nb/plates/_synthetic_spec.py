"""What determines a synthetic plate: :class:`SyntheticPlateSpec`.

Split out of :mod:`openhcs_nb.plates.synthetic` (which re-exports it) so the
truth records, which carry a spec, and the renderer can both use it without
importing each other. Only the standard library and the plate model.
"""

from __future__ import annotations

from dataclasses import dataclass

from openhcs_nb.plates.model import row_letters, well_name

#: Camera units per 12-bit unit, for each pixel type a plate may be written in.
UNITS = {"uint8": 255.0 / 4095.0, "uint16": 1.0, "float32": 1.0 / 4095.0}
STYLES = ("simple", "realistic")


@dataclass(frozen=True)
class SyntheticPlateSpec:
    """Everything that determines a synthetic plate, byte for byte.

    The fields after ``name`` only act in the ``"realistic"`` style:
    ``clump_fraction`` of the nuclei come in clumps of three to five,
    ``confluence`` is the chance that a single nucleus touches another in the
    last column (rising from 0 in the first, quadratically), ``out_of_focus``
    the chance that a field is defocused, ``debris`` the mean number of specks
    per field (a fifth as many large blobs), ``saturated`` the fraction of
    nuclei bright enough to clip. ``touching_fraction`` only acts in the
    simple style.

    Raises
    ------
    ValueError
        A value is out of range (the message lists every one that is).
    """

    rows: int = 2
    columns: int = 3
    fields: int = 1
    channels: tuple[str, ...] = ("DAPI", "Cytoplasm")
    shape: tuple[int, int] = (256, 256)
    dtype: str = "uint16"
    seed: int = 0
    min_nuclei: int = 10
    max_nuclei: int = 40
    radius: tuple[float, float] = (6.0, 10.0)
    touching_fraction: float = 0.2
    noise: float = 20.0
    illumination: float = 0.3
    z: int = 1
    t: int = 1
    name: str = "synthetic"
    style: str = "simple"
    clump_fraction: float = 0.25
    confluence: float = 1.0
    out_of_focus: float = 0.05
    debris: float = 4.0
    saturated: float = 0.01

    def __post_init__(self) -> None:
        checks = {
            "rows must be 1..32": 1 <= self.rows <= 32,
            "columns must be 1..48": 1 <= self.columns <= 48,
            "fields, z and t must be >= 1": min(self.fields, self.z, self.t) >= 1,
            "channels must be unique, non-empty names": bool(self.channels)
            and len(set(self.channels)) == len(self.channels)
            and all(self.channels),
            "shape must be two sizes >= 16": len(self.shape) == 2
            and min(self.shape) >= 16,
            f"dtype must be one of {sorted(UNITS)}": self.dtype in UNITS,
            "need 0 <= min_nuclei <= max_nuclei": 0
            <= self.min_nuclei
            <= self.max_nuclei,
            "radius must be (low, high) with 0 < low <= high": len(self.radius) == 2
            and 0 < self.radius[0] <= self.radius[1],
            "touching_fraction must be in [0, 1]": 0 <= self.touching_fraction <= 1,
            "noise must be >= 0": self.noise >= 0,
            "illumination must be in [0, 1)": 0 <= self.illumination < 1,
            "seed must be >= 0": self.seed >= 0,
            f"style must be one of {STYLES}": self.style in STYLES,
            "clump_fraction, confluence, out_of_focus, saturated: 0..1": all(
                0 <= v <= 1
                for v in (
                    self.clump_fraction,
                    self.confluence,
                    self.out_of_focus,
                    self.saturated,
                )
            ),
            "debris must be >= 0": self.debris >= 0,
        }
        failed = [text for text, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid SyntheticPlateSpec: {'; '.join(failed)}")

    @property
    def row_names(self) -> tuple[str, ...]:
        """Row letters, ``("A", "B", ...)``."""
        return tuple(row_letters(i) for i in range(self.rows))

    @property
    def wells(self) -> tuple[str, ...]:
        """Every well, row-major."""
        return tuple(
            well_name(r, c + 1) for r in self.row_names for c in range(self.columns)
        )

    def nuclei_per_field(self, column: int) -> int:
        """Nuclei asked for in each field of a column (1-based), a linear ramp."""
        return round(lerp(self.min_nuclei, self.max_nuclei, column - 1, self.columns))


def lerp(low: float, high: float, index: int, count: int) -> float:
    """``index`` of ``count`` evenly spaced steps from ``low`` to ``high``."""
    return low if count <= 1 else low + (high - low) * index / (count - 1)
