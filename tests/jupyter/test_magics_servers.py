"""``%openhcs_connect a b``: the magics on a ServerSet of two real servers.

Server A is kept busy by a slow run of its own, so the magic's runs go to
server B; status, cancel and attach then reach B through the set.
"""

from __future__ import annotations

import threading

import pytest
from client_helpers import slow_pipeline
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from server_process import ServerProcess

from openhcs_nb.client import (
    RemoteUnknownExecution,
    ServerSet,
    connect,
)

SMALL = "small.ome.zarr"


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory, plates_root):
    base = tmp_path_factory.mktemp("two")
    servers = [ServerProcess(base / n, plates_root, workers=1) for n in "ab"]
    starts = [threading.Thread(target=s.start) for s in servers]
    for thread in starts:
        thread.start()
    for thread in starts:
        thread.join()
    yield servers
    for server in servers:
        server.kill()


@pytest.fixture(scope="module")
def direct(two_servers):
    conns = [connect(s.address) for s in two_servers]
    yield conns
    for conn in conns:
        conn.close()


@pytest.fixture(scope="module")
def shell():
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "openhcs_nb")
    yield ip
    InteractiveShell.clear_instance()


@pytest.fixture(scope="module")
def connected(shell, two_servers, direct):
    busy = direct[0].submit(slow_pipeline(40), SMALL)
    line = " ".join(s.address for s in two_servers)
    conn = shell.run_line_magic("openhcs_connect", line)
    yield shell, conn
    conn.close()
    direct[0].cancel(busy.id)


def test_when_connecting_to_two_addresses_then_the_magic_holds_a_server_set(
    connected, two_servers
):
    _, conn = connected
    assert isinstance(conn, ServerSet)
    assert conn.addresses == tuple(s.address for s in two_servers)


def test_when_running_then_the_least_loaded_server_owns_the_run(connected, direct):
    shell, _ = connected
    cell = shell.run_cell(f"%openhcs_run plate={SMALL} wells=A01 viewer=inline")
    assert cell.success, cell.error_in_exec
    run = shell.user_ns["_openhcs"]
    assert direct[1].status(run.id).execution_id == run.id
    with pytest.raises(RemoteUnknownExecution):
        direct[0].status(run.id)
    assert run.wait(60)
    assert list(run.result()["well"]) == ["A01"]


def test_when_status_cancel_attach_then_they_reach_the_owner(connected, direct):
    shell, conn = connected
    shell.run_line_magic(
        "openhcs_run", f"plate={SMALL} viewer=none wells=A01:B03 --out many"
    )
    run = shell.user_ns["many"]
    state = shell.run_line_magic("openhcs_cancel", run.id)
    assert state in {"cancelled", "done"}
    owner = conn.addresses.index(conn.owner(run.id).address)
    assert direct[owner].status(run.id).state == state
    with pytest.raises(RemoteUnknownExecution):
        direct[1 - owner].cancel(run.id)
    assert shell.run_cell("%openhcs_status").success
    shell.run_line_magic("openhcs_attach", f"{run.id} --viewer none --out again")
    assert shell.user_ns["again"].id == run.id


def test_when_attaching_an_id_no_server_has_then_one_line_names_both(
    connected, two_servers, capsys
):
    shell, _ = connected
    result = shell.run_cell("%openhcs_attach ex-000000000000 --viewer none")
    assert isinstance(result.error_in_exec, UsageError)
    message = str(result.error_in_exec)
    assert all(s.address in message for s in two_servers), message
    assert "Traceback" not in capsys.readouterr().err


def test_when_the_env_names_two_servers_then_a_bare_connect_uses_both(
    shell, two_servers, monkeypatch
):
    monkeypatch.setenv("OPENHCS_NB_SERVER", ",".join(s.address for s in two_servers))
    monkeypatch.delenv("OPENHCS_NB_SERVER_KEY", raising=False)
    monkeypatch.delenv("OPENHCS_NB_CLIENT_KEY", raising=False)
    conn = shell.run_line_magic("openhcs_connect", "")
    try:
        assert isinstance(conn, ServerSet)
        assert len(conn.connections) == 2
    finally:
        conn.close()
