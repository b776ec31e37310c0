"""ZeroMQ bind addresses: which are local to this machine, which are well formed.

The configuration's safety rule (anything but loopback needs CurveZMQ keys)
rests on :func:`is_loopback_address`; :func:`address_problem` says in words
what is wrong with an address, and the config turns that into its own error.
"""

from __future__ import annotations

import ipaddress

LOCAL_TRANSPORTS = ("ipc://", "inproc://")
_LOOPBACK_NAMES = frozenset({"localhost", "lo"})


def split_tcp(address: str) -> tuple[str, str]:
    """``(host, port)`` of a ``tcp://`` address; ``("", "")`` for anything else."""
    if not address.startswith("tcp://") or ":" not in address[6:]:
        return "", ""
    host, _, port = address[6:].rpartition(":")
    return host.removeprefix("[").removesuffix("]"), port


def is_loopback_address(address: str) -> bool:
    """Tell whether a ZeroMQ bind address is reachable only from this machine.

    ``ipc://`` and ``inproc://`` are local; ``tcp://`` is local when its host is
    ``localhost``, the ``lo`` interface or a loopback IP (127.0.0.0/8, ::1).
    ``*`` and ``0.0.0.0`` are not.
    """
    if address.startswith(LOCAL_TRANSPORTS):
        return True
    host = split_tcp(address)[0]
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address_problem(address: str) -> str | None:
    """What is wrong with a bind address, in words; None when it is usable."""
    if address.startswith(LOCAL_TRANSPORTS):
        return None
    host, port = split_tcp(address)
    if not host:
        return f"expected 'tcp://HOST:PORT' (or ipc://, inproc://), got {address!r}"
    if port != "*" and not (port.isdigit() and 0 <= int(port) <= 65535):
        return f"port must be 0-65535 or '*', got {port!r}"
    return None
