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


@pytest.fixture(scope="session")
def plates_root(small_plate_path: Path) -> Path:
    """The folder a test server offers plates from; holds ``small.ome.zarr``."""
    return small_plate_path.parent


SMALL_PLATE = "small.ome.zarr"


@pytest.fixture
def server_factory(tmp_path: Path, plates_root: Path):
    """Build (not start) real server processes; all are killed afterwards."""
    from server_process import ServerProcess

    made: list[ServerProcess] = []

    def make(name: str = "server", **options) -> ServerProcess:
        server = ServerProcess(tmp_path / name, plates_root, **options)
        made.append(server)
        return server

    yield make
    for server in made:
        server.kill()


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory, plates_root: Path):
    """One started server shared by a test module (plate ``small.ome.zarr``)."""
    from server_process import ServerProcess

    server = ServerProcess(tmp_path_factory.mktemp("server"), plates_root).start()
    yield server
    server.kill()


@pytest.fixture
def fresh_server(server_factory):
    """A started server of this test's own."""
    return server_factory().start()
