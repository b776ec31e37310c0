"""CurveZMQ on the real server: listed keys get in and are named, others do not."""

from __future__ import annotations

import pytest
import zmq
from raw_client import RawClient

from openhcs_nb.protocol import Hello, HelloReply
from openhcs_nb.server.keys import generate_keys, load_keypair


@pytest.fixture
def curve_server(server_factory, tmp_path):
    keys = tmp_path / "keys"
    _server_public, server_secret = generate_keys(keys, "server")
    _alice_public, alice_secret = generate_keys(keys, "alice")
    authorized = tmp_path / "authorized_keys"
    alice = load_keypair(alice_secret)
    authorized.write_text(f"{alice.public.decode()} alice\n")
    server = server_factory(
        extra=(
            "[security]\n"
            f'server_secret_key = "{server_secret}"\n'
            f'authorized_keys = "{authorized}"\n'
        )
    ).start()
    return server, load_keypair(server_secret).public, alice, keys


def test_when_client_key_is_authorized_then_it_talks_and_is_named(curve_server):
    server, server_public, alice, _ = curve_server
    client = RawClient(server.address, keys=(server_public, alice.public, alice.secret))
    try:
        reply, _ = client.call(Hello(rid=1, client="alice"))
        assert isinstance(reply, HelloReply)
        assert reply.user == "alice"
    finally:
        client.close()


def test_when_client_key_is_unknown_then_the_server_never_answers(curve_server):
    server, server_public, _, _ = curve_server
    public, secret = zmq.curve_keypair()
    client = RawClient(server.address, keys=(server_public, public, secret))
    try:
        client.send_frames([b"anything"])
        assert not client.dealer.poll(2000)
    finally:
        client.close()


def test_when_client_pins_the_wrong_server_key_then_nothing_gets_through(curve_server):
    server, _, alice, _ = curve_server
    wrong_server, _ = zmq.curve_keypair()
    client = RawClient(server.address, keys=(wrong_server, alice.public, alice.secret))
    try:
        client.send_frames([b"anything"])
        assert not client.dealer.poll(2000)
    finally:
        client.close()


def test_when_client_speaks_plain_text_to_a_curve_server_then_it_is_ignored(
    curve_server,
):
    server, *_ = curve_server
    client = RawClient(server.address)
    try:
        client.send_frames([b"hello"])
        assert not client.dealer.poll(2000)
    finally:
        client.close()
