"""Commands against a real server process: handshake, plates, errors, preview."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import zmq
from client_helpers import SMALL

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.client import (
    RemotePipelineCodeError,
    RemoteUnknownExecution,
    RemoteUnknownPlate,
    RemoteUnknownWell,
    ServerUnavailable,
    connect,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_when_no_server_listens_then_connect_fails_with_a_clear_message():
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnavailable) as info:
        connect(address, timeout=0.5)
    message = str(info.value)
    assert message.startswith(f"no openhcs server answers at {address}")
    assert "is it running? (openhcs-server serve" in message
    assert "\n" not in message


def test_when_no_server_listens_then_connect_gives_up_after_connect_timeout():
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnavailable) as info:
        connect(address, connect_timeout=0.3)  # commands would wait 10 s
    assert "nothing after 0.3 s" in str(info.value)


def test_when_no_connect_timeout_is_given_then_connect_gives_up_after_3_s():
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnavailable) as info:
        connect(address)  # the command timeout stays 10 s
    assert "nothing after 3 s" in str(info.value)


def test_when_the_pinned_key_does_not_match_then_connect_fails_clearly(demo_server):
    wrong_key, _ = zmq.curve_keypair()
    with pytest.raises(ServerUnavailable, match="is the key right"):
        connect(demo_server.address, wrong_key.decode(), timeout=0.5)


def test_when_connected_then_hello_gives_version_catalogue_and_event_port(conn):
    assert conn.server_info is not None
    assert conn.server_info.workers >= 1
    assert "gaussian_blur" in {f.name for f in conn.catalogue}
    assert conn.event_address is not None
    assert conn.event_address.startswith("tcp://127.0.0.1:")


def test_when_listing_plates_then_the_test_plate_is_there(conn):
    assert SMALL in conn.plates()
    info = conn.plate_info(SMALL)
    assert info.wells == ["A01", "A02", "A03", "B01", "B02", "B03"]
    assert info.channels == ["DAPI", "GFP"]


def test_when_plate_is_unknown_then_remote_unknown_plate(conn):
    with pytest.raises(RemoteUnknownPlate):
        conn.plate_info("nope.ome.zarr")
    with pytest.raises(RemoteUnknownPlate):
        conn.submit(nuclei_count_pipeline(), "nope.ome.zarr")


def test_when_pipeline_code_is_refused_then_line_and_col_are_given(conn):
    code = nuclei_count_pipeline().to_code() + "\nimport os\n"
    with pytest.raises(RemotePipelineCodeError) as info:
        conn.submit(code, SMALL)
    lines = code.splitlines()
    assert info.value.line is not None
    assert lines[info.value.line - 1].startswith("import os")
    assert info.value.col == 1  # 1-based, like the line


def test_when_previewing_then_images_come_back_writable(conn):
    result = conn.preview(nuclei_count_pipeline(), SMALL, "A01", upto=2, max_size=64)
    assert result.well == "A01"
    assert result.images
    assert any(name.startswith("labels/") for name in result.images)
    image = next(iter(result.images.values()))
    assert max(image.shape) <= 64
    assert image.flags.writeable
    image[...] = 0
    assert not np.any(image)


def test_when_preview_well_is_not_on_the_plate_then_remote_unknown_well(conn):
    with pytest.raises(RemoteUnknownWell):
        conn.preview(nuclei_count_pipeline(), SMALL, "H12")


def test_when_execution_id_is_unknown_then_status_and_attach_refuse(conn):
    with pytest.raises(RemoteUnknownExecution):
        conn.status("ex-nothing")
    with pytest.raises(RemoteUnknownExecution):
        conn.attach("ex-nothing")


def test_when_closed_then_repr_says_so_and_calls_fail(demo_server):
    connection = connect(demo_server.address)
    assert "server" in repr(connection)
    connection.close()
    assert "closed" in repr(connection)
    assert "closed" in connection._repr_html_()
    with pytest.raises(ServerUnavailable):
        connection.plates()


def test_when_no_address_is_given_then_connect_reads_openhcs_nb_server(
    demo_server, monkeypatch
):
    monkeypatch.setenv("OPENHCS_NB_SERVER", demo_server.address)
    monkeypatch.delenv("OPENHCS_NB_SERVER_KEY", raising=False)
    with connect() as connection:
        assert connection.address == demo_server.address
        assert SMALL in connection.plates()


def test_when_no_address_and_no_environment_then_connect_says_what_to_set(
    monkeypatch,
):
    monkeypatch.delenv("OPENHCS_NB_SERVER", raising=False)
    with pytest.raises(ServerUnavailable, match=r"set \$OPENHCS_NB_SERVER"):
        connect()


def test_when_the_address_comes_from_the_environment_then_so_do_the_keys(tmp_path):
    from openhcs_nb.client._connect import resolve_target

    env = {
        "OPENHCS_NB_SERVER": "tcp://hub:7710",
        "OPENHCS_NB_SERVER_KEY": "server.key",
        "OPENHCS_NB_CLIENT_KEY": str(tmp_path / "alice.key_secret"),
        "OMERO_SESSION_KEY": "omero-123",
    }
    target = resolve_target(None, None, None, None, env)
    assert target.address == "tcp://hub:7710"
    assert target.server_key == "server.key"
    assert target.client_keys == (tmp_path / "alice.key", tmp_path / "alice.key_secret")
    assert target.omero_session == "omero-123"
    given = resolve_target("tcp://127.0.0.1:1", None, None, None, env)
    assert (given.server_key, given.client_keys, given.omero_session) == (
        None,
        None,
        None,
    )
