"""Several real servers behind one ServerSet: choice by load, commands to the owner.

Two CurveZMQ servers on loopback, each with its own server key and the same
``authorized_keys`` (alice and bob), so one user's key works on both and the
server keys are given one per server. Server A gets a slow execution first,
so server B is the least loaded one when the set submits.
"""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

import pytest
from client_helpers import SMALL, slow_pipeline
from multiuser import make_users
from server_process import ServerProcess

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.client import (
    ClientKeyError,
    Connection,
    RemoteUnknownExecution,
    RemoteUnknownPlate,
    ServerExecutionInfo,
    ServerSet,
    ServerUnavailable,
    ServerUnreachableWarning,
    connect,
)
from openhcs_nb.client._server_choice import (
    ServerLoad,
    by_load,
    keys_per_server,
    split_addresses,
)
from openhcs_nb.protocol.messages import ServerStatus, ServerStatusReply
from openhcs_nb.server.keys import generate_keys, load_keypair

ONLY_ON_B = "only-b.ome.zarr"


class Pair:
    """Two started servers, their public keys, and the users' key files."""

    def __init__(self, base: Path, plates_root: Path) -> None:
        self.users = make_users(base / "users", ["alice", "bob"])
        keys = self.users.authorized_keys.parent / "keys"
        _, secret_b = generate_keys(keys, "server_b")
        self.public = [
            self.users.server_public.decode(),
            load_keypair(secret_b).public.decode(),
        ]
        roots = [plates_root, base / "plates_b"]
        shutil.copytree(plates_root / SMALL, roots[1] / SMALL)
        shutil.copytree(plates_root / SMALL, roots[1] / ONLY_ON_B)
        self.servers = [
            ServerProcess(
                base / name,
                root,
                workers=1,
                extra=(
                    "[security]\n"
                    f'server_secret_key = "{secret}"\n'
                    f'authorized_keys = "{self.users.authorized_keys}"\n'
                ),
            )
            for name, root, secret in zip(
                "ab", roots, [self.users.server_secret, secret_b], strict=True
            )
        ]
        _start_together(self.servers)

    @property
    def addresses(self) -> list[str]:
        return [s.address for s in self.servers]

    def key_files(self, name: str) -> tuple[Path, Path]:
        keys = self.users.authorized_keys.parent / "keys"
        return keys / f"{name}.key", keys / f"{name}.key_secret"

    def set_as(self, name: str = "alice", **options) -> ServerSet:
        servers = connect(
            self.addresses,
            server_key=self.public,
            client_keys=self.key_files(name),
            **options,
        )
        assert isinstance(servers, ServerSet)
        return servers

    def direct(self, index: int, name: str = "alice") -> Connection:
        return connect(
            self.addresses[index],
            server_key=self.public[index],
            client_keys=self.key_files(name),
        )


@pytest.fixture(scope="module")
def pair(tmp_path_factory, plates_root):
    made = Pair(tmp_path_factory.mktemp("pair"), plates_root)
    yield made
    for server in made.servers:
        server.kill()


@pytest.fixture(scope="module")
def direct(pair):
    """Alice's own connection to each server, to check whose store has what."""
    conns = [pair.direct(0), pair.direct(1)]
    yield conns
    for conn in conns:
        conn.close()


@pytest.fixture(scope="module")
def busy_a(direct):
    """A slow execution of alice on server A: A is the busier one while it runs."""
    run = direct[0].submit(slow_pipeline(40), SMALL)
    yield run
    if run.state not in {"done", "failed", "cancelled"}:
        direct[0].cancel(run.id)


@pytest.fixture(scope="module")
def servers(pair):
    servers = pair.set_as("alice")
    yield servers
    servers.close()


def test_when_a_server_is_busy_then_submit_goes_to_the_least_loaded(
    servers, direct, busy_a
):
    loads = servers.loads()
    assert [load.address for load in loads] == list(servers.addresses)
    assert loads[0].reply.queued_wells + loads[0].reply.running_wells > 0
    assert loads[0].wells_per_worker > loads[1].wells_per_worker

    run = servers.submit(nuclei_count_pipeline(), SMALL, wells=["A01"])

    # The execution is in B's store, and A answers like for any unknown id.
    assert direct[1].status(run.id).execution_id == run.id
    with pytest.raises(RemoteUnknownExecution):
        direct[0].status(run.id)
    assert servers.status(run.id).execution_id == run.id
    assert run.wait(60)
    assert run.state == "done"
    assert list(run.result()["well"]) == ["A01"]


