"""One valid instance of every protocol message, with arrays where it can carry them."""

from __future__ import annotations

from typing import Any, get_args

import numpy as np

from openhcs_nb.protocol import (
    ArrayPacker,
    Cancel,
    CancelReply,
    ClientMessage,
    ErrorReply,
    Event,
    ExecutionInfo,
    ExecutionsReply,
    Fetch,
    FetchReply,
    Finished,
    FunctionInfo,
    Hello,
    HelloReply,
    ListExecutions,
    ListPlates,
    ParamInfo,
    PlateInfo,
    PlateInfoReply,
    PlateInfoWire,
    PlatesReply,
    Preview,
    PreviewReply,
    Progress,
    Queued,
    ServerReply,
    Started,
    Status,
    StatusReply,
    Submit,
    SubmitOptions,
    Submitted,
    WellDone,
    WellFailed,
    WellStarted,
    pack_arrays,
)
from openhcs_nb.protocol.messages import (
    Pyramid,
    PyramidReply,
    ServerStatus,
    ServerStatusReply,
    Tile,
    TileReply,
    WellObjects,
    WellObjectsReply,
)
from openhcs_nb.protocol.preset_messages import (
    DeletePreset,
    GetPreset,
    ListPresets,
    PresetDeleted,
    PresetInfo,
    PresetReply,
    PresetsReply,
    SavePreset,
)

Sample = tuple[Any, list[Any], dict[str, np.ndarray]]


def arrays_of_many_dtypes() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "u8": rng.integers(0, 255, (5, 7), dtype=np.uint8),
        "u16": rng.integers(0, 65535, (2, 3, 4), dtype=np.uint16),
        "i32": rng.integers(-(2**31), 2**31 - 1, (6,), dtype=np.int32),
        "f32": rng.standard_normal((4, 4)).astype(np.float32),
        "f64": rng.standard_normal((3, 1, 2)),
        "bool": rng.integers(0, 2, (8, 8)).astype(bool),
        "empty": np.zeros((0, 5), dtype=np.float32),
        "scalar": np.array(7, dtype=np.int64),
    }


def execution_info(execution_id: str = "ex-1") -> ExecutionInfo:
    return ExecutionInfo(
        execution_id=execution_id,
        plate="demo",
        state="running",
        user="alice",
        submitted_at=1.5e9,
        started_at=1.5e9 + 2,
        total=96,
        done=10,
        failed=1,
        last_seq=14,
        label="first try",
    )


def client_samples() -> list[Sample]:
    return [
        (Hello(rid=1, client="openhcs-nb/0.1.0", omero_session="abc-123"), [], {}),
        (ListPlates(rid=2), [], {}),
        (PlateInfo(rid=3, plate="demo"), [], {}),
        (
            Submit(
                rid=4,
                pipeline_code="from openhcs_nb import Pipeline\n",
                plate="demo",
                wells=["A01", "B03"],
                options=SubmitOptions(preview_size=128, priority=2, label="x"),
            ),
            [],
            {},
        ),
        (
            Preview(rid=5, pipeline_code="p = 1\n", plate="demo", well="B03", upto=2),
            [],
            {},
        ),
        (Status(rid=6, execution_id="ex-1"), [], {}),
        (ListExecutions(rid=7, include_finished=False), [], {}),
        (Cancel(rid=8, execution_id="ex-1"), [], {}),
        (
            Fetch(
                rid=9, execution_id="ex-1", since_seq=3, limit=10, full_resolution=True
            ),
            [],
            {},
        ),
        (Pyramid(rid=11, well="B03", site=1, execution_id="ex-1"), [], {}),
        (
            Tile(rid=12, well="B03", name="image/DAPI", level=1, ty=2, plate="demo"),
            [],
            {},
        ),
        (ServerStatus(rid=13), [], {}),
        (WellObjects(rid=14, execution_id="ex-1", well="B03", site=1), [], {}),
        (ListPresets(rid=15), [], {}),
        (GetPreset(rid=16, name="nuclei"), [], {}),
        (
            SavePreset(rid=17, name="nuclei", code="p = 1\n", replace=True),
            [],
            {},
        ),
        (DeletePreset(rid=18, name="nuclei"), [], {}),
    ]


def event_samples(packer: ArrayPacker | None = None) -> list[Event]:
    packer = packer or ArrayPacker()
    previews = packer.add_all(
        {
            "DAPI": np.arange(16, dtype=np.uint16).reshape(4, 4),
            "labels": np.eye(4, dtype=np.int32),
        }
    )
    return [
        Queued(execution_id="ex-1", seq=1, time=1.0, position=0),
        Started(execution_id="ex-1", seq=2, time=2.0, total=2, workers=2),
        WellStarted(execution_id="ex-1", seq=3, time=2.5, well="A01"),
        WellDone(
            execution_id="ex-1",
            seq=4,
            time=3.0,
            well="A01",
            summary={"count": 12, "area_mean": 51.25},
            previews=previews,
            objects=12,
            elapsed=0.25,
        ),
        WellFailed(
            execution_id="ex-1",
            seq=5,
            time=4.0,
            well="A02",
            error="boom",
            remote_traceback="Traceback...\nValueError: boom\n",
        ),
        Progress(execution_id="ex-1", seq=6, time=5.0, done=1, failed=1, total=2),
        Finished(
            execution_id="ex-1",
            seq=7,
            time=6.0,
            state="done",
            done=1,
            failed=1,
            total=2,
        ),
    ]


