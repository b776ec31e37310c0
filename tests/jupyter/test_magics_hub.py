"""%openhcs_connect as a JupyterHub user: address and keys from the environment."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from openhcs_nb.server.keys import generate_keys, load_keypair


@pytest.fixture
def shell():
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "openhcs_nb")
    yield ip
    InteractiveShell.clear_instance()


def test_when_hub_sets_the_variables_then_a_bare_connect_uses_curve(
    shell, server_factory, tmp_path, monkeypatch
):
    keys = tmp_path / "keys"
    server_public, server_secret = generate_keys(keys, "server")
    _, alice_secret = generate_keys(keys, "alice")
    authorized = tmp_path / "authorized_keys"
    authorized.write_text(f"{load_keypair(alice_secret).public.decode()} alice\n")
    server = server_factory(
        extra=(
            "[security]\n"
            f'server_secret_key = "{server_secret}"\n'
            f'authorized_keys = "{authorized}"\n'
        )
    ).start()
    monkeypatch.setenv("OPENHCS_NB_SERVER", server.address)
    monkeypatch.setenv("OPENHCS_NB_SERVER_KEY", str(server_public))
    monkeypatch.setenv("OPENHCS_NB_CLIENT_KEY", str(alice_secret))
    conn = shell.run_line_magic("openhcs_connect", "")
    assert conn.server_info.user == "alice"
    assert "small.ome.zarr" in conn.plates()
    shell.run_line_magic("openhcs_disconnect", "")
    magics = shell.magics_manager.registry["OpenHCSMagics"]
    assert magics.connection is None


def test_when_nothing_says_where_the_server_is_then_usage_error(shell, monkeypatch):
    monkeypatch.delenv("OPENHCS_NB_SERVER", raising=False)
    with pytest.raises(UsageError, match="OPENHCS_NB_SERVER"):
        shell.run_line_magic("openhcs_connect", "")
