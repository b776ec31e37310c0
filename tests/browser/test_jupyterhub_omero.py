"""A real JupyterHub whose logins are OMERO logins; runs act as that OMERO user.

The hub runs :class:`openhcs_nb.hub_omero.OmeroAuthenticator` with the
:class:`openhcs_nb.hub.KeyProvisioner` pre-spawn hook, configured as
``docs/jupyterhub.md`` shows, except that the authenticator's gateway factory
is the OMERO double's (set in the hub's config file, as a facility would set
nothing). The execution server is a real ``openhcs-server`` process with
``[omero] enabled`` on the same double (``cli_with_double``). Both are built
from one description file: the session the hub's login makes is the session
the server joins. Bob and Alice log in through the hub's login page in
Chromium with their OMERO passwords and run their own OMERO plate; each run
acts as that OMERO user, the other's plate is refused in one line, and the
write-back on the double is done by that user.
"""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

pytest.importorskip("omero", reason="the omero extra (omero-py) is not installed")

from cli_with_double import ENV, FLAG
from hub_fixture import (
    VENV_BIN,
    hub_config,
    log_in,
    log_in_and_run,
    prepare_home,
    proxy_command,
    running_hub,
)
from lab import ARGS, CHROMIUM, needs
from multiuser import make_users
from omero_fixture import PASSWORDS, build_fixture
from server_process import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: each user's own plate (one well) and the other's, which they may not read
PLATES = {"bob": (104, 105), "alice": (105, 104)}

AUTH = """
from pathlib import Path
from omero_double import LoginFactory  # on PYTHONPATH: the hub's env below
c.JupyterHub.authenticator_class = "openhcs_nb.hub_omero.OmeroAuthenticator"
c.OmeroAuthenticator.omero_host = "double"
c.OmeroAuthenticator.gateway_factory = LoginFactory(Path({description!r}))
c.Authenticator.enable_auth_state = True
c.Authenticator.refresh_pre_spawn = True
"""


def cells(own: int, other: int) -> list[str]:
    """Connect with no arguments, run the own plate, try the other's."""
    return [
        "%load_ext openhcs_nb\nimport json, os, pathlib\nimport openhcs_nb as hcs",
        "conn = %openhcs_connect",
        "pipeline = hcs.nuclei_count_pipeline()",
        f"%openhcs_run plate=omero:{own} wells=A01 pipeline=pipeline",
        "table = _openhcs.result(timeout=180)\n"
        "try:\n"
        f"    conn.submit(pipeline, 'omero:{other}', wells=['A01'])\n"
        "    refused = ''\n"
        "except Exception as exc:\n"
        "    refused = f'{type(exc).__name__}: {exc}'\n"
        "seen = {\n"
        "    'user': conn.server_info.user,\n"
        "    'omero_user': conn.server_info.omero_user,\n"
        "    'session': os.environ.get('OMERO_SESSION_KEY', ''),\n"
        "    'id': _openhcs.id,\n"
        "    'status': table['status'].tolist(),\n"
        "    'refused': refused,\n"
        "}\n"
        "pathlib.Path('seen.json').write_text(json.dumps(seen))\n"
        "print('checked', seen['user'])",
    ]


@pytest.fixture
def facility(tmp_path, plates_root):
    """An OMERO double, an execution server on it, and a hub logging in to it."""
    proxy_command()  # skips early without the proxy
    description = build_fixture(tmp_path / "omero")
    users = make_users(tmp_path / "keys", ["admin"])  # the server needs one key
    omero = (
        '[omero]\nenabled = true\nhost = "double"\n'
        f'data_dir = "{description.parent}"\nretry_delay_s = 0.1\n'
    )
    server = ServerProcess(
        tmp_path / "server",
        plates_root,
        extra=users.security_toml + "\n" + omero,
        env=ENV,
        args=(FLAG, str(description)),
        module="cli_with_double",
    ).start()
    base = tmp_path / "hub"
    base.mkdir()
    for user, (own, other) in PLATES.items():
        prepare_home(base, user, cells(own, other))
    auth = AUTH.format(description=str(description))
    config, url = hub_config(base, auth, set(PLATES), server)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENHCS_NB_", "OMERO_"))
    }
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    env["PYTHONPATH"] = ENV["PYTHONPATH"]  # the hub config imports the double
    env["JUPYTERHUB_CRYPT_KEY"] = os.urandom(32).hex()
    try:
        with running_hub(config, url, env) as (_, log):
            yield url, base, server, description, log
    finally:
        server.kill()


def test_when_omero_users_log_in_on_the_hub_then_each_runs_as_themselves(facility):
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        needs(str(CHROMIUM))
    url, base, server, description, log = facility
    seen: dict[str, dict] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context()
            tab = context.new_page()
            log_in(tab, url, "bob", PASSWORDS["alice"])  # a password OMERO refuses
            tab.get_by_text("Invalid username or password").wait_for()
            assert "/hub/login" in tab.url
            context.close()
            for user in PLATES:
                seen[user] = log_in_and_run(
                    browser, url, user, PASSWORDS[user], base / "home" / user
                )
        finally:
            browser.close()
    hub_log = log.read_text()
    logins = dict(
        line.split(" ", 1)
        for line in (description.parent / "login_sessions.txt").read_text().split("\n")
        if line
    )
    writes = [
        json.loads(line)
        for line in (description.parent / "writes.jsonl").read_text().splitlines()
    ]
    with sqlite3.connect(server.results_root / "jobs.sqlite3") as db:
        rows = {
            i: (u, o)
            for i, u, o in db.execute("SELECT id, user, omero_user FROM executions")
        }
    for user, (own, other) in PLATES.items():
        mine = seen[user]
        assert (mine["user"], mine["omero_user"]) == (user, user), hub_log[-2000:]
        assert logins[mine["session"]] == user  # the session the hub's login made
        assert mine["status"] == ["done"]
        assert rows[mine["id"]] == (user, user)
        assert mine["refused"].startswith("RemoteNotAuthorized")
        assert str(other) in mine["refused"] and "\n" not in mine["refused"]
        links = [w for w in writes if w["kind"] == "link" and w["plate"] == own]
        assert links and {w["owner"] for w in links} == {user}
        record = json.loads(
            (server.results_root / mine["id"] / "omero_writeback.json").read_text()
        )
        assert record["user"] == user
    assert len(rows) == 2  # the refused submissions made no execution
    assert seen["bob"]["session"] != seen["alice"]["session"]
    for secret in PASSWORDS.values():
        assert secret not in hub_log
        assert secret.encode() not in (base / "hub.sqlite").read_bytes()