def test_when_a_server_is_busy_then_preview_runs_on_the_other(pair, servers, busy_a):
    assert servers.loads()[0].wells_per_worker > 0  # A still has wells to run
    shown = servers.preview(nuclei_count_pipeline(), SMALL, "A02", upto=1)
    assert shown.well == "A02" and shown.images
    audits = [s.results_root / "audit.jsonl" for s in pair.servers]
    assert '"preview"' not in audits[0].read_text()
    assert '"preview"' in audits[1].read_text()


def test_when_cancelling_a_run_the_set_did_not_submit_then_its_owner_cancels_it(
    pair, direct, busy_a
):
    with pair.set_as("alice") as fresh:  # knows no owners yet: asks both servers
        assert fresh.owner(busy_a.id).address == direct[0].address
        assert fresh.cancel(busy_a.id) == "cancelled"
    assert direct[0].status(busy_a.id).state == "cancelled"
    with pytest.raises(RemoteUnknownExecution):
        direct[1].cancel(busy_a.id)


def test_when_attaching_by_id_then_the_owning_server_gives_the_handle(pair, direct):
    run = direct[1].submit(nuclei_count_pipeline(), SMALL, wells=["B02"])
    assert run.wait(60)
    with pair.set_as("alice") as fresh:
        again = fresh.attach(run.id)
        assert fresh.owner(run.id).address == direct[1].address
        assert again.wait(60)
        assert list(again.result()["well"]) == ["B02"]
        with pytest.raises(RemoteUnknownExecution):
            direct[0].attach(run.id)


def test_when_an_id_is_unknown_everywhere_then_one_line_names_the_servers(servers):
    with pytest.raises(RemoteUnknownExecution) as caught:
        servers.attach("ex-000000000000")
    message = str(caught.value)
    assert "\n" not in message
    for address in servers.addresses:
        assert address in message


def test_when_listing_executions_then_rows_of_both_servers_say_their_server(
    servers, direct, busy_a
):
    mine_b = direct[1].submit(nuclei_count_pipeline(), SMALL, wells=["A02"])
    rows = servers.executions()
    assert all(isinstance(row, ServerExecutionInfo) for row in rows)
    by_id = {row.execution_id: row.server for row in rows}
    assert by_id[busy_a.id] == direct[0].address
    assert by_id[mine_b.id] == direct[1].address
    assert [r.submitted_at for r in rows] == sorted(
        (r.submitted_at for r in rows), reverse=True
    )
    mine_b.wait(60)


def test_when_a_plate_is_on_one_server_only_then_the_set_finds_it_there(servers):
    assert ONLY_ON_B in servers.plates()
    assert ONLY_ON_B not in servers.plates_by_server()[servers.addresses[0]]
    assert servers.plate_info(ONLY_ON_B).wells
    # Whatever the loads, only B can run it.
    run = servers.submit(nuclei_count_pipeline(), ONLY_ON_B, wells=["A03"])
    assert servers.owner(run.id).address == servers.addresses[1]
    run.wait(60)
    with pytest.raises(RemoteUnknownPlate) as caught:
        servers.plate_info("no-such-plate")
    assert all(a in str(caught.value) for a in servers.addresses)


def test_when_another_user_asks_the_load_then_only_totals_come_back(pair, direct):
    run = direct[0].submit(slow_pipeline(40), SMALL)
    bob = pair.direct(0, "bob")
    try:
        load = bob._call(ServerStatus(rid=0))
        assert load.active_executions >= 1
        assert load.user_active_executions == 0
        assert set(load.__struct_fields__) == set(ServerStatusReply.__struct_fields__)
        with pytest.raises(RemoteUnknownExecution):
            bob.status(run.id)
    finally:
        bob.close()
        direct[0].cancel(run.id)
    audit = (pair.servers[0].results_root / "audit.jsonl").read_text()
    assert '"server_status"' in audit and '"bob"' in audit