def server_samples() -> list[Sample]:
    fn = FunctionInfo(
        name="gaussian",
        version="1",
        category="filters",
        help="blur",
        params=[
            ParamInfo(name="sigma", type="float", default=1.0, min=0.0, max=50.0),
            ParamInfo(
                name="mode",
                type="choice",
                default="reflect",
                choices=["reflect", "nearest"],
            ),
            ParamInfo(name="channel", type="str", default=None, required=True),
        ],
        side_outputs=["measurements"],
        has_gpu=True,
    )
    preview_arrays = arrays_of_many_dtypes()
    refs, preview_buffers = pack_arrays(preview_arrays)
    fetch_packer = ArrayPacker()
    events = event_samples(fetch_packer)
    fetch_arrays = {
        "DAPI": np.arange(16, dtype=np.uint16).reshape(4, 4),
        "labels": np.eye(4, dtype=np.int32),
    }
    return [
        (
            HelloReply(
                rid=1,
                server_version="0.1.0",
                protocol_version=1,
                catalogue=[fn],
                gpus=["NVIDIA H100"],
                workers=4,
                max_concurrent=2,
                user="alice",
                session_id="s-1",
            ),
            [],
            {},
        ),
        (PlatesReply(rid=2, plates=["demo", "omero:plate/51"]), [], {}),
        (
            PlateInfoReply(
                rid=3,
                info=PlateInfoWire(
                    name="demo",
                    wells=["A01", "A02"],
                    rows=["A"],
                    columns=[1, 2],
                    fields=4,
                    channels=["DAPI", "GFP"],
                    z=1,
                    t=1,
                    dtype="<u2",
                    shape=[256, 256],
                ),
            ),
            [],
            {},
        ),
        (Submitted(rid=4, execution_id="ex-1", wells=["A01", "A02"], seq=1), [], {}),
        (
            PreviewReply(
                rid=5,
                well="B03",
                step_names=["blur", "segment"],
                images=refs,
                measurements={"count": 3.0},
                objects=3,
            ),
            preview_buffers,
            preview_arrays,
        ),
        (StatusReply(rid=6, execution=execution_info()), [], {}),
        (
            ExecutionsReply(
                rid=7, executions=[execution_info(), execution_info("ex-2")]
            ),
            [],
            {},
        ),
        (CancelReply(rid=8, execution_id="ex-1", state="cancelled"), [], {}),
        (
            FetchReply(
                rid=9,
                execution_id="ex-1",
                events=events,
                last_seq=6,
                complete=True,
                state="done",
            ),
            fetch_packer.buffers,
            fetch_arrays,
        ),
        (
            PyramidReply(rid=11, levels={"image/DAPI": [[512, 512], [256, 256]]}),
            [],
            {},
        ),
        _tile_reply_sample(),
        _well_objects_reply_sample(),
        (
            ServerStatusReply(
                rid=13,
                workers=2,
                queued_wells=5,
                running_wells=2,
                active_executions=3,
                user_active_executions=1,
            ),
            [],
            {},
        ),
        (PresetsReply(rid=15, presets=[_preset_sample()]), [], {}),
        (PresetReply(rid=16, preset=_preset_sample()), [], {}),
        (PresetDeleted(rid=18, name="nuclei"), [], {}),
        (
            ErrorReply(
                rid=10,
                code="bad_pipeline_code",
                message="line 3, column 1: no",
                details={"line": 3, "col": 1},
            ),
            [],
            {},
        ),
    ]


def _preset_sample() -> PresetInfo:
    return PresetInfo(
        name="nuclei",
        code="p = 1\n",
        description="count nuclei",
        owner="omero:bob",
        group="screening",
        group_id=3,
        created_at=1.5,
        updated_at=2.5,
        editable=True,
    )


def _tile_reply_sample() -> tuple[Any, list[Any], dict[str, np.ndarray]]:
    tile = np.arange(12, dtype=np.uint16).reshape(3, 4)
    packer = ArrayPacker()
    return (
        TileReply(rid=12, images=[packer.add("tile", tile)]),
        packer.buffers,
        {"tile": tile},
    )


def _well_objects_reply_sample() -> tuple[Any, list[Any], dict[str, np.ndarray]]:
    area = np.array([120, 85], dtype=np.int64)
    packer = ArrayPacker()
    reply = WellObjectsReply(
        rid=14,
        execution_id="ex-1",
        well="B03",
        site=1,
        rows=2,
        columns=["object_set", "area"],
        numbers=[packer.add("area", area)],
        text={"object_set": ["nuclei", None]},
        units={"area": "px²"},
    )
    return reply, packer.buffers, {}  # refs in ``numbers``: test_objects_query


def union_members(union: Any) -> set[type]:
    return set(get_args(union))


__all__ = [
    "ClientMessage",
    "ServerReply",
    "arrays_of_many_dtypes",
    "client_samples",
    "event_samples",
    "execution_info",
    "server_samples",
    "union_members",
]
