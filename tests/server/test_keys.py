"""CurveZMQ key files and the ZAP handler, with real sockets on 127.0.0.1."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
import zmq
import zmq.auth

from openhcs_nb.server.config import ConfigError
from openhcs_nb.server.keys import (
    AuthorizedKeys,
    KeyPair,
    cmd_keys_generate,
    configure_server_socket,
    generate_keys,
    load_keypair,
    load_public_key,
    start_authenticator,
)

REPLY_WAIT_MS = 5000  # generous: a listed client must get through
SILENCE_WAIT_MS = 500  # a refused client must see nothing within this poll


@pytest.fixture
def context():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, KeyPair]:
    pairs = {}
    for name in ("server", "alice", "mallory"):
        _, secret = generate_keys(tmp_path / "keys", name)
        pairs[name] = load_keypair(secret)
    return pairs


def serve(context: zmq.Context, server: KeyPair) -> tuple[zmq.Socket, str]:
    router = context.socket(zmq.ROUTER)
    router.linger = 0
    configure_server_socket(router, server)
    router.bind("tcp://127.0.0.1:0")
    return router, router.last_endpoint.decode()


def connect(
    context: zmq.Context, endpoint: str, client: KeyPair, server_public: bytes
) -> zmq.Socket:
    dealer = context.socket(zmq.DEALER)
    dealer.linger = 0
    dealer.curve_publickey = client.public
    dealer.curve_secretkey = client.secret
    dealer.curve_serverkey = server_public
    dealer.connect(endpoint)
    dealer.send(b"hello")
    return dealer


def silent(*sockets: zmq.Socket) -> bool:
    """True when no socket has anything to read within one shared poll."""
    poller = zmq.Poller()
    for socket in sockets:
        poller.register(socket, zmq.POLLIN)
    return poller.poll(SILENCE_WAIT_MS) == []


# --- files --------------------------------------------------------------------------


def test_when_keys_are_generated_then_secret_is_private_and_loads(tmp_path):
    public_path, secret_path = generate_keys(tmp_path / "keys")
    assert (public_path.name, secret_path.name) == ("server.key", "server.key_secret")
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
    assert "secret-key" not in public_path.read_text()
    pair = load_keypair(secret_path)
    assert load_public_key(public_path) == pair.public
    assert zmq.auth.load_certificate(secret_path) == (pair.public, pair.secret)
    assert len(pair.public) == len(pair.secret) == 40


def test_when_keys_exist_then_generate_refuses_to_overwrite(tmp_path):
    _, secret_path = generate_keys(tmp_path)
    before = secret_path.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        generate_keys(tmp_path)
    assert secret_path.read_bytes() == before


def test_when_secret_is_group_readable_then_load_refuses(tmp_path):
    _, secret_path = generate_keys(tmp_path)
    secret_path.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_keypair(secret_path)


def test_when_authorized_file_lists_keys_then_names_map(tmp_path, keys):
    listing = tmp_path / "authorized_keys"
    listing.write_text(
        f"# facility users\n\n{keys['alice'].public.decode()} alice smith\n"
        f"{keys['mallory'].public.decode()}\n"
    )
    authorized = AuthorizedKeys.load(listing)
    assert authorized.name_of(keys["alice"].public) == "alice smith"
    assert authorized.name_of(keys["mallory"].public) == "authorized_keys"
    assert keys["server"].public not in authorized
    assert len(authorized) == 2


def test_when_authorized_is_a_folder_then_certificates_load_and_secrets_skip(
    tmp_path, keys
):
    authorized = AuthorizedKeys.load(tmp_path / "keys")
    assert authorized.name_of(keys["alice"].public) == "alice"
    assert len(authorized) == 3  # three *.key files; *.key_secret files skipped


def test_when_authorized_line_is_bad_then_error_names_file_and_line(tmp_path, keys):
    listing = tmp_path / "authorized_keys"
    listing.write_text(f"{keys['alice'].public.decode()} alice\nnot-a-key bob\n")
    with pytest.raises(ConfigError, match="authorized_keys, line 2"):
        AuthorizedKeys.load(listing)


def test_when_authorized_is_empty_or_missing_then_load_refuses(tmp_path):
    (tmp_path / "empty").write_text("# nobody yet\n")
    with pytest.raises(ConfigError, match="nobody could connect"):
        AuthorizedKeys.load(tmp_path / "empty")
    with pytest.raises(ConfigError, match="not found"):
        AuthorizedKeys.load(tmp_path / "absent")


def test_when_cli_generates_client_keys_then_it_prints_the_authorized_line(tmp_path):
    out = io.StringIO()
    public_path, secret_path = cmd_keys_generate(tmp_path, "alice", out=out)
    text = out.getvalue()
    assert str(public_path) in text
    assert str(secret_path) in text
    assert f"{load_public_key(public_path).decode()} alice" in text


def test_when_cli_generates_server_keys_then_it_prints_the_config_line(tmp_path):
    out = io.StringIO()
    _, secret_path = cmd_keys_generate(tmp_path, out=out)
    assert f"server_secret_key = '{secret_path}'" in out.getvalue()


# --- the ZAP handler with real sockets ----------------------------------------------


def authorized_alice(keys: dict[str, KeyPair], tmp_path: Path) -> AuthorizedKeys:
    listing = tmp_path / "authorized_keys"
    listing.write_text(f"{keys['alice'].public.decode()} alice\n")
    return AuthorizedKeys.load(listing)


def test_when_listed_client_connects_then_server_sees_its_name(context, keys, tmp_path):
    authenticator = start_authenticator(context, authorized_alice(keys, tmp_path))
    try:
        router, endpoint = serve(context, keys["server"])
        dealer = connect(context, endpoint, keys["alice"], keys["server"].public)
        assert router.poll(REPLY_WAIT_MS)
        identity, body = router.recv_multipart(copy=False)
        assert body.bytes == b"hello"
        assert body.get("User-Id") == "alice"
        router.send_multipart([identity.bytes, b"welcome"])
        assert dealer.poll(REPLY_WAIT_MS)
        assert dealer.recv() == b"welcome"
    finally:
        authenticator.stop()


def test_when_unknown_client_connects_then_nothing_arrives(context, keys, tmp_path):
    authenticator = start_authenticator(context, authorized_alice(keys, tmp_path))
    try:
        router, endpoint = serve(context, keys["server"])
        dealer = connect(context, endpoint, keys["mallory"], keys["server"].public)
        assert silent(router, dealer)
    finally:
        authenticator.stop()


def test_when_client_pins_wrong_server_key_then_nothing_arrives(
    context, keys, tmp_path
):
    authenticator = start_authenticator(context, authorized_alice(keys, tmp_path))
    try:
        router, endpoint = serve(context, keys["server"])
        dealer = connect(context, endpoint, keys["alice"], keys["mallory"].public)
        assert silent(router, dealer)
    finally:
        authenticator.stop()


def test_when_no_authenticator_runs_then_even_listed_clients_are_refused(context, keys):
    router, endpoint = serve(context, keys["server"])
    dealer = connect(context, endpoint, keys["alice"], keys["server"].public)
    assert silent(router, dealer)


def test_when_keys_are_updated_then_new_client_is_admitted(context, keys, tmp_path):
    authenticator = start_authenticator(context, authorized_alice(keys, tmp_path))
    try:
        authenticator.update(AuthorizedKeys({keys["mallory"].public: "mallory"}))
        router, endpoint = serve(context, keys["server"])
        dealer = connect(context, endpoint, keys["mallory"], keys["server"].public)
        assert router.poll(REPLY_WAIT_MS)
        assert router.recv_multipart(copy=False)[1].get("User-Id") == "mallory"
        assert not dealer.closed
    finally:
        authenticator.stop()
