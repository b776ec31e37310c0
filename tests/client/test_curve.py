"""CurveZMQ against a real server: pinned key, client keys, refusal."""

from __future__ import annotations

import pytest
from client_helpers import SMALL
from server_process import ServerProcess

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.client import ServerUnavailable, connect
from openhcs_nb.server.keys import generate_keys


@pytest.fixture
def curve_server(tmp_path, plates_root):
    keys = tmp_path / "keys"
    server_public, server_secret = generate_keys(keys, "server")
    clients = tmp_path / "clients"
    alice_public, alice_secret = generate_keys(clients, "alice")
    extra = (
        f'[security]\nserver_secret_key = "{server_secret}"\n'
        f'authorized_keys = "{clients}"\n'
    )
    server = ServerProcess(tmp_path / "server", plates_root, extra=extra).start()
    yield server, server_public, (alice_public, alice_secret)
    server.kill()


def test_when_keys_match_then_commands_and_events_flow_encrypted(curve_server):
    server, server_public, alice = curve_server
    with connect(server.address, server_public, client_keys=alice) as conn:
        assert conn.server_info is not None
        assert conn.server_info.user == "alice"
        execution = conn.submit(nuclei_count_pipeline(), SMALL, wells=["A01", "B02"])
        seen = list(execution)  # events arrive over the encrypted SUB
        assert sorted(w.well for w in seen) == ["A01", "B02"]
        assert execution.state == "done"


def test_when_the_client_key_is_not_authorized_then_connect_fails_clearly(
    curve_server,
):
    server, server_public, _ = curve_server
    with pytest.raises(ServerUnavailable, match="is the key right"):
        connect(server.address, server_public, timeout=1.0)
