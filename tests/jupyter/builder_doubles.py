"""Doubles for the builder tests: a connection that records its calls."""

from __future__ import annotations

import threading

import ipywidgets as widgets
import numpy as np

from openhcs_nb.client import PreviewResult
from openhcs_nb.functions import (
    builtin_catalogue,
)
from openhcs_nb.protocol import (
    PlateInfoWire,
    catalogue_to_wire,
)

SMALL = "small.ome.zarr"
PNG = b"\x89PNG\r\n\x1a\n"


class RecordingConnection:
    """Stands in for a Connection where only the calls matter: it records them."""

    def __init__(self, catalogue=None) -> None:
        self.catalogue = catalogue or catalogue_to_wire(builtin_catalogue())
        self.calls: list[dict] = []
        self.gates: dict[int, threading.Event] = {}
        self.started: dict[int, threading.Event] = {}
        self.fail_with: Exception | None = None

    def plate_info(self, plate: str) -> PlateInfoWire:
        return PlateInfoWire(
            name=plate,
            wells=["A01", "A02"],
            rows=["A"],
            columns=[1, 2],
            fields=2,
            channels=["DAPI", "GFP"],
        )

    def preview(self, pipeline, plate, well, upto=None, site=0, max_size=512):
        n = len(self.calls)
        self.calls.append(
            {
                "pipeline": pipeline,
                "plate": plate,
                "well": well,
                "upto": upto,
                "site": site,
            }
        )
        if n in self.started:
            self.started[n].set()
        if n in self.gates:
            assert self.gates[n].wait(10)
        if self.fail_with is not None:
            raise self.fail_with
        rng = np.random.default_rng(n)
        steps = tuple(s.name for s in pipeline.steps[:upto])
        images = {"input/DAPI": rng.integers(0, 999, (16, 16)).astype(np.uint16)}
        if steps:
            images[f"{steps[-1]}/DAPI"] = rng.random((16, 16)).astype(np.float32)
            images["labels/nuclei"] = np.eye(16, dtype=np.int32)
        return PreviewResult(
            well=well, site=site, step_names=steps, images=images, objects=n
        )


def controls(editor, call: int = 0, chain: int = 0) -> dict[str, widgets.Widget]:
    return editor.chains[chain].calls[call].controls
