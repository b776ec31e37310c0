"""``connect``: find the server (arguments or environment), link, say Hello.

Rules:

- An omitted ``address`` is read from ``$OPENHCS_NB_SERVER``; then, unless
  given, the server key from ``$OPENHCS_NB_SERVER_KEY``, this user's secret
  key file from ``$OPENHCS_NB_CLIENT_KEY`` (its public half ``<name>`` beside
  ``<name>_secret``) and the OMERO session from ``$OMERO_SESSION_KEY``: what a
  facility sets on its JupyterHub. An explicit address reads no environment,
  so a local demo server is never sent a hub's keys.
- A server that does not answer fails ``connect`` within ``connect_timeout``
  seconds (3 s, or ``timeout`` when shorter) with one line naming the address
  and what to check, never after the full command timeout.
- Several addresses (a list, or one string separated by spaces or commas, as
  in ``$OPENHCS_NB_SERVER``) give a :class:`~openhcs_nb.client.server_set.ServerSet`;
  the server keys are one for all or one per address, in order
  (:mod:`~openhcs_nb.client._server_choice`). Those that do not answer are
  left out with a warning, unless none answers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from openhcs_nb.client._heartbeat import DEFAULT_INTERVAL, DEFAULT_MISSES
from openhcs_nb.client._keys import curve_keys
from openhcs_nb.client._preview_cache import DEFAULT_PREVIEW_BUDGET
from openhcs_nb.client._server_choice import keys_per_server, split_addresses
from openhcs_nb.client.connection import Connection
from openhcs_nb.client.errors import ServerUnavailable

if TYPE_CHECKING:
    from openhcs_nb.client.server_set import ServerSet

#: Seconds ``connect`` waits for a server to answer at all, by default.
CONNECT_TIMEOUT = 3.0
SERVER_ENV = "OPENHCS_NB_SERVER"
SERVER_KEY_ENV = "OPENHCS_NB_SERVER_KEY"
CLIENT_KEY_ENV = "OPENHCS_NB_CLIENT_KEY"
OMERO_SESSION_ENV = "OMERO_SESSION_KEY"


@dataclass(frozen=True)
class Target:
    """Where to connect and as whom, after the environment was read."""

    address: str
    server_key: str | Path | None
    client_keys: tuple[Path, Path] | None
    omero_session: str | None


def resolve_target(
    address: str | None,
    server_key: str | Path | None,
    client_keys: tuple[Path, Path] | None,
    omero_session: str | None,
    environ: dict[str, str] | None = None,
) -> Target:
    """Fill what was not given from the environment (only when ``address`` wasn't).

    Raises
    ------
    ServerUnavailable
        No address given and ``$OPENHCS_NB_SERVER`` is not set.
    """
    if address is not None:
        return Target(address, server_key, client_keys, omero_session)
    env = os.environ if environ is None else environ
    address = env.get(SERVER_ENV) or None
    if address is None:
        msg = f"no server address: pass connect('tcp://host:port') or set ${SERVER_ENV}"
        raise ServerUnavailable(msg)
    server_key = server_key or env.get(SERVER_KEY_ENV) or None
    secret = env.get(CLIENT_KEY_ENV)
    if client_keys is None and secret and server_key:
        client_keys = (Path(secret.removesuffix("_secret")), Path(secret))
    omero_session = omero_session or env.get(OMERO_SESSION_ENV) or None
    return Target(address, server_key, client_keys, omero_session)


def connect(
    address: str | Sequence[str] | None = None,
    server_key: str | Path | Sequence[str | Path] | None = None,
    *,
    client_keys: tuple[Path, Path] | None = None,
    timeout: float = 10.0,
    connect_timeout: float | None = None,
    omero_session: str | None = None,
    preview_budget_bytes: int = DEFAULT_PREVIEW_BUDGET,
    heartbeat_interval: float = DEFAULT_INTERVAL,
    heartbeat_misses: int = DEFAULT_MISSES,
) -> Connection | ServerSet:
    """Connect to the openhcs server at ``address`` and say Hello.

    ``address`` defaults to ``$OPENHCS_NB_SERVER`` (then the keys and OMERO
    session also come from ``$OPENHCS_NB_SERVER_KEY``,
    ``$OPENHCS_NB_CLIENT_KEY`` and ``$OMERO_SESSION_KEY`` unless given).
    ``server_key`` pins the server's CurveZMQ public key (Z85 text or a key
    file); ``client_keys`` are this client's ``(public, secret)`` key files
    (an ephemeral pair is made when omitted). ``timeout`` is the default wait
    of every command; ``connect_timeout`` bounds the wait for any answer at
    all (3 s, or ``timeout`` when shorter). ``preview_budget_bytes`` bounds
    the preview images kept (64 MiB by default, the newest wells first).

    While executions run, the server is asked a cheap question every
    ``heartbeat_interval`` seconds; after ``heartbeat_misses`` unanswered
    ones in a row (15 s by default) their handles end as ``"server lost"``.

    Several addresses (a list, or one string of them separated by spaces or
    commas) return a :class:`~openhcs_nb.client.server_set.ServerSet` with the
    same methods, which submits to the least-loaded server; ``server_key`` is
    then one key for all of them or one per address, in order.

    Raises
    ------
    ServerUnavailable
        No server answered in time (not running, wrong address or wrong
        key), or no address was given and ``$OPENHCS_NB_SERVER`` is unset.
    RemoteProtocolError
        The server speaks another protocol version.
    RemoteSessionInvalid
        The OMERO session key was refused.
    ClientKeyError
        A key or key file cannot be read.
    """
    if address is not None and not isinstance(address, str):
        address = " ".join(address)
    target = resolve_target(address, server_key, client_keys, omero_session)  # type: ignore[arg-type]
    addresses = split_addresses(target.address)
    if len(addresses) > 1:
        from openhcs_nb.client._connect_several import connect_servers

        def connect_one(one: str, key: str | Path | None) -> Connection:
            return connect(  # type: ignore[return-value]
                one,
                key,
                client_keys=target.client_keys,
                timeout=timeout,
                connect_timeout=connect_timeout,
                omero_session=target.omero_session,
                preview_budget_bytes=preview_budget_bytes,
                heartbeat_interval=heartbeat_interval,
                heartbeat_misses=heartbeat_misses,
            )

        keys_each = keys_per_server(target.server_key, len(addresses))
        return connect_servers(addresses, keys_each, connect_one)
    keys = curve_keys(target.server_key, target.client_keys)
    hint = "is it running? (openhcs-server serve --config server.toml)"
    if keys is not None:
        hint += " is the key right?"
    link_timeout = connect_timeout
    if link_timeout is None:
        link_timeout = min(timeout, CONNECT_TIMEOUT)
    connection = Connection(
        target.address,
        keys,
        timeout=timeout,
        omero_session=target.omero_session,
        preview_budget_bytes=preview_budget_bytes,
        heartbeat_interval=heartbeat_interval,
        heartbeat_misses=heartbeat_misses,
    )
    try:
        connection._handshake(link_timeout, hint)
    except BaseException:
        connection.close()
        raise
    return connection
