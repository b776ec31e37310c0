"""Helpers for real-JupyterHub tests: start a hub, log a user in and run a notebook.

Both hub tests use them: ``test_jupyterhub.py`` (a shared password) and
``test_jupyterhub_omero.py`` (each user's OMERO password, checked against
the OMERO double through the same login page).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
from lab import SECOND, free_port, needs, wait_for_value

VENV_BIN = Path(sys.executable).parent


def proxy_command() -> Path:
    """npm's configurable-http-proxy, as ./run installs it into the cache."""
    cache = Path(os.environ.get("OPENHCS_NB_CACHE", "~/.cache/openhcs-nb"))
    path = cache.expanduser() / "node" / "node_modules" / ".bin"
    path = path / "configurable-http-proxy"
    if not path.exists():
        needs(f"configurable-http-proxy ({path}; ./run test installs it with npm)")
    return path


def wait_for_hub(url: str, hub: subprocess.Popen, log: Path) -> None:
    """Until the hub's login page answers; fail with the log's tail if it dies."""
    deadline = time.monotonic() + 90
    while True:
        if hub.poll() is not None:
            raise RuntimeError(f"JupyterHub exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/hub/login", timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                tail = log.read_text()[-3000:]
                raise RuntimeError(f"no hub in 90 s:\n{tail}") from None
            time.sleep(0.3)


#: The hub both tests run: loopback ports, local-process spawners with
#: ``KeyProvisioner`` (``docs/jupyterhub.md``); ``{auth}`` is the login part.
HUB_CONFIG = """
from openhcs_nb.hub import KeyProvisioner

c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.JupyterHub.db_url = "sqlite:///{base}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{base}/cookie_secret"
{auth}
c.Authenticator.allowed_users = {users!r}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{base}/home/{{username}}"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.default_url = "/lab"
c.Spawner.args = ["--allow-root"]  # CI runs as root; a facility never should
c.Spawner.http_timeout = 90
c.Spawner.start_timeout = 120
c.Spawner.environment = {environment!r}
c.Spawner.pre_spawn_hook = KeyProvisioner(
    server_config={server_config!r},
    keys_root="{base}/hub-keys",
    server_address={server_address!r},
    command=[{python!r}, "-m", "openhcs_nb.server.cli"],
)
"""


def hub_config(base: Path, auth: str, users: set[str], server: Any) -> tuple[Path, str]:
    """Write ``base/jupyterhub_config.py`` for ``server``; returns it and the URL."""
    port = free_port()
    config = base / "jupyterhub_config.py"
    config.write_text(
        HUB_CONFIG.format(
            port=port,
            hub_port=free_port(),
            proxy_port=free_port(),
            proxy=str(proxy_command()),
            base=base,
            auth=auth,
            users=users,
            singleuser=str(VENV_BIN / "jupyterhub-singleuser"),
            environment={
                "PATH": f"{VENV_BIN}:/usr/bin:/bin",
                "TMPDIR": str(base.parent),
                "PYTHONUNBUFFERED": "1",
            },
            server_config=str(server.base / "server.toml"),
            server_address=server.address,
            python=sys.executable,
        )
    )
    return config, f"http://127.0.0.1:{port}"


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of ``cells`` on the python3 kernel."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nbformat.write(nb, path)


def prepare_home(base: Path, user: str, cells: list[str]) -> Path:
    """``base/home/USER`` with ``run.ipynb`` and JupyterLab's news turned off."""
    home = base / "home" / user
    home.mkdir(parents=True)
    write_notebook(home / "run.ipynb", cells)
    news = home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab"
    news = news / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    return home


@contextmanager
def running_hub(
    config: Path, url: str, env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen, Path]]:
    """``jupyterhub -f config`` until the block ends (it stops its users' servers)."""
    base = config.parent
    log = base / "hub.log"
    with log.open("wb") as out:
        hub = subprocess.Popen(
            [str(VENV_BIN / "jupyterhub"), "-f", str(config)],
            cwd=base,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        wait_for_hub(url, hub, log)
        yield hub, log
    finally:
        hub.terminate()
        try:
            hub.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(hub.pid, 9)


def log_in(tab, url: str, user: str, password: str) -> None:
    """Fill the hub's login form and submit it."""
    tab.goto(f"{url}/hub/login")
    tab.fill("#username_input", user)
    tab.fill("#password_input", password)
    tab.click("#login_submit")


def log_in_and_run(browser, url: str, user: str, password: str, home: Path) -> dict:
    """Log in, run all cells of ``run.ipynb``; what its last cell wrote to seen.json."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    tab = context.new_page()
    try:
        log_in(tab, url, user, password)
        tab.wait_for_url(f"**/user/{user}/lab**", timeout=150 * SECOND)
        tab.goto(f"{url}/user/{user}/lab/tree/run.ipynb")
        tab.locator("#jp-main-statusbar").get_by_text(
            "Python 3 (ipykernel) | Idle"
        ).wait_for(timeout=120 * SECOND)
        tab.get_by_role("menuitem", name="Run", exact=True).click()
        tab.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        seen = home / "seen.json"
        deadline = time.monotonic() + 240
        while not seen.exists():
            if time.monotonic() > deadline:
                tab.screenshot(path=str(home / "timeout.png"))
                raise AssertionError(f"{user}'s notebook did not finish")
            time.sleep(0.5)
        wait_for_value(
            tab,
            "document.body.innerText",
            lambda text: f"checked {user}" in text,
            30,
            f"{user}'s last cell printed its check",
        )
        return json.loads(seen.read_text())
    finally:
        context.close()
