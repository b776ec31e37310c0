"""Hostile own functions on a real server: each fails its well, nothing else.

alice is trusted, and the policy even allows ``os``, ``subprocess`` and
``socket``, so the sandbox (bubblewrap + rlimits), not the import allowlist,
is what stops each attempt. bob runs a catalogue pipeline at the same time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from multiuser import start_curve_server

from openhcs_nb import Pipeline, Step, function, nuclei_count_pipeline
from openhcs_nb.client import connect
from openhcs_nb.functions import gaussian_blur, label_objects, measure_objects

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bwrap")

SMALL = "small.ome.zarr"
TRUST = """
[trust]
users = ["alice"]
modules = ["numpy", "os", "subprocess", "socket"]
memory_mb = 768
cpu_s = 1
wall_s = 4
processes = 8
"""


@function
def calls_system(stack):
    import os

    os.system("touch /tmp/openhcs-sandbox-escaped")
    return stack


@function
def runs_subprocess(stack):
    import subprocess

    subprocess.run(["/bin/sh", "-c", "true"], check=True)
    return stack


@function
def reads_passwd(stack):
    with open("/etc/passwd") as handle:
        handle.read()
    return stack


@function
def reads_a_file(stack, *, path: str = "/etc/hostname"):
    with open(path) as handle:
        handle.read()
    return stack


@function
def opens_socket(stack):
    import socket

    with socket.create_connection(("127.0.0.1", 22), timeout=2):
        pass
    return stack


@function
def fork_bomb(stack):
    import os

    while True:
        os.fork()


@function
def allocates_50_gb(stack):
    import numpy as np

    hog = np.ones(50 * 1024**3 // 8)
    return stack + hog[0]


@function
def loops_forever(stack):
    while True:
        pass


@function(output="mask")
def over_mean(stack):
    """A well-behaved own function, run next to the hostile ones."""
    return stack > 1.3 * stack.mean(axis=(1, 2), keepdims=True)


def well_behaved() -> Pipeline:
    nuclei = [(gaussian_blur, {"sigma": 1.5}), over_mean, label_objects]
    return Pipeline(
        name="fine",
        steps=[
            Step(name="nuclei", func={0: nuclei}, group_by="channel"),
            Step(name="measure", func=measure_objects, variable_components=["channel"]),
        ],
    )


HOSTILE = {
    calls_system: "does not start programs",
    runs_subprocess: "does not start programs",
    reads_passwd: "No such file or directory: '/etc/passwd'",
    opens_socket: "Connection refused",
    fork_bomb: "Resource temporarily unavailable",
    allocates_50_gb: "MemoryError",
    loops_forever: "limit",
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, plates_root: Path):
    base = tmp_path_factory.mktemp("sandbox")
    server, users = start_curve_server(base, plates_root, ["alice", "bob"], extra=TRUST)
    yield server, users
    server.kill()


def test_when_own_functions_misbehave_then_each_well_fails_and_others_finish(shared):
    server, users = shared
    alice = connect(server.address, timeout=20.0, **users.connect_args("alice"))
    bob = connect(server.address, timeout=20.0, **users.connect_args("bob"))
    try:
        bobs = bob.submit(nuclei_count_pipeline(), SMALL, wells=["A01", "A02"])
        fine = alice.submit(well_behaved(), SMALL, wells=["B01", "B02"])
        runs = {
            fn: alice.submit(
                Pipeline(name=fn.name, steps=[Step(name="bad", func=fn)]),
                SMALL,
                wells=["A01"],
            )
            for fn in HOSTILE
        }
        # bob's results file exists on the host: alice's function is given
        # its exact path and still cannot see it.
        assert bobs.wait(timeout=240) and bobs.state == "done"
        others = server.results_root / bobs.id / "pipeline.py"
        assert others.is_file()
        snoop = Pipeline(
            name="snoop",
            steps=[Step(name="bad", func=(reads_a_file, {"path": str(others)}))],
        )
        snooping = alice.submit(snoop, SMALL, wells=["A01"])
        snooping.wait(timeout=240)
        assert "No such file or directory" in str(snooping.failed_wells["A01"])
        for fn, expected in HOSTILE.items():
            runs[fn].wait(timeout=240)
            errors = runs[fn].failed_wells
            assert set(errors) == {"A01"}, (fn.name, runs[fn].state)
            assert expected in str(errors["A01"]), (fn.name, errors["A01"])
            assert f"custom function {fn.name}" in str(errors["A01"])
        table = bobs.result(timeout=240)
        assert bobs.state == "done"
        assert (table["count"] > 0).all()
        # alice's own well-behaved function ran on other wells at the same time.
        assert (fine.result(timeout=240)["count"] > 0).all()
        assert fine.state == "done" and fine.failed_wells == {}
        # The server is still fine afterwards.
        good = alice.submit(nuclei_count_pipeline(), SMALL, wells=["B03"])
        assert good.result(timeout=120)["count"].iloc[0] > 0
    finally:
        alice.close()
        bob.close()
    assert not Path("/tmp/openhcs-sandbox-escaped").exists()
