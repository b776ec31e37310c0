"""A real server with OMERO (the double) and a web front-end key, for tests.

The double's description is the shared OMERO fixture plus three users, so
presets can be shared and refused along every kind of group:

- carol: only in ``read-only`` (11, ``rwr---``), which alice and bob are in too;
- erin and frank: in ``rw-lab`` (12, ``rwrw--``); frank is also in
  ``screening`` (3, ``rwra--``), bob's default group.

CurveZMQ users: ``omeroweb`` (listed in ``[web] frontends``) and one key
each for people using notebooks (``alice``, ``bob``, ``carol``, ``erin``,
``frank``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OMERO_TESTS = HERE.parent / "omero"
if str(OMERO_TESTS) not in sys.path:  # the double, its fixture and CLI
    sys.path.insert(0, str(OMERO_TESTS))

from cli_with_double import ENV, FLAG  # noqa: E402
from multiuser import make_users  # noqa: E402
from omero_fixture import ALICE, BOB, EXPIRED, build_fixture  # noqa: E402

CAROL = "carol-session-key-0000-aaaa"
ERIN = "erin-session-key-0000-bbbb"
FRANK = "frank-session-key-0000-cccc"
#: a second session of alice's, for tests that end it (``end_session``)
ALICE_WEB = "alice-web-session-0000-dddd"
FRONTEND = "omeroweb"
PEOPLE = ["alice", "bob", "carol", "erin", "frank"]
SESSIONS = {"alice": ALICE, "bob": BOB, "carol": CAROL, "erin": ERIN, "frank": FRANK}

__all__ = ["ALICE", "ALICE_WEB", "BOB", "CAROL", "ERIN", "EXPIRED", "FRANK", "FRONTEND"]


def build_web_fixture(root: Path) -> Path:
    """The OMERO fixture with the extra users and group; returns its description."""
    path = build_fixture(root)
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["users"].update(
        {
            "carol": {"id": 8, "groups": [11]},
            "erin": {"id": 9, "groups": [12]},
            "frank": {"id": 10, "groups": [12, 3]},
        }
    )
    doc["groups"]["12"] = {"name": "rw-lab", "perms": "rwrw--"}
    doc["sessions"].update(
        {CAROL: "carol", ERIN: "erin", FRANK: "frank", ALICE_WEB: "alice"}
    )
    doc["killed_sessions"] = "killed.txt"
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return path


def start_web_server(base: Path, plates_root: Path, *, omero: bool = True, **options):
    """A started server (kill() it afterwards) and its users."""
    from server_process import ServerProcess

    users = make_users(base / "users", [FRONTEND, *PEOPLE])
    web = f'\n[web]\nfrontends = ["{FRONTEND}"]\nsession_check_s = 0\n'
    if not omero:
        extra = users.security_toml + web
        process = ServerProcess(base / "server", plates_root, extra=extra, **options)
        return process.start(), users
    description = build_web_fixture(base / "omero-repo")
    extra = (
        users.security_toml
        + "\n[omero]\nenabled = true\n"
        + f'host = "double"\ndata_dir = "{description.parent}"\n'
        + web
    )
    process = ServerProcess(
        base / "server",
        plates_root,
        extra=extra,
        env=ENV,
        args=(FLAG, str(description)),
        module="cli_with_double",
        **options,
    )
    return process.start(), users


def connect_as(process, users, key: str, session: str | None = None, **options):
    """An ``openhcs_nb`` Connection with ``key``'s CurveZMQ keys (and a session)."""
    import openhcs_nb

    return openhcs_nb.connect(
        process.address, **users.connect_args(key), omero_session=session, **options
    )


def end_session(process, key: str) -> None:
    """End an OMERO session from outside, as a logout in OMERO.web would."""
    killed = process.base.parent / "omero-repo" / "killed.txt"
    with killed.open("a", encoding="utf-8") as handle:
        handle.write(key + "\n")
