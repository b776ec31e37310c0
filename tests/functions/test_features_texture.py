"""Haralick texture, granularity and radial distribution."""

from __future__ import annotations

import mahotas
import numpy as np
import pytest
from feature_images import ellipse, irregular_labels, noisy_image
from scipy import ndimage as ndi

from openhcs_nb.functions._features_texture import (
    HARALICK_NAMES,
    granularity,
    haralick_features,
    quantise,
    radial_distribution,
)


@pytest.fixture(scope="module")
def field():
    rng = np.random.default_rng(5)
    labels = irregular_labels(rng)
    image = noisy_image(rng, labels) + rng.gamma(2.0, 10.0, labels.shape)
    return labels, image.astype(np.float32)


def _cooccurrence(grey: np.ndarray, mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Symmetric co-occurrence of pairs with both pixels in the mask."""
    h, w = mask.shape
    size = int(grey.max()) + 1
    counts = np.zeros((size, size))
    for y in range(h):
        for x in range(w):
            y2, x2 = y + dy, x + dx
            if mask[y, x] and 0 <= y2 < h and 0 <= x2 < w and mask[y2, x2]:
                counts[grey[y, x], grey[y2, x2]] += 1
                counts[grey[y2, x2], grey[y, x]] += 1
    return counts / counts.sum()


def test_when_object_cropped_then_features_match_mahotas_and_definitions(field):
    labels, image = field
    scale = 2
    table = haralick_features(labels, image, scale=scale, levels=32)
    row = int(np.flatnonzero(table["label"] == 20)[0])  # the concave object
    window = ndi.find_objects(labels)[19]
    mask = labels[window] == 20
    grey = quantise(image.astype(np.float64), 32)[window]
    direct = mahotas.features.haralick(
        np.where(mask, grey, 0), ignore_zeros=True, distance=scale, return_mean=True
    )
    ours = np.array([table[f"texture_{n}_{scale}"][row] for n in HARALICK_NAMES])
    np.testing.assert_allclose(ours, direct, rtol=1e-10)
    # Haralick's definitions, from a hand-built co-occurrence matrix.
    asm, contrast, idm, entropy = [], [], [], []
    for dy, dx in ((0, 1), (1, 1), (1, 0), (1, -1)):
        p = _cooccurrence(grey.astype(np.intp), mask, dy * scale, dx * scale)
        i, j = np.indices(p.shape)
        asm.append(np.sum(p**2))
        contrast.append(np.sum((i - j) ** 2 * p))
        idm.append(np.sum(p / (1 + (i - j) ** 2)))
        entropy.append(-np.sum(p[p > 0] * np.log2(p[p > 0])))
    assert ours[0] == pytest.approx(np.mean(asm))
    assert ours[1] == pytest.approx(np.mean(contrast))
    assert ours[4] == pytest.approx(np.mean(idm))
    assert ours[8] == pytest.approx(np.mean(entropy))


def test_when_levels_are_shifted_then_every_object_still_matches_mahotas(field):
    labels, image = field
    table = haralick_features(labels, image, scale=1, levels=256)
    grey = quantise(image.astype(np.float64), 256)
    shifts = []
    for row, label in enumerate(table["label"]):
        window = ndi.find_objects(labels)[label - 1]
        mask = labels[window] == label
        crop = np.where(mask, grey[window], 0)
        ours = np.array([table[f"texture_{n}_1"][row] for n in HARALICK_NAMES])
        try:
            direct = mahotas.features.haralick(
                crop, ignore_zeros=True, distance=1, return_mean=True
            )
        except ValueError:
            assert np.all(np.isnan(ours))
            continue
        shifts.append(int(crop[mask].min()) - 1)
        np.testing.assert_allclose(ours, direct, rtol=1e-9, atol=1e-12)
    assert len(shifts) >= 8
    assert min(shifts) > 10  # the shortcut was really exercised


def test_when_object_too_small_for_scale_then_texture_is_nan(field):
    labels, image = field
    table = haralick_features(labels, image, scale=3)
    one_pixel = int(np.flatnonzero(table["label"] == 30)[0])
    assert all(np.isnan(table[f"texture_{n}_3"][one_pixel]) for n in HARALICK_NAMES)
    big = int(np.flatnonzero(table["label"] == 20)[0])
    assert np.isfinite(table["texture_contrast_3"][big])


def test_when_texture_is_coarser_then_contrast_at_scale_one_is_lower():
    rng = np.random.default_rng(1)
    labels = np.zeros((64, 128), np.int32)
    labels[4:60, 4:60] = 1
    labels[4:60, 68:124] = 2
    fine = rng.normal(100, 20, (64, 128))
    coarse = ndi.zoom(rng.normal(100, 20, (16, 32)), 4, order=0)
    image = np.where(np.arange(128) < 64, fine, coarse) + rng.normal(0, 2, (64, 128))
    table = haralick_features(labels, image, scale=1, levels=64)
    assert table["texture_contrast_1"][0] > 3 * table["texture_contrast_1"][1]
    assert table["texture_correlation_1"][1] > table["texture_correlation_1"][0]


def _grains_and_blobs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Left object: many small bright grains. Right object: a few big blobs."""
    shape = (160, 320)
    labels = np.zeros(shape, np.int32)
    labels[10:150, 10:150] = 1
    labels[10:150, 170:310] = 2
    image = rng.normal(20, 3, shape) + np.linspace(0, 10, shape[1])  # uneven light
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for _ in range(120):
        y, x = rng.uniform(15, 145), rng.uniform(15, 145)
        image[(yy - y) ** 2 + (xx - x) ** 2 <= 2.5**2] += 100
    for _ in range(6):
        y, x = rng.uniform(40, 120), rng.uniform(200, 280)
        image[(yy - y) ** 2 + (xx - x) ** 2 <= 18**2] += 100
    return labels, image


def test_when_grains_are_small_then_spectrum_peaks_earlier():
    labels, image = _grains_and_blobs(np.random.default_rng(3))
    table = granularity(labels, image, spectrum=8, subsample=0.5)
    spectra = np.array(
        [[table[f"granularity_{k}"][r] for k in range(1, 9)] for r in (0, 1)]
    )
    assert np.all(spectra >= -1e-12)
    assert np.all(spectra.sum(axis=1) <= 1 + 1e-9)
    grains, blobs = spectra
    assert np.argmax(grains) < np.argmax(blobs)
    assert grains[:2].sum() > 2 * blobs[:2].sum()
    assert blobs[4:].sum() > 2 * grains[4:].sum()


def test_when_background_is_removed_then_an_offset_no_longer_dilutes_spectrum():
    labels, image = _grains_and_blobs(np.random.default_rng(9))
    base = granularity(labels, image, spectrum=4, subsample=0.5, background_radius=10)
    lifted = image + 500.0
    plain = granularity(labels, lifted, spectrum=4, subsample=0.5)
    cleaned = granularity(
        labels, lifted, spectrum=4, subsample=0.5, background_radius=10
    )
    for k in range(1, 5):
        name = f"granularity_{k}"
        np.testing.assert_allclose(cleaned[name], base[name], rtol=1e-6, atol=1e-9)
    assert plain["granularity_1"][0] < 0.5 * cleaned["granularity_1"][0]


def test_when_subsample_is_one_then_first_step_matches_an_opening():
    from skimage.morphology import disk, reconstruction

    rng = np.random.default_rng(4)
    labels = irregular_labels(rng)
    image = noisy_image(rng, labels).astype(np.float64)
    table = granularity(labels, image, spectrum=1, subsample=1.0)
    rebuilt = reconstruction(
        ndi.grey_erosion(image, footprint=disk(1)), image, footprint=disk(1)
    )
    for row, label in enumerate(table["label"]):
        mask = labels == label
        expected = (image[mask].mean() - rebuilt[mask].mean()) / image[mask].mean()
        assert table["granularity_1"][row] == pytest.approx(expected, rel=1e-9)


def test_when_signal_sits_in_a_ring_then_outer_bins_hold_most_of_it():
    rng = np.random.default_rng(6)
    shape = (80, 80)
    yy, xx = np.mgrid[:80, :80]
    labels = np.zeros(shape, np.int32)
    rim = ellipse(shape, (40, 40), (30, 24), 0.3)
    labels[rim] = 1
    labels[ellipse(shape, (10, 70), (8, 6), 0.0) & ~rim] = 2  # centre-bright
    r = np.hypot((yy - 40) / 30, (xx - 40) / 24)
    image = np.where(r > 0.7, 200.0, 20.0) + rng.normal(0, 5, shape)
    peak = 20 + 150 * np.exp(-((yy - 10) ** 2 + (xx - 70) ** 2) / 18)
    image = np.where(labels == 2, peak + rng.normal(0, 5, shape), image)
    table = radial_distribution(labels, np.clip(image, 0, None), bins=4)
    fracs = np.array(
        [[table[f"radial_frac_{k}_of_4"][r] for k in range(1, 5)] for r in (0, 1)]
    )
    np.testing.assert_allclose(fracs.sum(axis=1), 1.0)
    assert fracs[0, 2:].sum() > 0.75
    assert fracs[0, 3] > fracs[0, 0]
    centre_bright = [table[f"radial_mean_frac_{k}_of_4"][1] for k in (1, 4)]
    assert centre_bright[0] > 1.5 > 1.0 > centre_bright[1]
    assert (
        table["radial_mean_frac_4_of_4"][0] > 1.0 > table["radial_mean_frac_1_of_4"][0]
    )


def test_when_measured_then_radial_bins_match_a_per_pixel_loop(field):
    labels, image = field
    table = radial_distribution(labels, image, bins=3)
    label = 5
    row = int(np.flatnonzero(table["label"] == label)[0])
    mask = labels == label
    inside = np.argwhere(mask)
    outside = np.argwhere(~np.pad(mask, 1))[:, :] - 1
    to_edge = np.array([np.min(np.hypot(*(outside - p).T)) for p in inside])
    centre = inside[np.argmax(to_edge)]
    to_centre = np.hypot(*(inside - centre).T)
    ring = np.minimum((3 * to_centre / (to_centre + to_edge)).astype(int), 2)
    values = image[mask].astype(np.float64)
    expected = np.bincount(ring, weights=values, minlength=3) / values.sum()
    got = [table[f"radial_frac_{k}_of_3"][row] for k in (1, 2, 3)]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
