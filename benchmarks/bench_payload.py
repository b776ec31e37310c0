"""Bytes of pipeline code vs a dill pickle of the same pipeline.

Run: python benchmarks/bench_payload.py
Two pickles are reported: dill's default, which stores our catalogue functions
by reference (so it only works where the same package is installed), and
dill with ``recurse=True, byref=False`` as a tool that ships a pipeline to a
foreign process would use. The code is what openhcs-nb actually sends.

The last rows add an own function (``@openhcs_nb.function``, defined here in
``__main__`` as in a notebook): its source travels inside the code, and dill
must ship it by value (``recurse=True, byref=False``; a CustomFunction pickles
its catalogue entry by reference to ``__main__``, so its implementation is
pickled alongside, as a tool shipping it to a foreign process would).
"""

from __future__ import annotations

from typing import Annotated

import dill
import numpy as np
from msgspec import Meta
from scipy import ndimage as ndi

from openhcs_nb import Pipeline, Step, function, nuclei_count_pipeline
from openhcs_nb.functions import (
    gaussian_blur,
    label_objects,
    measure_objects,
    percentile_normalize,
    project_z,
)


@function(output="mask", version="1")
def spot_mask(
    stack,
    *,
    k: Annotated[float, Meta(ge=0.5, le=5, description="times the local mean")] = 1.5,
    size: Annotated[int, Meta(ge=3, le=31, description="window, pixels")] = 9,
):
    """Spots: pixels brighter than k times their local mean."""
    image = stack.astype(np.float32)
    local = ndi.uniform_filter(image, size=(1, size, size))
    return image > k * np.maximum(local, 1e-6)


def custom_pipeline() -> Pipeline:
    spots = [(gaussian_blur, {"sigma": 1.0}), (spot_mask, {"k": 2.0}), label_objects]
    return Pipeline(
        "custom",
        [
            Step(name="spots", func={0: spots}, group_by="channel"),
            Step(name="measure", func=measure_objects, variable_components=["channel"]),
        ],
    )


def bigger_pipeline() -> Pipeline:
    base = nuclei_count_pipeline()
    extra = (
        Step(
            name="mip", func=(project_z, {"method": "max"}), variable_components=["z"]
        ),
        Step(name="norm", func=(percentile_normalize, {"low": 0.5, "high": 99.5})),
        Step(
            name="smooth", func={1: (gaussian_blur, {"sigma": 3.0})}, group_by="channel"
        ),
    )
    return Pipeline("bigger", (*extra, *base.steps))


def main() -> None:
    print(
        f"{'pipeline':<10}{'code B':>9}{'dill B':>9}{'ratio':>8}{'dill-rec B':>12}{'ratio':>8}"
    )
    for pipeline in (nuclei_count_pipeline(), bigger_pipeline()):
        code = len(pipeline.to_code().encode())
        plain = len(dill.dumps(pipeline))
        recursive = len(dill.dumps(pipeline, recurse=True, byref=False))
        print(
            f"{pipeline.name:<10}{code:>9}{plain:>9}{plain / code:>8.2f}"
            f"{recursive:>12}{recursive / code:>8.2f}"
        )
    print("ratio = pickle bytes / code bytes (goal >= 10)")
    pipeline = custom_pipeline()
    code = len(pipeline.to_code().encode())
    shipped = (pipeline, spot_mask.impl)  # the function itself by value
    plain = len(dill.dumps(shipped))
    recursive = len(dill.dumps(shipped, recurse=True, byref=False))
    print(
        f"{pipeline.name:<10}{code:>9}{plain:>9}{plain / code:>8.2f}"
        f"{recursive:>12}{recursive / code:>8.2f}"
    )
    print(
        f"own function: code / dill(recurse, byref=False) = {code / recursive:.3f} "
        f"({code} B of code, source included, vs {recursive} B of pickle)"
    )


if __name__ == "__main__":
    main()
