"""JupyterHub integration: each user's server gets that user's own key.

In ``jupyterhub_config.py``::

    from openhcs_nb.hub import KeyProvisioner
    c.Spawner.pre_spawn_hook = KeyProvisioner(
        server_config="/etc/openhcs-nb/server.toml",
        keys_root="/srv/openhcs-nb/hub-keys",
        server_address="tcp://omero.example.org:7710",
    )

Before a user's server starts, the hook makes sure the user has a key pair,
made by the project's own tool (``openhcs-server keys add USER --json``; the
running execution server reloads ``authorized_keys`` by itself), and puts in
the spawner's environment the server's address and public key and the path
of *that user's* secret key, so ``%openhcs_connect`` with no arguments
connects as that user. A user keeps their key across spawns; revoking is
``openhcs-server keys revoke USER`` (the next spawn makes a new one).

When the authenticator keeps an OMERO session key in the user's auth state
(``auth_state["omero_session"]``, as :class:`OmeroAuthenticator` does), it is
passed on as ``OMERO_SESSION_KEY``, so runs on OMERO plates act as that
OMERO user and no other.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: The file in a user's key folder that records what ``keys add`` reported.
REPORT = "openhcs-key.json"


class KeyProvisioner:
    """A ``pre_spawn_hook`` that provisions and hands out per-user keys."""

    def __init__(
        self,
        server_config: str | Path,
        keys_root: str | Path,
        *,
        server_address: str | None = None,
        command: Sequence[str] = ("openhcs-server",),
        timeout_s: float = 60.0,
    ) -> None:
        """``server_address`` is what kernels dial (the bind address otherwise).

        ``command`` runs the key tool; on another host than the execution
        server it can be e.g. ``("ssh", "omero-host", "openhcs-server")``.
        """
        self.server_config = Path(server_config)
        self.keys_root = Path(keys_root)
        self.server_address = server_address
        self.command = tuple(command)
        self.timeout_s = timeout_s

    async def __call__(self, spawner: Any) -> None:
        """Set the spawner's environment for its user (JupyterHub awaits this)."""
        report = await self.provision(spawner.user.name)
        # A new dict: the configured one may be shared by every user's spawner.
        env = dict(spawner.environment)
        env["OPENHCS_NB_SERVER"] = self.server_address or report["server_address"]
        if report.get("server_public_key"):
            env["OPENHCS_NB_SERVER_KEY"] = report["server_public_key"]
        env["OPENHCS_NB_CLIENT_KEY"] = report["secret_key_file"]
        state = await spawner.user.get_auth_state() or {}
        session = state.get("omero_session")
        if session:
            env["OMERO_SESSION_KEY"] = session
        spawner.environment = env

    async def provision(self, user: str) -> dict[str, Any]:
        """The user's key report, running ``keys add`` the first time."""
        folder = self.keys_root / user
        saved = folder / REPORT
        if saved.is_file():
            report = json.loads(saved.read_text(encoding="utf-8"))
            if Path(report["secret_key_file"]).is_file():
                return report
        self.keys_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        args = [
            *self.command,
            "keys",
            "add",
            user,
            "--config",
            str(self.server_config),
            "--out",
            str(folder),
            "--json",
        ]
        if saved.is_file():  # a report whose key file is gone: make a new pair
            args.append("--force")
        process = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), self.timeout_s)
        if process.returncode != 0:
            reason = err.decode(errors="replace").strip().splitlines()
            raise RuntimeError(
                f"could not give {user!r} an openhcs-nb key "
                f"({shlex.join(args[:4])}): {reason[-1] if reason else 'no output'}"
            )
        report = json.loads(out)
        fd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
        return report
