"""Bytes of pipeline code vs a dill pickle of the same pipeline.

Run: python benchmarks/bench_payload.py
Two pickles are reported: dill's default, which stores our catalogue functions
by reference (so it only works where the same package is installed), and
dill with ``recurse=True, byref=False`` as a tool that ships a pipeline to a
foreign process would use. The code is what openhcs-nb actually sends.
"""

from __future__ import annotations

import dill

from openhcs_nb import Pipeline, Step, nuclei_count_pipeline
from openhcs_nb.functions import gaussian_blur, percentile_normalize, project_z


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


if __name__ == "__main__":
    main()
