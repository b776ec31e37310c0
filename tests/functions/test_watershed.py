"""split_plane: seeded watershed per blob, linear memory, confluent fields."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fn_shapes import discs, random_nuclei
from scipy import ndimage as ndi
from skimage import feature, segmentation
from skimage.draw import ellipse

from openhcs_nb.functions._watershed import _Crop, _flood, find_markers, split_plane

_CELL = 48  # spatial hash cell for rejection sampling, > twice the largest radius


def confluent_field(
    rng: np.random.Generator, size: int, count: int, spacing: float
) -> tuple[np.ndarray, int]:
    """A bool mask of up to ``count`` random ellipses that touch and overlap.

    Centres are uniform at random; a candidate is rejected only when its
    centre lies closer than ``spacing * (r_a + r_b)`` to a placed one (``r``
    the mean radius), so with ``spacing < 1`` neighbours overlap by up to
    ``1 - spacing`` of their radii and merge into large confluent blobs.
    Returns the mask and the number placed.
    """
    mask = np.zeros((size, size), dtype=bool)
    grid: dict[tuple[int, int], list[tuple[float, float, float]]] = {}
    placed = 0
    for _ in range(count * 40):
        if placed == count:
            break
        y, x = rng.uniform(18, size - 18, 2)
        a = rng.uniform(9.0, 17.0)
        b = a * rng.uniform(0.65, 1.0)
        r = float(np.sqrt(a * b))
        gy, gx = int(y // _CELL), int(x // _CELL)
        near = (
            p
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            for p in grid.get((gy + dy, gx + dx), ())
        )
        if any(
            (py - y) ** 2 + (px - x) ** 2 < (spacing * (pr + r)) ** 2
            for py, px, pr in near
        ):
            continue
        grid.setdefault((gy, gx), []).append((y, x, r))
        rr, cc = ellipse(y, x, a, b, shape=mask.shape, rotation=rng.uniform(0, np.pi))
        mask[rr, cc] = True
        placed += 1
    return mask, placed


_CONFLUENT_RUN = """
import json, resource, sys, time, tracemalloc
import numpy as np
from scipy import ndimage as ndi
from test_watershed import confluent_field
from openhcs_nb.functions._watershed import split_plane

mask, planted = confluent_field(np.random.default_rng(7), 2048, 7000, 0.72)
blobs = ndi.label(mask, structure=np.ones((3, 3), bool))[0]
boxes = ndi.find_objects(blobs)
largest = max((s[0].stop - s[0].start + 2) * (s[1].stop - s[1].start + 2) for s in boxes)
del blobs
out = np.empty(mask.shape, np.int32)
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
count = split_plane(mask, 5, out)
seconds = time.perf_counter() - start
rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
tracemalloc.start()
split_plane(mask, 5, out)
traced = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
json.dump(dict(planted=planted, count=count, seconds=seconds, traced=traced,
               rss_growth=rss_after - rss_before, largest_crop=largest,
               pixels=mask.size, cover=float(mask.mean())), sys.stdout)
