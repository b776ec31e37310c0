"""The demo's table and verdict: counts next to planted, F1, and OK only when right."""

from __future__ import annotations

import numpy as np
import pandas as pd

from openhcs_nb.demo import MIN_CELLS_F1, MIN_NUCLEI_F1, check_table, verdict


def wells_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "well": ["A01", "A02"],
            "status": ["done", "done"],
            "count": [38, 75],
            "cells_count": [38, 75],
            "fields_failing_qc": [0, 1],
        }
    )


def test_the_table_puts_found_planted_and_f1_side_by_side() -> None:
    nuclei = [MIN_NUCLEI_F1 + 0.07, MIN_NUCLEI_F1 + 0.01]
    cells = [MIN_CELLS_F1 + 0.03, MIN_CELLS_F1 + 0.01]
    scores = pd.DataFrame(
        {"well": ["A01", "A02"], "nuclei_f1": nuclei, "cells_f1": cells}
    )
    table = check_table(wells_frame(), {"A01": 40, "A02": 80}, scores)
    assert list(table["planted"]) == [40, 80]
    assert list(table["cells"]) == [38, 75]
    assert list(table["qc_fail"]) == [0, 1]
    ok, line = verdict(table, failed=0, wells=2)
    assert ok
    assert f"nuclei {np.mean(nuclei):.3f}" in line
    assert f"cells {np.mean(cells):.3f}" in line


def test_the_verdict_fails_below_the_floors_or_on_missing_wells() -> None:
    low = pd.DataFrame(
        {
            "well": ["A01", "A02"],
            "nuclei_f1": [MIN_NUCLEI_F1 - 0.2] * 2,
            "cells_f1": [MIN_CELLS_F1] * 2,
        }
    )
    table = check_table(wells_frame(), {"A01": 40, "A02": 80}, low)
    assert not verdict(table, failed=0, wells=2)[0]
    good = low.assign(nuclei_f1=[MIN_NUCLEI_F1] * 2)
    table = check_table(wells_frame(), {"A01": 40, "A02": 80}, good)
    assert verdict(table, failed=0, wells=2)[0]
    assert not verdict(table, failed=1, wells=2)[0]  # a failed well
    assert not verdict(table, failed=0, wells=3)[0]  # a well never arrived
