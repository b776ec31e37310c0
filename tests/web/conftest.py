"""Fixtures of the OMERO.web plugin tests: the real omeroweb settings and URLs.

OMERO.web reads its configuration from ``$OMERODIR/etc/grid/config.xml``,
written here with omero-py's own ``ConfigXml`` exactly as ``omero config
append omero.web.apps '"omero_openhcs"'`` would, before ``django.setup()``.
Behind the plugin runs a real ``openhcs-server`` (CurveZMQ on, the plugin's
key listed under ``[web] frontends``) whose OMERO is the double of
``tests/omero``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("omeroweb", reason="omero-web is not installed")
pytest.importorskip("omero_openhcs", reason="pip install -e ./server/omero_openhcs")

HERE = Path(__file__).parent
for folder in (HERE, HERE.parent, HERE.parent / "omero", HERE.parent / "client"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from omero_fixture import build_fixture  # noqa: E402

RIGHT_PLUGIN = [
    "openhcs",
    "omero_openhcs/webclient_plugins/right_plugin.openhcs.js.html",
    "openhcs_tab",
]
OPEN_WITH = ["openhcs-nb", "omero_openhcs_open_with", {"supported_objects": ["plate"]}]
TOP_LINK = ["openhcs-nb", "omero_openhcs_index", {"title": "Run pipelines"}]


def write_omero_config(omerodir: Path) -> None:
    """``config.xml`` with the app enabled, as an admin's ``omero config`` leaves it."""
    import omero.config

    grid = omerodir / "etc" / "grid"
    grid.mkdir(parents=True, exist_ok=True)
    (omerodir / "var" / "log").mkdir(parents=True, exist_ok=True)
    config = omero.config.ConfigXml(str(grid / "config.xml"))
    try:
        config["omero.web.apps"] = json.dumps(["omero_openhcs"])
        config["omero.web.ui.right_plugins"] = json.dumps([RIGHT_PLUGIN])
        config["omero.web.open_with"] = json.dumps([OPEN_WITH])
        config["omero.web.ui.top_links"] = json.dumps([TOP_LINK])
        config["omero.web.openhcs.timeout"] = "20"
    finally:
        config.close()


@pytest.fixture(scope="session")
def django_ready(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OMERO.web's Django, set up once per process; returns ``$OMERODIR``."""
    omerodir = tmp_path_factory.mktemp("omerodir")
    if "omeroweb.settings" not in sys.modules:
        write_omero_config(omerodir)
        os.environ["OMERODIR"] = str(omerodir)
        os.environ["DJANGO_SETTINGS_MODULE"] = "omeroweb.settings"
    import django
    from django.conf import settings

    django.setup()
    sessions = omerodir / "sessions"
    sessions.mkdir(exist_ok=True)
    settings.SESSION_FILE_PATH = str(sessions)
    settings.FILE_UPLOAD_TEMP_DIR = str(sessions)
    return omerodir


@pytest.fixture(scope="session")
def web_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The OMERO double's fixture repository (``double.json``)."""
    return build_fixture(tmp_path_factory.mktemp("web-omero-repo"))


@pytest.fixture(scope="session")
def exec_server(tmp_path_factory, web_repo, plates_root):
    """A real openhcs-server: CurveZMQ, ``omeroweb`` a front end, OMERO double.

    One per test process (the modules share it, to keep the suite quick); it
    runs one execution at a time, so a test can hold a run queued behind
    another user's.
    """
    from cli_with_double import ENV, FLAG
    from multiuser import make_users
    from server_process import ServerProcess

    base = tmp_path_factory.mktemp("web-exec-server")
    users = make_users(base / "users", ["omeroweb", "notebook"])
    server = ServerProcess(
        base / "server",
        plates_root,
        max_concurrent=1,
        limits={"max_queued_per_user": 2},
        extra=(
            users.security_toml + "\n[omero]\nenabled = true\n"
            f'host = "double"\ndata_dir = "{web_repo.parent}"\n'
            "retry_delay_s = 0.1\n"
            '\n[web]\nfrontends = ["omeroweb"]\n'
        ),
        env=ENV,
        args=(FLAG, str(web_repo)),
        module="cli_with_double",
    ).start()
    yield server, users
    server.kill()


@pytest.fixture(scope="session")
def plugin(django_ready, exec_server, web_repo):
    """The app configured for ``exec_server``; the cookie's user is logged in.

    Yields the app's connection pool (what the views use).
    """
    from django.apps import apps
    from omero_openhcs.connections import ConnectionPool
    from omero_openhcs.settings import PluginSettings
    from web_double import logged_in

    server, users = exec_server
    keys = users.connect_args("omeroweb")
    public, secret = keys["client_keys"]
    settings = PluginSettings(
        server=server.address,
        server_key=str(keys["server_key"]),
        client_key=str(secret),
        timeout=20.0,
    )
    assert settings.client_keys == (public, secret)
    app = apps.get_app_config("openhcs")
    saved = app.pool
    app.pool = ConnectionPool(settings)
    with logged_in(web_repo):
        yield app.pool
    app.pool.close()
    app.pool = saved
