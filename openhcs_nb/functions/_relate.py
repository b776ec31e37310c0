"""Relationships between label images: tertiary objects, parents, filters, F1.

Every function here works from a sparse contingency table: the pixels where
both label images are non-zero are turned into one int64 key per pixel
(``a * (max_b + 1) + b``) and counted with ``np.unique``. That costs O(pixels)
memory (8 bytes per overlapping pixel plus the input copies it needs) and
O(pixels log pixels) time, and never a dense ``(n_a x n_b)`` table, which
for two 5000-object images would be 25 million cells.

"Present labels" means the non-zero values that occur in an image, in
ascending order; per-object arrays (measurements, parents, flags) are
aligned with them, as the measurement functions produce them.
"""

from __future__ import annotations

import numpy as np


def present_labels(labels: np.ndarray) -> np.ndarray:
    """Non-zero labels that occur in ``labels``, ascending (bincount, linear)."""
    flat = labels.ravel()
    if flat.size == 0 or int(flat.max(initial=0)) == 0:
        return np.zeros(0, dtype=np.int32)
    counts = np.bincount(flat.astype(np.intp, copy=False))
    counts[0] = 0
    return np.flatnonzero(counts).astype(np.int32)


def overlaps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse contingency table: ``(label_a, label_b, pixels)`` per touching pair.

    Only pairs with at least one shared pixel appear, sorted by ``label_a``
    then ``label_b``.

    Raises
    ------
    ValueError
        ``a`` and ``b`` differ in shape.
    """
    if a.shape != b.shape:
        raise ValueError(f"label images differ in shape: {a.shape} and {b.shape}")
    both = (a > 0) & (b > 0)
    la = a[both].astype(np.int64)
    lb = b[both].astype(np.int64)
    del both
    base = int(lb.max(initial=0)) + 1
    keys, counts = np.unique(la * base + lb, return_counts=True)
    return (keys // base).astype(np.int32), (keys % base).astype(np.int32), counts


def subtract_objects(larger: np.ndarray, smaller: np.ndarray) -> np.ndarray:
    """Tertiary objects: ``larger`` minus every pixel of ``smaller`` (int32).

    Each remaining piece keeps the id of its ``larger`` object (cytoplasm i
    belongs to cell i), so ids are not renumbered: a cell entirely covered by
    its nucleus simply has no cytoplasm object. Memory: one int32 copy.
    """
    out = np.asarray(larger, dtype=np.int32).copy()
    out[np.asarray(smaller) > 0] = 0
    return out


def parent_of(children: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Parent label of each present child: the parent it overlaps most, else 0.

    Ties go to the lower parent id. The result is int32, aligned with
    :func:`present_labels` of ``children``.
    """
    kids = present_labels(children)
    result = np.zeros(len(kids), dtype=np.int32)
    child, parent, count = overlaps(children, parents)
    if len(child) == 0:
        return result
    # Best pair first within each child: most pixels, then lowest parent id.
    order = np.lexsort((parent, -count, child))
    child, parent = child[order], parent[order]
    first = np.ones(len(child), dtype=bool)
    first[1:] = child[1:] != child[:-1]
    result[np.searchsorted(kids, child[first])] = parent[first]
    return result


def children_count(parents: np.ndarray, children: np.ndarray) -> np.ndarray:
    """How many children have each present parent as their parent (int64).

    A child counts for the single parent :func:`parent_of` gives it, so the
    counts sum to the number of children that overlap any parent.
    """
    owners = present_labels(parents)
    chosen = parent_of(children, parents)
    chosen = chosen[chosen > 0]
    per_label = np.bincount(chosen, minlength=int(owners.max(initial=0)) + 1)
    return per_label[owners].astype(np.int64)


def filter_objects(
    labels: np.ndarray, values: np.ndarray, *, low: float, high: float
) -> np.ndarray:
    """Keep objects whose value lies in ``[low, high]``; relabel them 1..n.

    ``values`` holds one measurement per present label (ascending). Kept
    objects are renumbered in their original order; NaN values are dropped.
    Memory: one int32 lookup table and the int32 output.

    Raises
    ------
    ValueError
        ``values`` does not have one entry per present label.
    """
    present = present_labels(labels)
    values = np.asarray(values, dtype=np.float64)
    if values.shape != present.shape:
        raise ValueError(
            f"need one value per object ({len(present)}), got shape {values.shape}"
        )
    keep = (values >= low) & (values <= high)
    lut = np.zeros(int(present.max(initial=0)) + 1, dtype=np.int32)
    lut[present[keep]] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[labels]


def touching_border(labels: np.ndarray) -> np.ndarray:
    """Per present label, whether any of its pixels lies on the image edge."""
    present = present_labels(labels)
    edge = np.concatenate((labels[0], labels[-1], labels[:, 0], labels[:, -1]))
    return np.isin(present, edge)


def match_f1(
    predicted: np.ndarray, truth: np.ndarray, iou: float = 0.5
) -> tuple[float, int, int, int]:
    """F1, true positives, false positives, false negatives at an IoU threshold.

    Pairs are matched one to one, best IoU first. For ``iou > 0.5`` a match
    is unique anyway (two objects cannot both overlap a third by more than
    half its union), so greedy matching is exact; at exactly 0.5 only
    contrived ties could differ, and below 0.5 greedy is an approximation.
    Two empty images score F1 = 1.
    """
    pred_ids = present_labels(predicted)
    true_ids = present_labels(truth)
    p, t, inter = overlaps(predicted, truth)
    area_p = np.bincount(predicted.ravel().astype(np.intp))
    area_t = np.bincount(truth.ravel().astype(np.intp))
    scores = inter / (area_p[p] + area_t[t] - inter)
    good = scores >= iou
    p, t, scores = p[good], t[good], scores[good]
    used_p: set[int] = set()
    used_t: set[int] = set()
    for i in np.argsort(-scores, kind="stable"):
        if int(p[i]) not in used_p and int(t[i]) not in used_t:
            used_p.add(int(p[i]))
            used_t.add(int(t[i]))
    tp = len(used_p)
    fp = len(pred_ids) - tp
    fn = len(true_ids) - tp
    f1 = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    return f1, tp, fp, fn
