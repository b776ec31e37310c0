"""Shared bits of the client tests: the test plate's name, a slow pipeline."""

from __future__ import annotations

from openhcs_nb import Pipeline, Step, nuclei_count_pipeline
from openhcs_nb.client import Connection
from openhcs_nb.functions import gaussian_blur

SMALL = "small.ome.zarr"


def slow_pipeline(blurs: int = 20) -> Pipeline:
    """The default pipeline with a chain of blurs after its illumination step.

    The blurs make wells take a while; the illumination correction stays
    first, where the plate-level phase needs it.
    """
    blur = Step(
        name="slow",
        func={1: [(gaussian_blur, {"sigma": 6.0})] * blurs},
        group_by="channel",
    )
    first, *rest = nuclei_count_pipeline().steps
    return Pipeline("slow", (first, blur, *rest))


def drop_events(conn: Connection, reopen_after: float) -> None:
    """Close the connection's event socket; reopen it ``reopen_after`` s later.

    Simulates a lost SUB link from the outside, on the connection's I/O thread.
    """
    transport = conn._transport
    transport.call_soon(lambda: transport.drop_events(reopen_after))
