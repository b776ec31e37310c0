"""The ``openhcs-nb`` command line: run a pipeline on a plate, or the demo.

``openhcs-nb run PLATE [--pipeline FILE.py] [--workers N] [--dask [ADDR]] --out DIR``
``openhcs-nb demo [--local] [--workers N] [--out DIR]``

Without ``--pipeline`` a run gets :func:`openhcs_nb.default_pipeline`: nuclei
in the first channel, cells in the second, cytoplasm, measurements and image
quality. On a one-channel plate there is no cell channel, so the same
pipeline runs without its cell steps (nuclei and quality only) and says so in
one line, rather than refusing a plate that the nuclei half handles well.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from openhcs_nb.errors import OpenHCSError

if TYPE_CHECKING:
    from openhcs_nb.pipeline.model import Pipeline


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openhcs-nb", description="Run openhcs-nb pipelines on plates."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a pipeline on a plate, in-process")
    run.add_argument("plate", help="OME-Zarr plate, ImageXpress folder, or 'demo'")
    run.add_argument(
        "--pipeline",
        type=Path,
        help="pipeline code file (default: nuclei in the first channel, cells "
        "in the second, cytoplasm, measurements; nuclei only on 1-channel plates)",
    )
    run.add_argument("--workers", type=int, default=None, help="worker processes")
    run.add_argument("--out", type=Path, required=True, help="results directory")
    run.add_argument("--wells", nargs="*", help="only these wells")
    run.add_argument(
        "--dask",
        nargs="?",
        const=True,
        metavar="SCHEDULER",
        help="run the wells on Dask: a scheduler address, or a local cluster",
    )
    demo = sub.add_parser("demo", help="run the default pipeline on the demo plate")
    demo.add_argument("--workers", type=int, default=None)
    demo.add_argument("--out", type=Path, default=None)
    demo.add_argument(
        "--local", action="store_true", help="run in-process instead of via a server"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        from openhcs_nb.demo import run_demo

        return run_demo(workers=args.workers, out=args.out, local=args.local)
    except OpenHCSError as exc:
        print(f"openhcs-nb: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from openhcs_nb import load_pipeline, open_plate, run_local

    plate = open_plate(args.plate)
    pipeline = (
        load_pipeline(args.pipeline.read_text())
        if args.pipeline
        else _default_for(plate.layout.channels)
    )
    results = run_local(
        pipeline,
        plate,
        workers=args.workers,
        out=args.out,
        wells=args.wells,
        dask=args.dask,
        progress=True,
    )
    wells = results.wells
    print(wells[[c for c in _SUMMARY if c in wells]].to_string(index=False))
    for well, error in results.failed.items():
        print(f"well {well} failed: {error}", file=sys.stderr)
    print(f"results: {results.path}")
    return 1 if results.failed else 0


#: The per-well columns worth a terminal line; the rest are in wells.parquet.
_SUMMARY = ("well", "status", "count", "cells_count", "fields_failing_qc")


def _default_for(channels: Sequence[str]) -> Pipeline:
    """The default pipeline, without its cell steps on a one-channel plate."""
    from openhcs_nb import default_pipeline

    if len(channels) >= 2:
        return default_pipeline()
    print(
        f"openhcs-nb: note: the plate has one channel ({channels[0]}), so the "
        "default pipeline finds nuclei only; the cell steps need a second channel",
        file=sys.stderr,
    )
    return default_pipeline(cell_channel=None)


if __name__ == "__main__":
    sys.exit(main())
