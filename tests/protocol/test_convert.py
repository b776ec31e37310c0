"""Core objects become wire records: catalogue, plate layout, errors."""

from __future__ import annotations

import numpy as np
import pytest

from openhcs_nb.errors import (
    CompileError,
    OptionalDependencyError,
    PipelineCodeError,
    PipelineError,
    UnknownWellError,
)
from openhcs_nb.pipeline.catalogue import Catalogue, Function, Param
from openhcs_nb.plates.model import PlateLayout
from openhcs_nb.protocol import (
    ERROR_CODES,
    PROTOCOL_VERSION,
    ErrorReply,
    Hello,
    HelloReply,
    PlateInfoReply,
    VersionMismatch,
    catalogue_to_wire,
    decode_client,
    decode_server,
    encode,
    error_reply,
    plate_info_to_wire,
)


def _blur(stack: np.ndarray, sigma: float = 1.0, mode: str = "reflect") -> np.ndarray:
    return stack


def _catalogue() -> Catalogue:
    return Catalogue(
        [
            Function(
                name="blur",
                version="2",
                impl=_blur,
                help="Gaussian blur.",
                category="filters",
                params=(
                    Param("sigma", "float", 1.0, "width", min=0.0, max=20.0),
                    Param(
                        "mode",
                        "choice",
                        "reflect",
                        "edges",
                        choices=("reflect", "wrap"),
                    ),
                    Param("channel", "str", None, "which channel"),
                ),
                side_outputs=("measurements",),
                gpu_impl="openhcs_nb.functions.gpu:blur",
            ),
            Function(
                name="count",
                version="1",
                impl=_blur,
                help="Count objects.",
                category="measure",
                input="labels",
                output="labels",
                needs_labels=True,
            ),
        ]
    )


def test_when_catalogue_goes_on_the_wire_then_every_field_mirrors_the_function():
    blur, count = catalogue_to_wire(_catalogue())
    assert (blur.name, blur.version, blur.category, blur.help) == (
        "blur",
        "2",
        "filters",
        "Gaussian blur.",
    )
    assert blur.has_gpu and not count.has_gpu
    assert blur.side_outputs == ["measurements"]
    assert (count.input, count.output, count.needs_labels) == ("labels", "labels", True)
    sigma, mode, channel = blur.params
    assert (sigma.type, sigma.default, sigma.min, sigma.max) == (
        "float",
        1.0,
        0.0,
        20.0,
    )
    assert mode.choices == ["reflect", "wrap"]
    assert channel.required and not sigma.required


def test_when_catalogue_travels_in_hello_reply_then_it_decodes_equal():
    wire = catalogue_to_wire(_catalogue())
    reply = HelloReply(
        rid=1,
        server_version="0.1.0",
        protocol_version=1,
        catalogue=wire,
        gpus=[],
        workers=2,
        max_concurrent=1,
        user="alice",
    )
    assert decode_server(encode(reply))[0].catalogue == wire


def test_when_plate_layout_goes_on_the_wire_then_it_round_trips():
    layout = PlateLayout(
        name="demo",
        rows=("A", "B"),
        columns=(1, 2, 3),
        wells=("A01", "B03"),
        fields=4,
        channels=("DAPI", "GFP"),
        z=1,
        t=1,
        dtype="<u2",
        shape=(256, 256),
    )
    reply = PlateInfoReply(rid=2, info=plate_info_to_wire(layout))
    info = decode_server(encode(reply))[0].info
    assert info.wells == ["A01", "B03"]
    assert info.columns == [1, 2, 3]
    assert info.shape == [256, 256]


@pytest.mark.parametrize(
    ("error", "code", "details"),
    [
        (
            PipelineCodeError("calls are not allowed", 3, 7),
            "bad_pipeline_code",
            {"line": 3, "col": 7},
        ),
        (
            PipelineError("bad", step="blur", field="sigma"),
            "invalid_pipeline",
            {"step": "blur", "field": "sigma"},
        ),
        (
            CompileError("no channel", step="blur", key="GFP"),
            "compile_error",
            {"step": "blur", "key": "GFP"},
        ),
        (UnknownWellError("Z99 is not on the plate"), "unknown_well", {}),
    ],
    ids=["code", "pipeline", "compile", "well"],
)
def test_when_core_error_becomes_a_reply_then_code_and_location_survive(
    error, code, details
):
    reply = error_reply(error, rid=9, traceback="Traceback ...")
    assert isinstance(reply, ErrorReply)
    assert (reply.rid, reply.code, reply.details) == (9, code, details)
    assert reply.message == str(error)
    assert decode_server(encode(reply))[0] == reply


def test_when_error_has_no_wire_code_then_reply_is_internal_and_keeps_the_origin():
    assert error_reply(ZeroDivisionError("division by zero")).details == {
        "error": "ZeroDivisionError"
    }
    reply = error_reply(OptionalDependencyError("OMERO", "omero", "omero-py"))
    assert reply.code == "internal"
    assert reply.details == {"error": "missing_extra"}
    assert "internal" in ERROR_CODES


def test_when_decode_fails_then_error_reply_answers_the_request_it_could_read():
    frames = encode(Hello(rid=41, client="c"))
    raw = bytes(frames[0]).replace(b"\xa1v" + bytes([PROTOCOL_VERSION]), b"\xa1v\x00")
    with pytest.raises(VersionMismatch) as info:
        decode_client([raw])
    reply = error_reply(info.value)
    assert reply.rid == 41
    assert reply.code == "version_mismatch"
    assert reply.details == {"remote_version": 0, "local_version": PROTOCOL_VERSION}
