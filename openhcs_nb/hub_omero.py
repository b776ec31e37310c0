"""A JupyterHub authenticator that logs users in to OMERO.

In ``jupyterhub_config.py``::

    c.JupyterHub.authenticator_class = "openhcs_nb.hub_omero.OmeroAuthenticator"
    c.OmeroAuthenticator.omero_host = "omero.example.org"
    c.Authenticator.enable_auth_state = True  # and set JUPYTERHUB_CRYPT_KEY
    c.Authenticator.allow_all = True  # every OMERO user of the facility
    c.Authenticator.refresh_pre_spawn = True  # an expired session: log in again

The hub's login form takes the user's OMERO name and password. The
authenticator logs in to OMERO once, keeps only the new session's key (the
session is detached, so closing the login connection leaves it alive) and
returns it in the encrypted ``auth_state``; the password is dropped at once.
:class:`openhcs_nb.hub.KeyProvisioner` passes the key to the user's server as
``OMERO_SESSION_KEY``, so the user's runs on OMERO plates act as that OMERO
user and no other. Every login makes a fresh session; :meth:`refresh_user`
sends the user back to the login form once their session has expired.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import Bool, Integer, Unicode, default
from traitlets import Callable as CallableTrait

from openhcs_nb.omero.errors import (
    NotAuthorizedError,
    OmeroUnavailableError,
    translate_errors,
)

#: ``(username, passwd, host=, port=, secure=) -> unconnected gateway``
LoginFactory = Callable[..., Any]


def blitz_login(
    username: str | None,
    passwd: str | None,
    host: str,
    port: int,
    secure: bool = True,
) -> Any:
    """An unconnected omero-py ``BlitzGateway`` (imported only when used)."""
    from omero.gateway import BlitzGateway

    return BlitzGateway(username, passwd, host=host, port=port, secure=secure)


class OmeroAuthenticator(Authenticator):
    """Hub logins checked by OMERO; the session key goes into ``auth_state``."""

    omero_host = Unicode(
        "localhost", config=True, help="The OMERO server users log in to."
    )
    omero_port = Integer(4064, config=True, help="Its Ice (Glacier2) port.")
    omero_secure = Bool(True, config=True, help="Keep the connection encrypted.")
    gateway_factory = CallableTrait(
        config=True,
        help="Builds the unconnected gateway: "
        "(username, passwd, host=, port=, secure=). Default: omero-py's BlitzGateway.",
    )

    @default("gateway_factory")
    def _default_factory(self) -> LoginFactory:
        return blitz_login

    @property
    def where(self) -> str:
        """``host:port`` of OMERO, for messages."""
        return f"{self.omero_host}:{self.omero_port}"

    def check_allow_config(self) -> None:
        """Refuse to start without auth_state: the session key would be lost.

        Raises
        ------
        ValueError
            ``enable_auth_state`` is off (the hub does not start).
        """
        if not self.enable_auth_state:
            raise ValueError(
                "OmeroAuthenticator keeps the OMERO session in auth_state: set "
                "c.Authenticator.enable_auth_state = True and JUPYTERHUB_CRYPT_KEY"
            )
        super().check_allow_config()

    async def authenticate(
        self, handler: Any, data: dict[str, str]
    ) -> dict[str, Any] | None:
        """Log in to OMERO; None (a 403 on the form) when OMERO refuses.

        Raises
        ------
        tornado.web.HTTPError
            503 when OMERO cannot be reached (the message names the server).
        """
        username = (data.get("username") or "").strip()
        password = data.get("password") or ""
        if not username or not password:
            return None
        try:
            login = await asyncio.to_thread(self._login, username, password)
        except OmeroUnavailableError as exc:
            self.log.warning("OMERO login of %s failed: %s", username, exc)
            raise web.HTTPError(503, "%s", exc) from None
        if login is None:
            self.log.warning(
                "OMERO at %s refused the login of %s", self.where, username
            )
            return None
        key, omero_user = login
        return {
            "name": username,
            "auth_state": {
                "omero_session": key,
                "omero_user": omero_user,
                "omero_host": self.omero_host,
                "omero_port": self.omero_port,
            },
        }

    def _login(self, username: str, password: str) -> tuple[str, str] | None:
        """``(session key, OMERO user name)``, or None for a refused login."""
        gateway = self.gateway_factory(
            username,
            password,
            host=self.omero_host,
            port=self.omero_port,
            secure=self.omero_secure,
        )
        try:
            with translate_errors("logging in", self.where):
                if not gateway.connect():
                    return None
                context = gateway.getEventContext()
                return str(context.sessionUuid), str(context.userName)
        except NotAuthorizedError:
            # BlitzGateway says False for a wrong password; a SecurityViolation
            # (or a session gone at once) is a refusal too. Anything else rises.
            self.log.debug("OMERO refused the login", exc_info=True)
            return None
        finally:
            # BlitzGateway detaches the sessions it creates: a soft close
            # leaves the session alive for the user's kernel to pass on
            gateway.close(hard=False)

    async def refresh_user(self, user: Any, handler: Any = None) -> bool:
        """False (log in again) once the user's OMERO session has ended."""
        state = await user.get_auth_state() or {}
        key = state.get("omero_session")
        if not key:
            return False
        try:
            alive = await asyncio.to_thread(self._alive, key)
        except OmeroUnavailableError as exc:  # OMERO down: a new login fails too
            self.log.warning("cannot check %s's OMERO session: %s", user.name, exc)
            return True
        return alive

    def _alive(self, key: str) -> bool:
        """Whether OMERO still knows the session ``key`` (joined, then left)."""
        gateway = self.gateway_factory(
            None,
            None,
            host=self.omero_host,
            port=self.omero_port,
            secure=self.omero_secure,
        )
        try:
            with translate_errors("checking the session", self.where):
                return bool(gateway.connect(sUuid=key))
        except NotAuthorizedError:  # a dead session, said as an exception
            self.log.debug("OMERO refused the session", exc_info=True)
            return False
        finally:
            gateway.close(hard=False)