"""


@pytest.mark.slow
def test_when_field_is_confluent_2048_then_memory_is_linear_and_count_is_close():
    """7000 planted ellipses covering ~64% of a 2048^2 plane, one huge blob.

    Bounds (bytes): traced peak <= 48 x the largest blob's crop pixels
    (measured 34 B per crop pixel, 24 B per plane pixel, the crop being 71%
    of the plane); RSS growth of the process (which also sees skimage's
    untraced C heap) <= 64 x plane pixels (measured 17).
    The count must be within 6% of the planted count: heavily overlapping
    ellipses merge into one peak, so a few percent are lost honestly.
    """
    env = dict(os.environ)
    here = Path(__file__).parent
    env["PYTHONPATH"] = os.pathsep.join([str(here), str(here.parents[1])])
    done = subprocess.run(
        [sys.executable, "-c", _CONFLUENT_RUN],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=True,
    )
    r = json.loads(done.stdout)
    print(
        f"\nconfluent 2048^2: planted {r['planted']} found {r['count']} in "
        f"{r['seconds']:.2f} s; traced peak {r['traced'] / r['pixels']:.1f} B/px, "
        f"RSS growth {r['rss_growth'] / r['pixels']:.1f} B/px, largest crop "
        f"{r['largest_crop']} px, cover {r['cover']:.2f}"
    )
    assert r["planted"] >= 6500
    assert r["largest_crop"] > r["pixels"] // 8  # truly confluent, not sparse
    assert abs(r["count"] - r["planted"]) <= 0.06 * r["planted"]
    assert r["traced"] <= 48 * r["largest_crop"]
    assert r["rss_growth"] <= 64 * r["pixels"]
    assert r["seconds"] < 60


def _skimage_recipe(mask: np.ndarray, min_distance: int) -> np.ndarray:
    """The textbook recipe, per 8-connected blob, as an oracle."""
    blobs = ndi.label(mask, structure=np.ones((3, 3), bool))[0]
    dist = ndi.distance_transform_edt(mask)
    peaks = feature.peak_local_max(
        dist, min_distance=min_distance, labels=blobs, exclude_border=False
    )
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return segmentation.watershed(-dist, markers, mask=mask, connectivity=2)


def _agree(ours: np.ndarray, theirs: np.ndarray, iou: float) -> int:
    """Objects of ``ours`` whose best match in ``theirs`` reaches ``iou``."""
    hits = 0
    for label in range(1, int(ours.max()) + 1):
        mine = ours == label
        other = np.bincount(theirs[mine]).argmax()
        if other:
            theirs_mask = theirs == other
            if (mine & theirs_mask).sum() / (mine | theirs_mask).sum() >= iou:
                hits += 1
    return hits


def test_when_nuclei_are_random_then_split_agrees_with_skimage_recipe():
    rng = np.random.default_rng(3)
    mask, _ = random_nuclei(rng, 256, 90)
    out = np.empty(mask.shape, np.int32)
    count = split_plane(mask, 5, out)
    theirs = _skimage_recipe(mask, 5)
    expected = int(theirs.max())
    assert count == pytest.approx(expected, abs=3)
    assert _agree(out, theirs, 0.8) >= 0.9 * expected


def test_when_split_then_labels_are_dense_connected_and_cover_the_mask():
    rng = np.random.default_rng(5)
    mask, _ = confluent_field(rng, 300, 150, 0.7)
    out = np.empty(mask.shape, np.int32)
    count = split_plane(mask, 4, out)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(np.unique(out), np.arange(count + 1))
    np.testing.assert_array_equal(out > 0, mask)
    for label, box in enumerate(ndi.find_objects(out), start=1):
        pieces = ndi.label(out[box] == label, structure=np.ones((3, 3), bool))[1]
        assert pieces == 1


def test_when_five_unequal_discs_clump_then_five_objects_result():
    shape = (90, 140)
    parts = discs(
        shape, [(45, 20, 12), (45, 40, 10), (36, 55, 9), (50, 70, 13), (48, 92, 11)]
    )
    mask = np.logical_or.reduce(parts)
    assert ndi.label(mask, structure=np.ones((3, 3), bool))[1] == 1
    out = np.empty(shape, np.int32)
    assert split_plane(mask, 5, out) == 5
    centres = [(45, 20), (45, 40), (36, 55), (50, 70), (48, 92)]
    assert len({int(out[c]) for c in centres}) == 5


def test_when_blob_is_a_diagonal_chain_then_corner_pixels_are_labelled():
    mask = np.zeros((20, 20), bool)
    for i in range(2, 18):
        mask[i, i] = True
    out = np.empty(mask.shape, np.int32)
    count = split_plane(mask, 3, out)
    assert count >= 1
    assert (out[mask] > 0).all()


def test_when_peaks_crowd_then_markers_are_min_distance_apart():
    rng = np.random.default_rng(9)
    height = ndi.gaussian_filter(rng.random((120, 120)), 2)
    blob = np.ones_like(height, dtype=bool)
    markers = find_markers(height, blob, 6)
    centres = np.array(
        ndi.center_of_mass(markers > 0, markers, range(1, markers.max() + 1))
    )
    assert len(centres) >= 4
    gaps = np.abs(centres[:, None, :] - centres[None, :, :]).max(axis=2)
    np.fill_diagonal(gaps, np.inf)
    assert gaps.min() > 6
    # Highest first: marker 1 sits on the global maximum.
    assert markers[np.unravel_index(np.argmax(height), height.shape)] == 1


def test_when_crops_are_flooded_together_then_each_equals_its_own_flood():
    rng = np.random.default_rng(12)
    mask, _ = confluent_field(rng, 300, 150, 0.85)
    mask[100:130, :3] = True  # blobs that touch the crop edge, no margin there
    blobs, count = ndi.label(mask, structure=np.ones((3, 3), bool))
    pending = []
    for label, box in enumerate(ndi.find_objects(blobs), start=1):
        blob = blobs[box] == label
        level = ndi.distance_transform_edt(blob)
        markers = find_markers(level, blob, 3)
        if markers.max() >= 2:
            pending.append(_Crop(label, box, blob, level, markers, int(markers.max())))
    assert len(pending) >= 5
    for together, p in zip(_flood(pending), pending, strict=True):
        alone = segmentation.watershed(-p.level, p.markers, mask=p.blob, connectivity=2)
        np.testing.assert_array_equal(together, alone)


def test_when_flood_is_nearest_then_each_pixel_joins_its_closest_marker():
    """Oracle: in a convex blob the 8-connected flood from single-pixel peaks
    on a flat surface gives each pixel the marker nearest in chessboard
    distance (pixels equally near two markers are left out)."""
    from openhcs_nb.functions._watershed import split_blobs

    mask = np.zeros((70, 120), bool)
    mask[5:65, 5:115] = True
    centres = [(20, 25), (50, 60), (25, 95)]
    yy, xx = np.mgrid[:70, :120]
    bumps = sum(np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 200.0) for y, x in centres)

    def surface(blob: np.ndarray, box: tuple[slice, slice]) -> np.ndarray:
        del blob
        return bumps[box]

    out = np.empty(mask.shape, np.int32)
    assert split_blobs(mask, 8, out, surface, nearest=True) == 3
    far = np.stack([np.maximum(abs(yy - y), abs(xx - x)) for y, x in centres])
    ranked = np.sort(far, axis=0)
    clear = mask & (ranked[0] < ranked[1])
    closest = np.argmin(far, axis=0)
    ids = {int(out[y, x]): k for k, (y, x) in enumerate(centres)}
    assert len(ids) == 3
    found = np.vectorize(ids.get)(out[clear])
    np.testing.assert_array_equal(found, closest[clear])


def test_when_blob_declumps_a_confluent_field_then_memory_stays_linear():
    """Traced peak of declump_plane("blob") on a confluent 1024^2 field.

    Measured 37.5 B per plane pixel (the blob surface's three float32 planes
    plus the flood's crop buffers) and 1773 of 1800 planted found; the bound
    is 64 B/px, the count within 10%.
    """
    import tracemalloc

    from openhcs_nb.functions._declump import declump_plane

    mask, planted = confluent_field(np.random.default_rng(3), 1024, 1800, 0.72)
    image = ndi.gaussian_filter(mask.astype(np.float32) * 800, 1.0) + 100
    out = np.empty(mask.shape, np.int32)
    tracemalloc.start()
    count = declump_plane(
        mask, image, method="blob", min_distance=5, smoothing=0, out=out
    )
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"\nblob 1024^2: planted {planted} found {count}, {traced / mask.size:.1f} B/px"
    )
    assert abs(count - planted) <= 0.1 * planted
    assert traced <= 64 * mask.size
