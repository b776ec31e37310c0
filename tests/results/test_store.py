"""The results store on plain records: no execution layer, no raw pixel copies."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr
from scipy import ndimage as ndi

import openhcs_nb.results as results_pkg
from openhcs_nb.errors import PlateError
from openhcs_nb.plates.model import Plate, PlateLayout
from openhcs_nb.results.store import (
    ResultsStore,
    StoreLayout,
    WellOutputs,
    pipeline_hash,
)

SHAPE = (96, 128)
CHANNELS = ("DAPI", "GFP", "RFP")


class ArrayPlate(Plate):
    """An in-memory plate: the input the store must point to, not copy."""

    def __init__(self, planes: dict[tuple[str, int, int], np.ndarray]) -> None:
        wells = tuple(sorted({k[0] for k in planes}))
        layout = PlateLayout(
            name="mem",
            rows=("A", "B"),
            columns=(1, 2),
            wells=wells,
            fields=2,
            channels=CHANNELS,
            z=1,
            t=1,
            dtype="uint16",
            shape=SHAPE,
        )
        super().__init__("mem://plate", layout)
        self.planes = planes
        self.reads = 0

    def read_image(
        self, well: str, site: int, channel: int, z: int = 0, t: int = 0
    ) -> np.ndarray:
        self.reads += 1
        return self.planes[(well, site, channel)]


def _raw_plane(rng: np.random.Generator) -> np.ndarray:
    """Clumped blobs on uneven illumination, noise and a saturated speck."""
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    light = 300 + 200 * (xx / SHAPE[1]) + 80 * (yy / SHAPE[0])
    blobs = np.zeros(SHAPE)
    for cy, cx in rng.integers(10, 86, size=(12, 2)):
        blobs += 1500 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 40.0)
    plane = light + blobs + rng.normal(0, 40, SHAPE)
    plane[5:8, 120:123] = 65535
    return np.clip(plane, 0, 65535).astype(np.uint16)


def _labels(plane: np.ndarray) -> np.ndarray:
    labels, _ = ndi.label(plane > 900)
    return labels.astype(np.int32)


@pytest.fixture
def plate() -> ArrayPlate:
    rng = np.random.default_rng(11)
    planes = {
        (w, s, c): _raw_plane(rng)
        for w in ("A01", "B02")
        for s in range(2)
        for c in range(3)
    }
    return ArrayPlate(planes)


def _layout(ref: str) -> StoreLayout:
    return StoreLayout(
        pipeline_name="p",
        pipeline_code="p = Pipeline(name='p')\n",
        plate_ref=ref,
        plate_name="mem",
        wells=("A01", "B02"),
        fields=2,
        channels=CHANNELS,
    )


def _outputs(plate: ArrayPlate, well: str) -> WellOutputs:
    """GFP was blurred by a step (derived); DAPI and RFP are untouched."""
    planes = frozenset((s, 0, c, 0) for s in range(2) for c in range(3))
    derived = {
        (s, 0, 1, 0): ndi.gaussian_filter(plate.planes[(well, s, 1)], 2.0)
        for s in range(2)
    }
    labels = {
        "nuclei": {(s, 0, 0): _labels(plate.planes[(well, s, 0)]) for s in (0, 1)}
    }
    n = [int(labels["nuclei"][(s, 0, 0)].max()) for s in (0, 1)]
    objects = {
        "site": np.repeat([0, 1], n).astype(np.int32),
        "label": np.concatenate([np.arange(1, k + 1) for k in n]),
        "area": np.ones(sum(n)),
    }
    return WellOutputs(
        well=well,
        channels=CHANNELS,
        shape=SHAPE,
        dtype="uint16",
        planes=planes,
        derived=derived,
        labels=labels,
        objects=objects,
        pixel_paths={0: "file", 1: "file"},
    )


@dataclass(frozen=True)
class Failure:
    type: str
    message: str
    traceback: str


@dataclass
class Outcome:
    well: str
    summary: dict[str, float | int] = field(default_factory=dict)
    error: Failure | None = None


def test_when_results_package_is_scanned_then_it_never_imports_execution() -> None:
    root = Path(results_pkg.__file__).parent
    offenders = []
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [
                (path.name, n) for n in names if n.startswith("openhcs_nb.execution")
            ]
    assert len(list(root.glob("*.py"))) >= 4
    assert offenders == []


def test_when_well_written_then_only_derived_channels_and_labels_are_stored(
    plate: ArrayPlate, tmp_path: Path
) -> None:
    store = ResultsStore(tmp_path)
    store.create(_layout(plate.ref))
    store.write_well(_outputs(plate, "A01"))
    root = zarr.open_group(tmp_path / "results.ome.zarr", mode="r")
    image = root["A/1/0/0"]
    assert image.shape == (1, 1, 1, *SHAPE)  # GFP only
    omero = root["A/1/0"].attrs["omero"]["channels"]
    assert [c["label"] for c in omero] == ["GFP"]
    assert root.attrs["openhcs_nb"]["raw_pixels"] == "mem://plate"
    prov = json.loads((tmp_path / "provenance.json").read_text())
    assert prov["raw_pixels"] == {"stored": False, "plate": "mem://plate"}
    assert prov["pipeline_hash"] == pipeline_hash("p = Pipeline(name='p')\n")
    stored = np.asarray(image[0, 0, 0])
    expected = ndi.gaussian_filter(plate.planes[("A01", 0, 1)], 2.0)
    np.testing.assert_array_equal(stored, expected)
    assert not np.array_equal(stored, plate.planes[("A01", 0, 1)])


def test_when_field_read_then_raw_channels_come_from_the_opened_plate(
    plate: ArrayPlate, tmp_path: Path
) -> None:
    opened: list[str] = []

    def open_input(ref: str) -> Plate:
        opened.append(ref)
        return plate

    writer = ResultsStore(tmp_path)
    writer.create(_layout(plate.ref))
    outputs = _outputs(plate, "B02")
    writer.write_well(outputs)
    field = ResultsStore(tmp_path, open_input=open_input).read_field("B02", 1)
    assert opened == ["mem://plate"]
    assert set(field) == {"image/DAPI", "image/GFP", "image/RFP", "labels/nuclei"}
    np.testing.assert_array_equal(field["image/DAPI"], plate.planes[("B02", 1, 0)])
    np.testing.assert_array_equal(field["image/RFP"], plate.planes[("B02", 1, 2)])
    np.testing.assert_array_equal(field["image/GFP"], outputs.derived[(1, 0, 1, 0)])
    np.testing.assert_array_equal(
        field["labels/nuclei"], outputs.labels["nuclei"][(1, 0, 0)]
    )
    assert plate.reads == 2  # DAPI and RFP, not the derived GFP
    with pytest.raises(PlateError, match="input plate"):
        ResultsStore(tmp_path).read_field("B02", 1)
    with pytest.raises(PlateError, match="no results for well A01"):
        ResultsStore(tmp_path, open_input=open_input).read_field("A01", 0)


def test_when_output_is_read_by_ome_zarr_then_labels_and_image_parse(
    plate: ArrayPlate, tmp_path: Path
) -> None:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    store = ResultsStore(tmp_path)
    store.create(_layout(plate.ref))
    for well in ("A01", "B02"):
        store.write_well(_outputs(plate, well))
    zpath = tmp_path / "results.ome.zarr"
    plate_nodes = list(Reader(parse_url(str(zpath)))())
    assert plate_nodes[0].data[0].shape[1] == 1  # one derived channel, tiled
    nodes = list(Reader(parse_url(str(zpath / "B" / "2" / "0")))())
    labels = [n for n in nodes if "image-label" in n.zarr.root_attrs]
    assert [n.zarr.basename() for n in labels] == ["nuclei"]
    data = np.asarray(labels[0].data[0])
    np.testing.assert_array_equal(data[0, 0, 0], _labels(plate.planes[("B02", 0, 0)]))


def test_when_nothing_derived_then_field_image_has_no_channels(
    plate: ArrayPlate, tmp_path: Path
) -> None:
    outputs = _outputs(plate, "A01")
    bare = WellOutputs(
        well="A01",
        channels=CHANNELS,
        shape=SHAPE,
        dtype="uint16",
        planes=outputs.planes,
        labels=outputs.labels,
    )
    store = ResultsStore(tmp_path, open_input=lambda _ref: plate)
    store.create(_layout(plate.ref))
    store.write_well(bare)
    root = zarr.open_group(tmp_path / "results.ome.zarr", mode="r")
    assert root["A/1/1/0"].shape == (1, 0, 1, *SHAPE)
    field = store.read_field("A01", 1)
    for c, name in enumerate(CHANNELS):
        np.testing.assert_array_equal(
            field[f"image/{name}"], plate.planes[("A01", 1, c)]
        )


def test_when_object_sets_differ_then_finalize_joins_columns_with_nan(
    plate: ArrayPlate, tmp_path: Path
) -> None:
    store = ResultsStore(tmp_path)
    store.create(_layout(plate.ref))
    store.write_well(_outputs(plate, "A01"))
    # Two object sets in one well: each has a column the other lacks.
    both = {
        "object_set": np.array(["cells"] * 3 + ["nuclei"] * 2),
        "site": np.zeros(5, np.int32),
        "label": np.array([1, 2, 3, 1, 2]),
        "cytoplasm_area": np.array([10.0, 12.5, 7.25, np.nan, np.nan]),
        "area": np.array([np.nan, np.nan, np.nan, 4.0, 5.0]),
    }
    quality = {"site": np.array([0, 1]), "focus": np.array([0.8, 0.3])}
    b02 = _outputs(plate, "B02")
    store.write_well(
        WellOutputs(
            well="B02",
            channels=CHANNELS,
            shape=SHAPE,
            dtype="uint16",
            planes=b02.planes,
            labels=b02.labels,
            objects=both,
            field_table=quality,
        )
    )
    done = store.finalize(
        [
            Outcome("B02", {"count": 5}),
            Outcome("A01", error=Failure("ValueError", "bad", "Traceback ...")),
        ]
    )
    objects = done.objects
    assert len(objects) == len(_outputs(plate, "A01").objects["label"]) + 5
    assert str(objects["object_set"].dtype) == "string"
    assert objects.loc[objects.well == "A01", "object_set"].isna().all()
    b = objects[objects.well == "B02"].set_index(["object_set", "label"])
    assert b.loc[("cells", 2), "cytoplasm_area"] == 12.5
    assert np.isnan(b.loc[("nuclei", 1), "cytoplasm_area"])
    assert b.loc[("nuclei", 2), "area"] == 5.0
    pd.testing.assert_series_equal(
        done.fields["focus"], pd.Series([0.8, 0.3], name="focus")
    )
    assert list(done.fields["well"]) == ["B02", "B02"]
    assert done.failed == {"A01": "ValueError: bad"}
    failures = json.loads((tmp_path / "failures.json").read_text())
    assert failures["A01"]["traceback"] == "Traceback ..."
    assert list(done.wells["status"]) == ["failed", "done"]
    pixel = json.loads((tmp_path / "pixel_paths.json").read_text())
    assert pixel == {"A01": {"0": "file", "1": "file"}}
    assert ResultsStore(tmp_path).load().objects.shape == objects.shape


def test_when_store_predates_raw_pointers_then_field_reads_its_own_channels(
    plate: ArrayPlate, tmp_path: Path
) -> None:
    store = ResultsStore(tmp_path)
    store.create(_layout(plate.ref))
    outputs = _outputs(plate, "A01")
    store.write_well(outputs)
    group = zarr.open_group(tmp_path / "results.ome.zarr" / "A" / "1" / "0", mode="r+")
    del group.attrs["openhcs_nb"]  # as written before raw pixels stayed in place
    field = store.read_field("A01", 0)
    assert set(field) == {"image/GFP", "labels/nuclei"}
    np.testing.assert_array_equal(field["image/GFP"], outputs.derived[(0, 0, 1, 0)])
