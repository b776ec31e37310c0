"""Shared fixtures: small synthetic plates with planted ground truth."""

from __future__ import annotations

from pathlib import Path

import pytest

from openhcs_nb.plates import open_plate
from openhcs_nb.plates.synthetic import SyntheticPlateSpec, generate_plate


@pytest.fixture(scope="session")
def small_plate_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2x3-well, 2-field, 2-channel 256² OME-Zarr plate with planted nuclei."""
    path = tmp_path_factory.mktemp("plates") / "small.ome.zarr"
    spec = SyntheticPlateSpec(
        rows=2,
        columns=3,
        fields=2,
        channels=("DAPI", "GFP"),
        shape=(256, 256),
        seed=7,
        min_nuclei=4,
        max_nuclei=12,
    )
    generate_plate(spec, path, format="ome-zarr")
    return path


@pytest.fixture
def small_plate(small_plate_path: Path):
    return open_plate(small_plate_path)
