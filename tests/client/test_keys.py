"""Reading CurveZMQ keys on the client: Z85 text, certificates, key lines."""

from __future__ import annotations

import pytest
import zmq

from openhcs_nb.client import ClientKeyError
from openhcs_nb.client._keys import curve_keys, read_public_key, read_secret_key


def certificate(path, public: bytes, secret: bytes | None = None):
    lines = [
        "metadata",
        '    name = "x"',
        "curve",
        f'    public-key = "{public.decode()}"',
    ]
    if secret:
        lines.append(f'    secret-key = "{secret.decode()}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def test_when_z85_text_then_it_is_the_key():
    public, _ = zmq.curve_keypair()
    assert read_public_key(public.decode()) == public


def test_when_certificate_or_key_line_then_the_public_key_is_read(tmp_path):
    public, _ = zmq.curve_keypair()
    assert read_public_key(certificate(tmp_path / "s.key", public)) == public
    line = tmp_path / "plain.txt"
    line.write_text(f"# comment\n{public.decode()} server\n")
    assert read_public_key(line) == public


def test_when_secret_certificate_then_both_keys_are_read(tmp_path):
    public, secret = zmq.curve_keypair()
    path = certificate(tmp_path / "c.key_secret", public, secret)
    assert read_secret_key(path) == (public, secret)


def test_when_no_client_keys_then_an_ephemeral_pair_is_made():
    server, _ = zmq.curve_keypair()
    keys = curve_keys(server.decode(), None)
    assert keys is not None
    assert keys.server_public == server
    assert len(keys.client_public) == 40 and len(keys.client_secret) == 40


def test_when_no_server_key_then_no_curve():
    assert curve_keys(None, None) is None


def test_when_key_is_neither_text_nor_file_then_a_clear_error(tmp_path):
    with pytest.raises(ClientKeyError, match="neither a 40-character Z85 key"):
        read_public_key(str(tmp_path / "missing.key"))


def test_when_client_pair_does_not_match_then_refused(tmp_path):
    server, _ = zmq.curve_keypair()
    a_public, a_secret = zmq.curve_keypair()
    b_public, _ = zmq.curve_keypair()
    secret = certificate(tmp_path / "c.key_secret", a_public, a_secret)
    public = certificate(tmp_path / "other.key", b_public)
    with pytest.raises(ClientKeyError, match="not the same key pair"):
        curve_keys(server.decode(), (public, secret))
