"""napari pop-out: streamed wells become layers tiled like the plate (Xvfb)."""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

from openhcs_nb.errors import OptionalDependencyError
from openhcs_nb.jupyter.napari_view import (
    NoDisplayError,
    check_napari,
    row_index,
    show_napari,
)

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the display check is Linux's"
)
# Checked at collection, after pytest-xvfb has set DISPLAY: once a test asks
# for qtbot, Qt aborts the whole process when there is no display.
needs_display = pytest.mark.skipif(
    sys.platform.startswith("linux")
    and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")),
    reason="no display: install xvfb (pytest-xvfb starts it)",
)


@pytest.fixture
def quiet_caches(tmp_path, monkeypatch):
    """Caches in tmp; and no leftover IPython shell from another test module.

    napari calls ``get_ipython().enable_gui("qt")`` when a shell exists, which
    the plain ``InteractiveShell`` some tests create does not implement.
    """
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setattr(InteractiveShell, "_instance", None)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))


def test_when_rows_have_two_letters_then_index_continues_after_z():
    assert [row_index(r) for r in ("A", "H", "Z", "AA", "AF")] == [0, 7, 25, 26, 31]


@linux_only
def test_when_no_display_then_the_error_points_to_the_inline_viewer(
    scripted, monkeypatch
):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(NoDisplayError, match='viewer="inline"'):
        show_napari(scripted())


@pytest.fixture
def no_display(monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@linux_only
def test_when_no_display_then_check_napari_refuses_before_importing_it(no_display):
    no_display.setitem(sys.modules, "napari", None)  # importing would fail loudly
    with pytest.raises(NoDisplayError, match="DISPLAY"):
        check_napari()


@linux_only
def test_when_qt_draws_offscreen_then_no_display_is_needed(no_display):
    no_display.setenv("QT_QPA_PLATFORM", "offscreen")
    if importlib.util.find_spec("napari") is not None:
        check_napari()
    no_display.setitem(sys.modules, "napari", None)
    with pytest.raises(OptionalDependencyError, match=r"openhcs-nb\[napari\]"):
        check_napari()


@linux_only
def test_when_napari_is_missing_then_the_error_names_the_extra(scripted, monkeypatch):
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setitem(sys.modules, "napari", None)  # makes `import napari` fail
    with pytest.raises(OptionalDependencyError, match=r"openhcs-nb\[napari\]"):
        show_napari(scripted())


@pytest.mark.napari
@needs_display
def test_when_wells_stream_then_layers_appear_tiled_like_the_plate(
    quiet_caches, qtbot, scripted, events
):
    napari = pytest.importorskip("napari")
    viewer = napari.Viewer(show=True)
    try:
        execution = scripted(wells=("A01", "B02", "B03"))
        assert show_napari(execution, viewer) is viewer
        a01, b02 = events.done("A01", seed=1), events.done("B02", seed=2, seq=2)
        execution.emit(a01)
        execution.emit(b02)
        execution.emit(events.failed("B03", seq=3))
        execution.finish()
        qtbot.waitUntil(lambda: "B03" in viewer.text_overlay.text, timeout=20000)

        names = [layer.name for layer in viewer.layers]
        assert names == [
            "A01 DAPI",
            "A01 GFP",
            "A01 nuclei",
            "B02 DAPI",
            "B02 GFP",
            "B02 nuclei",
        ]
        assert viewer.text_overlay.text == "failed: B03 (ValueError: no nuclei)"
        assert viewer.text_overlay.visible
        dapi = viewer.layers["B02 DAPI"]
        assert np.array_equal(dapi.data, b02.previews["image/DAPI"])
        assert tuple(dapi.translate) == pytest.approx((32 * 1.1, 32 * 1.1))
        assert tuple(viewer.layers["A01 DAPI"].translate) == (0.0, 0.0)
        labels = viewer.layers["A01 nuclei"]
        assert isinstance(labels, napari.layers.Labels)
        assert np.array_equal(labels.data, a01.previews["labels/nuclei"])
        assert viewer.layers["A01 GFP"].colormap.name == "green"

        viewer.reset_view()
        shot = viewer.screenshot(canvas_only=True, flash=False)
        assert shot.ndim == 3
        lit = (shot[..., :3] > 20).any(axis=-1)
        assert lit.mean() > 0.01, "the canvas is black"
    finally:
        viewer.close()


@pytest.mark.napari
@needs_display
def test_when_a_real_execution_streams_then_every_well_gets_layers(
    quiet_caches, qtbot, conn
):
    napari = pytest.importorskip("napari")
    from openhcs_nb import nuclei_count_pipeline

    viewer = napari.Viewer(show=True)
    try:
        execution = conn.submit(nuclei_count_pipeline(), "small.ome.zarr")
        show_napari(execution, viewer)
        qtbot.waitUntil(lambda: len(viewer.layers) == 6 * 3, timeout=60000)
        names = {layer.name for layer in viewer.layers}
        assert {"A01 DAPI", "A01 GFP", "B03 DAPI"} <= names
        assert sum(isinstance(x, napari.layers.Labels) for x in viewer.layers) == 6
    finally:
        viewer.close()
