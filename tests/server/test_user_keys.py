"""``openhcs-server keys add`` / ``keys revoke`` against a running CurveZMQ server.

The commands run as an admin runs them (a subprocess with ``--config``); the
server is a real process that reloads ``authorized_keys`` live, and the new
user logs in with exactly what ``keys add --json`` printed.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from multiuser import start_curve_server

import openhcs_nb as hcs
from openhcs_nb.client.errors import ServerUnavailable
from openhcs_nb.server.config import ConfigError, load_config
from openhcs_nb.server.user_keys import add_user_key, check_user, users_with_keys


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "openhcs_nb.server.cli", "keys", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _connect_as(made: dict, address: str, timeout: float = 15.0):
    secret = Path(made["secret_key_file"])
    public = Path(made["public_key_file"])
    deadline = time.monotonic() + timeout
    while True:
        try:
            return hcs.connect(
                address,
                server_key=made["server_public_key"],
                client_keys=(public, secret),
                connect_timeout=2.0,
            )
        except ServerUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture
def curve_server(tmp_path, plates_root):
    server, users = start_curve_server(tmp_path, plates_root, ["alice"])
    yield server, users
    server.kill()


def test_add_then_revoke_takes_effect_live(curve_server, tmp_path):
    server, users = curve_server
    config = server.base / "server.toml"
    out = tmp_path / "hub-keys" / "carol"
    added = _cli("add", "carol", "--config", str(config), "--out", str(out), "--json")
    assert added.returncode == 0, added.stderr
    made = json.loads(added.stdout)
    assert made["user"] == "carol"
    assert made["server_public_key"] == users.server_public.decode()
    # the address clients are told is the configured one (here: port 0)
    assert made["server_address"] == load_config(config).server.command_address
    secret = Path(made["secret_key_file"])
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE(users.authorized_keys.stat().st_mode) == 0o600
    assert f"{made['public_key']} carol" in users.authorized_keys.read_text()
    assert "alice" in users.authorized_keys.read_text()  # others untouched

    conn = _connect_as(made, server.address)  # the server reloaded by itself
    try:
        assert conn.server_info.user == "carol"
        again = _cli("add", "carol", "--config", str(config), "--out", str(out))
        assert again.returncode != 0
        assert "already has a key" in again.stderr
        assert "--force" in again.stderr
        assert len(again.stderr.strip().splitlines()) == 1

        revoked = _cli("revoke", "carol", "--config", str(config))
        assert revoked.returncode == 0, revoked.stderr
        assert "carol" not in users.authorized_keys.read_text()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                conn.plates(timeout=2)
            except hcs.OpenHCSError:
                break  # cut off: refused or disconnected
            time.sleep(0.3)
        else:
            pytest.fail("a revoked key kept working")
    finally:
        conn.close()
    with pytest.raises(ServerUnavailable):
        hcs.connect(
            server.address,
            server_key=made["server_public_key"],
            client_keys=(Path(made["public_key_file"]), secret),
            connect_timeout=2.0,
        )


def test_force_replaces_the_key_and_the_old_one_stops(curve_server, tmp_path):
    server, _users = curve_server
    config = load_config(server.base / "server.toml")
    out = tmp_path / "k"
    first = add_user_key(config, "dave", out).as_dict()
    with pytest.raises(ConfigError, match="already has a key"):
        add_user_key(config, "dave", tmp_path / "elsewhere")
    second = add_user_key(config, "dave", out, force=True).as_dict()
    assert first["public_key"] != second["public_key"]
    text = config.security.authorized_keys.read_text()
    assert first["public_key"] not in text
    assert text.count(" dave") == 1
    conn = _connect_as(second, server.address)
    conn.close()


def test_folder_form_of_authorized_keys(tmp_path):
    folder = tmp_path / "authorized"
    folder.mkdir()
    (tmp_path / "server.toml").write_text(
        f'[security]\nauthorized_keys = "{folder}"\n'
        f'[results]\nroot = "{tmp_path / "r"}"\n'
    )
    config = load_config(tmp_path / "server.toml")
    add_user_key(config, "erin", tmp_path / "keys")
    assert (folder / "erin.key").is_file()
    assert users_with_keys(folder) == {"erin"}
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    out = _cli("revoke", "erin", "--config", str(tmp_path / "server.toml"))
    assert out.returncode == 0, out.stderr
    assert users_with_keys(folder) == set()
    again = _cli("revoke", "erin", "--config", str(tmp_path / "server.toml"))
    assert again.returncode != 0
    assert "has no key" in again.stderr


@pytest.mark.parametrize(
    "name", ["bob smith", "eve\nmallory", "../root", "", ".hidden", "x" * 65]
)
def test_names_that_could_forge_a_line_or_a_path_are_refused(name):
    with pytest.raises(ConfigError):
        check_user(name)
