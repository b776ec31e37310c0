"""A client of a real server never sees a server traceback.

Bad input answers a typed error. A failure inside the server answers
``internal`` with only an incident id, which the server's log carries next to
the traceback. A job store the server cannot open stops it with exit status 78
and one line that names the file.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from raw_client import RawClient
from server_process import ServerProcess

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.protocol import ErrorReply, PlateInfo, Preview, Submit
from openhcs_nb.server._loop_replies import internal_reply, log_incident
from openhcs_nb.server.local import LocalServer, ServerStartError

SMALL = "small.ome.zarr"
BROKEN = "broken.ome.zarr"


@pytest.fixture(scope="module")
def own_plates(tmp_path_factory: pytest.TempPathFactory, small_plate_path: Path):
    """A plate root with the small plate and a copy whose array metadata is junk.

    The junk is valid JSON of the wrong shape (a list where the reader expects
    an object): the plate reader fails with an error it never anticipated.
    """
    root = tmp_path_factory.mktemp("own-plates")
    shutil.copytree(small_plate_path, root / SMALL)
    shutil.copytree(small_plate_path, root / BROKEN)
    for meta in (root / BROKEN).glob("*/*/*/*/.zarray"):
        meta.write_text("[1, 2]")
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, own_plates: Path):
    server = ServerProcess(tmp_path_factory.mktemp("no-tracebacks"), own_plates)
    yield server.start()
    server.kill()


@pytest.fixture
def client(server):
    c = RawClient(server.address)
    yield c
    c.close()


def refusal(client: RawClient, msg) -> ErrorReply:
    reply, _ = client.call(msg)
    assert isinstance(reply, ErrorReply), reply
    assert reply.remote_traceback is None, reply.remote_traceback
    assert "Traceback" not in reply.message
    return reply


def preview(client: RawClient, plate: str = SMALL, **fields) -> Preview:
    code = nuclei_count_pipeline().to_code()
    return Preview(
        rid=client.rid(), pipeline_code=code, plate=plate, well="A01", **fields
    )


def test_when_a_plate_ref_holds_a_nul_byte_then_unknown_plate_without_traceback(
    client,
):
    nul = "small\x00.ome.zarr"
    code = nuclei_count_pipeline().to_code()
    for msg in (
        PlateInfo(rid=client.rid(), plate=nul),
        Submit(rid=client.rid(), pipeline_code=code, plate=nul),
        preview(client, plate=nul),
    ):
        assert refusal(client, msg).code == "unknown_plate", msg


@pytest.mark.parametrize("site", [-1, 99])
def test_when_preview_site_is_out_of_range_then_a_typed_error_without_traceback(
    client, site
):
    reply = refusal(client, preview(client, site=site))
    assert reply.code not in ("internal", "execution_error"), reply
    assert reply.code == "plate_error"
    assert str(site) in reply.message


def test_when_the_server_fails_inside_then_the_client_gets_only_an_incident_id(
    client, server
):
    reply = refusal(client, PlateInfo(rid=client.rid(), plate=BROKEN))
    assert reply.code == "internal", reply
    incident = reply.details["incident"]
    assert isinstance(incident, str) and re.fullmatch(r"[0-9a-f]{8}", incident)
    assert incident in reply.message
    assert "TypeError" not in reply.message  # nothing of the failure itself
    log = server.log()
    assert f"incident {incident}" in log
    after = log[log.index(f"incident {incident}") :]
    assert "Traceback (most recent call last)" in after.split("incident ", 2)[1]


def test_when_an_incident_is_logged_then_the_reply_carries_only_its_id(caplog):
    failure = RuntimeError("secret internals: /srv/plates/x")
    try:
        raise failure
    except RuntimeError:
        with caplog.at_level("ERROR", logger="openhcs_nb.server.incidents"):
            incident = log_incident(failure, "a unit test")
    reply = internal_reply(7, incident)
    assert reply.rid == 7 and reply.code == "internal"
    assert reply.details == {"incident": incident}
    assert reply.remote_traceback is None
    assert "secret" not in reply.message
    [record] = caplog.records
    assert incident in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is failure


def test_when_the_job_database_is_corrupt_then_exit_78_with_one_line_naming_it(
    tmp_path: Path, plates_root: Path
):
    spec = ServerProcess(tmp_path / "corrupt", plates_root)
    spec.results_root.mkdir(parents=True)
    jobs = spec.results_root / "jobs.sqlite3"
    jobs.write_bytes(b"this is not an SQLite database\n" * 64)
    process = LocalServer(["--config", str(spec._config())], spec.base)
    with pytest.raises(ServerStartError):
        process.start()
    assert process.process is not None
    assert process.process.wait(30) == 78
    lines = [line for line in process.log().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert str(jobs) in lines[0]
    assert "Traceback" not in process.log()