def test_when_the_env_names_two_servers_then_connect_uses_both(pair, monkeypatch):
    monkeypatch.setenv("OPENHCS_NB_SERVER", ",".join(pair.addresses))
    monkeypatch.setenv("OPENHCS_NB_SERVER_KEY", " ".join(pair.public))
    monkeypatch.setenv("OPENHCS_NB_CLIENT_KEY", str(pair.key_files("bob")[1]))
    with connect() as servers:
        assert isinstance(servers, ServerSet)
        assert servers.addresses == tuple(pair.addresses)
        assert [c.server_info.user for c in servers.connections] == ["bob", "bob"]


def test_when_a_second_address_is_dead_then_connect_warns_and_uses_the_first(pair):
    dead = _dead_address()
    with pytest.warns(ServerUnreachableWarning, match=dead) as caught:
        servers = connect(
            [pair.addresses[0], dead],
            server_key=pair.public[0],
            client_keys=pair.key_files("alice"),
            connect_timeout=1.0,
        )
    with servers:
        assert servers.addresses == (pair.addresses[0],)
        assert "\n" not in str(caught[0].message)
        assert servers.plate_info(SMALL).wells


def test_when_no_address_answers_then_connect_names_them_all():
    dead = [_dead_address(), _dead_address()]
    with pytest.raises(ServerUnavailable) as caught:
        connect(dead, connect_timeout=0.5)
    assert all(a in str(caught.value) for a in dead)
    assert "\n" not in str(caught.value)


def test_when_addresses_and_keys_are_written_then_the_rule_splits_them():
    assert split_addresses("tcp://a:1 tcp://b:2,tcp://c:3") == [
        "tcp://a:1",
        "tcp://b:2",
        "tcp://c:3",
    ]
    assert split_addresses(["tcp://a:1", "tcp://a:1"]) == ["tcp://a:1"]
    assert keys_per_server("k1", 2) == ["k1", "k1"]
    assert keys_per_server("k1, k2", 2) == ["k1", "k2"]
    assert keys_per_server(None, 2) == [None, None]
    with pytest.raises(ClientKeyError, match="one per server"):
        keys_per_server("k1 k2 k3", 2)


def test_when_loads_tie_then_the_user_with_fewer_runs_there_then_order_decides():
    def load(queued: int, workers: int, mine: int) -> ServerLoad:
        reply = ServerStatusReply(
            rid=0,
            workers=workers,
            queued_wells=queued,
            running_wells=0,
            active_executions=mine,
            user_active_executions=mine,
        )
        return ServerLoad("x", reply)

    assert by_load([load(4, 1, 0), load(4, 2, 0)]) == [1, 0]
    assert by_load([load(2, 1, 1), load(2, 1, 0)]) == [1, 0]
    assert by_load([load(0, 1, 0), load(0, 1, 0)]) == [0, 1]
    assert by_load([ServerLoad("silent", None), load(9, 1, 3)]) == [1, 0]


def _dead_address() -> str:
    """A loopback port nothing listens on (the OS picked it, then it was freed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


def test_when_a_server_dies_later_then_runs_go_to_the_living_one(server_factory):
    alive, dying = (server_factory(n, workers=1) for n in ("alive", "dying"))
    _start_together([alive, dying])
    servers = connect([alive.address, dying.address], timeout=5.0)
    servers.load_timeout = 0.5  # a dead server costs this much per submit
    try:
        dying.kill()
        loads = servers.loads()
        assert loads[1].reply is None and loads[0].reply is not None
        run = servers.submit(nuclei_count_pipeline(), SMALL, wells=["A01"])
        assert servers.owner(run.id).address == alive.address
        with pytest.warns(ServerUnreachableWarning, match=dying.address):
            rows = servers.executions(timeout=1.0)
        assert [r.server for r in rows] == [alive.address]
    finally:
        servers.close()


def _start_together(servers: list[ServerProcess]) -> None:
    """Start every server at once (each start waits until its server is ready)."""
    starts = [threading.Thread(target=s.start) for s in servers]
    for thread in starts:
        thread.start()
    for thread in starts:
        thread.join()
    assert all(s.address.rsplit(":", 1)[1] != "0" for s in servers)
