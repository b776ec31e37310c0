"""The settings of the server, one msgspec Struct per ``[section]`` of the file.

Each setting is declared exactly once, here: its type, its bounds (checked by
msgspec when a file or the environment is converted) and a short description.
Import them from :mod:`openhcs_nb.server.config`; this module holds no rules
that span several keys.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import msgspec

_MIB = 1024 * 1024


def _cpu_count() -> int:
    return os.cpu_count() or 1


def _default_results_root() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or "~/.local/share"
    return Path(data_home).expanduser() / "openhcs-nb"


def _m(description: str, **bounds: float) -> msgspec.Meta:
    """A setting's bounds (``ge``, ``gt``, ``le``) and its one-line description."""
    return msgspec.Meta(description=description, **bounds)


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One ``[section]`` of the file; typos are refused, values never change."""


class ServerSection(_Section):
    """Where the two sockets bind and how large their queues and messages may be."""

    command_address: Annotated[str, _m("ROUTER bind address")] = "tcp://127.0.0.1:7710"
    event_address: Annotated[str, _m("PUB bind address")] = "tcp://127.0.0.1:7711"
    max_message_bytes: Annotated[int, _m("largest client message", ge=1)] = 64 * _MIB
    send_hwm: Annotated[int, _m("messages queued per peer to send", ge=0)] = 10_000
    recv_hwm: Annotated[int, _m("messages queued per peer received", ge=0)] = 1_000


class PlatesSection(_Section):
    """Plates open only under ``roots``; ``demo`` offers the synthetic plate."""

    roots: Annotated[tuple[Path, ...], _m("folders plates may be opened in")] = ()
    demo: Annotated[bool, _m("offer the synthetic demo plate")] = False


class ResultsSection(_Section):
    """The job database, audit log and result stores live under ``root``."""

    root: Annotated[Path, _m("job database, audit log and result stores")] = (
        msgspec.field(default_factory=_default_results_root)
    )


class ExecutionSection(_Section):
    """Worker processes, GPU placement, concurrency and preview size."""

    workers: Annotated[
        int, _m("worker processes (default: one per GPU, else CPU)", ge=1)
    ] = msgspec.field(default_factory=_cpu_count)
    gpus: Annotated[
        tuple[Annotated[int, msgspec.Meta(ge=0)], ...], _m("GPU device ids")
    ] = ()
    max_concurrent_executions: Annotated[int, _m("executions run at once", ge=1)] = 2
    preview_size: Annotated[int, _m("edge of preview images, pixels", ge=16)] = 256
    cancel_grace_s: Annotated[float, _m("seconds a cancelled well may stop", ge=0)] = (
        5.0
    )
    executor: Annotated[
        Literal["local", "dask"], _m("who computes wells: own workers or Dask")
    ] = "local"
    dask_scheduler: Annotated[str, _m("Dask scheduler address, tcp://HOST:PORT")] = ""
    dask_wells_in_flight: Annotated[
        int, _m("wells the server keeps on the Dask cluster at once", ge=1)
    ] = 8
    dask_connect_timeout_s: Annotated[
        float, _m("seconds to reach the Dask scheduler at start", gt=0)
    ] = 10.0
    gpu_oom: Annotated[
        Literal["cpu", "fail"],
        _m("on GPU out-of-memory: rerun the well on the CPU, or fail it"),
    ] = "cpu"


class LimitsSection(_Section):
    """Per-user quotas, timeouts and the byte and message budgets of the sockets."""

    requests_per_second: Annotated[
        float, _m("per-user command rate (token bucket); 0 disables it", ge=0)
    ] = 50.0
    request_burst: Annotated[int, _m("commands one user may send at once", ge=1)] = 100
    max_running_per_user: Annotated[int, _m("a user's executions running", ge=1)] = 2
    max_queued_per_user: Annotated[
        int, _m("a user's executions queued or running", ge=1)
    ] = 20
    max_previews_per_user: Annotated[int, _m("a user's previews in flight", ge=1)] = 2
    well_timeout_s: Annotated[float, _m("seconds per well; 0 = no limit", ge=0)] = (
        1800.0
    )
    preview_timeout_s: Annotated[
        float, _m("seconds per preview; 0 = no limit", ge=0)
    ] = 120.0
    max_command_bytes: Annotated[
        int, _m("largest inbound command, all frames together", ge=1024)
    ] = 4 * _MIB
    peer_send_budget_bytes: Annotated[
        int, _m("outbound bytes queued for one peer", ge=_MIB)
    ] = 256 * _MIB
    event_hwm: Annotated[int, _m("PUB/XPUB high-water mark, messages", ge=1)] = 200
    compile_threads: Annotated[int, _m("threads loading and compiling code", ge=1)] = 2
    compile_queue: Annotated[int, _m("compile requests waiting", ge=1)] = 64
    compile_timeout_s: Annotated[float, _m("seconds one compile may take", gt=0)] = 20.0
    worker_memory_mib: Annotated[
        int, _m("memory cap of one worker, MiB; 0 = 80% of RAM / workers", ge=0)
    ] = 0
    tiles_per_second: Annotated[
        float, _m("per-user viewer tile rate (own token bucket); 0 disables it", ge=0)
    ] = 120.0
    tile_burst: Annotated[int, _m("tiles one user may ask for at once", ge=1)] = 240
    tile_bytes_in_flight: Annotated[
        int, _m("a user's unread reply bytes past which tiles wait; 0 = off", ge=0)
    ] = 64 * _MIB


class SecuritySection(_Section):
    """CurveZMQ keys; ``require_curve`` forces them even on loopback."""

    server_secret_key: Annotated[Path | None, _m("the server's secret key file")] = None
    authorized_keys: Annotated[Path | None, _m("client public keys (file or dir)")] = (
        None
    )
    require_curve: Annotated[bool, _m("require CurveZMQ even on loopback")] = False


class OmeroSection(_Section):
    """The OMERO source and write-back; nothing reads it while disabled."""

    enabled: Annotated[bool, _m("read plates from and write results to OMERO")] = False
    host: Annotated[str, _m("OMERO server host")] = "localhost"
    port: Annotated[int, _m("OMERO server port", ge=1, le=65535)] = 4064
    data_dir: Annotated[Path | None, _m("OMERO binary repository")] = None
    managed_dir: Annotated[Path | None, _m("ManagedRepository folder")] = None
    pixel_paths: Annotated[str, _m("pixel paths allowed, fastest first")] = (
        "original,romio,ice"
    )
    labels: Annotated[str, _m("labels as mask ROIs ('rois') or not ('none')")] = "rois"
    object_table: Annotated[bool, _m("write the per-object table")] = True
    replace: Annotated[bool, _m("replace outputs of earlier runs")] = True
    max_rois_per_image: Annotated[int, _m("ROIs written per image", ge=0)] = 5000
    keepalive_s: Annotated[float, _m("session keep-alive interval", gt=0)] = 60.0
    writeback_attempts: Annotated[int, _m("tries per write-back", ge=1)] = 3
    retry_delay_s: Annotated[float, _m("seconds between tries", ge=0)] = 2.0


class AuditSection(_Section):
    """The JSON-lines audit log; ``path`` defaults to ``<results root>/audit.jsonl``."""

    path: Annotated[Path | None, _m("audit log file")] = None
    fsync: Annotated[bool, _m("fsync after every line")] = False
    tile_summary_s: Annotated[
        float, _m("seconds one summary line of served tiles covers", ge=0)
    ] = 10.0


class WebSection(_Section):
    """CurveZMQ users that are web front ends (OMERO.web), acting for OMERO users.

    A front end may act only as the OMERO user whose live session it presents
    in Hello; without a joined session every command of it is refused.
    """

    frontends: Annotated[
        tuple[str, ...], _m("key users (authorized_keys names) that are web front ends")
    ] = ()
    session_check_s: Annotated[
        float, _m("seconds between re-checks of a front end's OMERO session", ge=0)
    ] = 60.0


class TrustSection(_Section):
    """Who may run their own functions, what they may import, and their limits.

    Own functions (``@openhcs_nb.function``) run only for the CurveZMQ users
    (or OMERO groups) named here, only inside a bubblewrap sandbox per well.
    """

    users: Annotated[tuple[str, ...], _m("users who may run own functions")] = ()
    groups: Annotated[tuple[str, ...], _m("OMERO groups who may run them")] = ()
    modules: Annotated[tuple[str, ...], _m("top-level modules they may import")] = (
        "numpy",
        "scipy",
        "skimage",
        "math",
    )
    memory_mb: Annotated[int, _m("address space of one sandboxed call, MiB", ge=64)] = (
        2048
    )
    cpu_s: Annotated[int, _m("CPU seconds of one sandboxed call", ge=1)] = 300
    wall_s: Annotated[float, _m("wall seconds of one sandboxed call", gt=0)] = 600.0
    file_mb: Annotated[int, _m("largest file a sandboxed call writes, MiB", ge=1)] = (
        1024
    )
    processes: Annotated[int, _m("processes a sandboxed call may have", ge=1)] = 16
