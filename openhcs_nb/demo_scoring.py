"""Score a run on a plate with planted masks: F1 per well at IoU 0.5.

Objects are matched one to one (:func:`~openhcs_nb.functions._relate.match_f1`)
per field; a well's F1 pools its fields' true and false positives and misses,
so a crowded field weighs as much as its objects. Only labels are read from
the results (never raw pixels).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from openhcs_nb.functions._relate import match_f1
from openhcs_nb.plates._truth_masks import load_truth_masks
from openhcs_nb.results.store import ResultsStore

#: IoU at which a found object counts as the planted one.
IOU = 0.5


def _f1(tp: int, fp: int, fn: int) -> float:
    total = 2 * tp + fp + fn
    return 2 * tp / total if total else 1.0


def score_wells(
    results: Path, plate: Path, wells: list[str], fields: int
) -> pd.DataFrame:
    """One row per well: nuclei and cells F1 against the planted masks.

    Raises
    ------
    PlateError
        The plate has no truth masks, or a field has no results.
    """
    store = ResultsStore(results)
    rows = []
    for well in wells:
        counts = {"nuclei": [0, 0, 0], "cells": [0, 0, 0]}
        for site in range(fields):
            found = store.read_labels(well, site)
            nuclei, cells = load_truth_masks(plate, well, site)
            truth = {"nuclei": nuclei, "cells": cells}
            for name, tally in counts.items():
                if name in found:
                    _, tp, fp, fn = match_f1(found[name], truth[name], IOU)
                    tally[0] += tp
                    tally[1] += fp
                    tally[2] += fn
        row: dict[str, object] = {"well": well}
        for name, (tp, fp, fn) in counts.items():
            row[f"{name}_f1"] = _f1(tp, fp, fn) if tp + fp + fn else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)
