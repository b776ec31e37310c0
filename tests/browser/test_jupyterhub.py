"""A real JupyterHub, two users, one execution server, each with their own key.

The hub is the ``jupyterhub`` package with npm's configurable-http-proxy, a
password authenticator and local-process spawners, configured exactly as
``docs/jupyterhub.md`` shows: :class:`openhcs_nb.hub.KeyProvisioner` as the
pre-spawn hook, which runs ``openhcs-server keys add`` for each user on their
first spawn. Both users log in through the hub's login page in Chromium, run
the same notebook in their own JupyterLab, and the checks read what each
kernel saw and what the server stored: each run belongs to the key that
submitted it, and neither user can reach the other's run.
"""

from __future__ import annotations

import os
import sqlite3

import pytest
from hub_fixture import (
    VENV_BIN,
    hub_config,
    log_in_and_run,
    prepare_home,
    proxy_command,
    running_hub,
)
from lab import ARGS, CHROMIUM, needs
from multiuser import make_users
from server_process import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct horse"
USERS = ("alice", "bob")


AUTH = f"""
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
"""


#: What each user runs: connect with no arguments, run, look around.
CELLS = [
    "%load_ext openhcs_nb\nimport json, pathlib\nimport openhcs_nb as hcs",
    "conn = %openhcs_connect",
    "pipeline = hcs.nuclei_count_pipeline()",
    "%openhcs_run plate=small.ome.zarr wells=A01:A02 pipeline=pipeline",
    "table = _openhcs.result(timeout=180)\n"
    "other = pathlib.Path('other_id')\n"
    "denied = ''\n"
    "if other.exists():\n"
    "    try:\n"
    "        conn.attach(other.read_text().strip())\n"
    "    except Exception as exc:\n"
    "        denied = str(exc)\n"
    "seen = {\n"
    "    'user': conn.server_info.user,\n"
    "    'id': _openhcs.id,\n"
    "    'counts': table['count'].tolist(),\n"
    "    'executions': [e.execution_id for e in conn.executions()],\n"
    "    'events': sorted({w for w in _openhcs.wells}),\n"
    "    'denied': denied,\n"
    "}\n"
    "pathlib.Path('seen.json').write_text(json.dumps(seen))\n"
    "print('checked', seen['user'])",
]


@pytest.fixture
def facility(tmp_path, plates_root):
    """One CurveZMQ execution server and a JupyterHub in front of its users."""
    proxy_command()  # skips early without the proxy
    users = make_users(tmp_path / "keys", ["admin"])  # the server needs one key
    server = ServerProcess(
        tmp_path / "server", plates_root, workers=2, extra=users.security_toml
    ).start()
    base = tmp_path / "hub"
    base.mkdir()
    for user in USERS:
        prepare_home(base, user, CELLS)
    config, url = hub_config(base, AUTH, set(USERS), server)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENHCS_NB_")}
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    try:
        with running_hub(config, url, env) as (_hub, log):
            yield url, base, server, log  # the hub stops its users' servers
    finally:
        server.kill()


def test_two_hub_users_each_get_their_own_key_and_runs(facility):
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        needs(str(CHROMIUM))
    url, base, server, log = facility
    seen: dict[str, dict] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            seen["bob"] = log_in_and_run(
                browser, url, "bob", PASSWORD, base / "home" / "bob"
            )
            (base / "home" / "alice" / "other_id").write_text(seen["bob"]["id"])
            seen["alice"] = log_in_and_run(
                browser, url, "alice", PASSWORD, base / "home" / "alice"
            )
        finally:
            browser.close()
    for user in USERS:
        assert seen[user]["user"] == user, log.read_text()[-2000:]
        assert seen[user]["executions"] == [seen[user]["id"]]
        assert seen[user]["events"] == ["A01", "A02"]
        assert all(count > 0 for count in seen[user]["counts"])
    assert seen["alice"]["denied"].startswith("no execution")
    assert "not the owner" not in seen["alice"]["denied"]  # unknown and foreign alike
    with sqlite3.connect(server.results_root / "jobs.sqlite3") as db:
        owners = dict(db.execute("SELECT id, user FROM executions"))
    assert owners == {seen["alice"]["id"]: "alice", seen["bob"]["id"]: "bob"}
    keys = base / "hub-keys"
    for user in USERS:
        secret = keys / user / f"{user}.key_secret"
        assert secret.stat().st_mode & 0o077 == 0
    authorized = (server.base.parent / "keys" / "authorized_keys").read_text()
    assert " alice" in authorized and " bob" in authorized
