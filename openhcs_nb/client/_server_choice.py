"""Several server addresses: how they are written, and which server is least loaded.

Rules (the user-facing version is ``docs/several-servers.md``):

- Addresses are one list, or one string of several separated by spaces or
  commas (``"tcp://a:7710 tcp://b:7710"``, as ``$OPENHCS_NB_SERVER`` holds them).
- Server keys are given once for all servers or once per server, in the
  order of the addresses; any other count is refused. A string of keys is
  split like addresses (Z85 keys contain neither spaces nor commas), so key
  file paths given for several servers must contain neither either. With a
  single address nothing is split, as before.
- The least-loaded server has the fewest wells waiting or running per
  worker; ties go to the one where this user has fewer active executions,
  then to the one named first. A server that did not report its load comes
  after every server that did.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from openhcs_nb.client.errors import (
    ClientKeyError,
    RemoteUnknownExecution,
    RemoteUnknownPlate,
    ServerUnavailable,
)
from openhcs_nb.errors import OpenHCSError
from openhcs_nb.protocol import ExecutionInfo
from openhcs_nb.protocol.messages import ServerStatusReply

ServerKey = str | Path | None
_SEPARATORS = re.compile(r"[\s,]+")


def split_addresses(addresses: str | Sequence[str]) -> list[str]:
    """Every address in ``addresses``: one string of several, or a list of them."""
    items = [addresses] if isinstance(addresses, str) else list(addresses)
    found = [part for item in items for part in _SEPARATORS.split(str(item)) if part]
    return list(dict.fromkeys(found))  # the same server twice is one server


def keys_per_server(
    server_key: ServerKey | Sequence[str | Path], count: int
) -> list[ServerKey]:
    """One server key (or None) per address, by the one-or-one-each rule.

    Raises
    ------
    ClientKeyError
        The number of keys is neither one nor ``count``.
    """
    if server_key is None:
        return [None] * count
    if isinstance(server_key, Path):
        keys: list[ServerKey] = [server_key]
    elif isinstance(server_key, str):
        keys = [part for part in _SEPARATORS.split(server_key) if part]
    else:
        keys = list(server_key)
    if len(keys) == 1:
        return keys * count
    if len(keys) != count:
        raise ClientKeyError(
            f"{len(keys)} server keys for {count} servers: give one key for all "
            "servers or one per server, in the order of the addresses"
        )
    return keys


class ServerUnreachableWarning(UserWarning):
    """One of several servers did not answer; the others were used."""


class ServerExecutionInfo(ExecutionInfo, frozen=True, kw_only=True):
    """An execution's record, with the address of the ``server`` that owns it."""

    server: str = ""


@dataclass(frozen=True)
class ServerLoad:
    """What one server said about its load (``reply`` None: it did not say)."""

    address: str
    reply: ServerStatusReply | None

    @property
    def wells_per_worker(self) -> float:
        """Wells waiting or running for each of its workers (inf when unknown)."""
        if self.reply is None:
            return float("inf")
        busy = self.reply.queued_wells + self.reply.running_wells
        return busy / max(1, self.reply.workers)


def by_load(loads: Sequence[ServerLoad]) -> list[int]:
    """Indexes of ``loads``, least loaded first (the order of the rule above)."""

    def key(index: int) -> tuple[float, int, int]:
        load = loads[index]
        mine = load.reply.user_active_executions if load.reply else 0
        return (load.wells_per_worker, mine, index)

    return sorted(range(len(loads)), key=key)


def owner_missing(
    execution_id: str, answers: Sequence[tuple[str, OpenHCSError]]
) -> OpenHCSError:
    """The one-line error for an id no server admitted having (``answers`` by address).

    Unknown everywhere: :class:`RemoteUnknownExecution` naming every server
    asked. Some did not answer: :class:`ServerUnavailable` saying which did.
    Anything else (a refusal such as a rate limit) is returned as it came.
    """
    shown = execution_id[:140]
    silent = [(a, e) for a, e in answers if not isinstance(e, RemoteUnknownExecution)]
    if not silent:
        asked = ", ".join(a for a, _ in answers)
        return RemoteUnknownExecution(
            f"no execution {shown!r} on any of the {len(answers)} servers asked "
            f"({asked})"
        )
    if not all(isinstance(e, ServerUnavailable) for _, e in silent):
        return silent[0][1]
    unknown = [a for a, e in answers if isinstance(e, RemoteUnknownExecution)]
    return ServerUnavailable(
        f"execution {shown!r} is not on {', '.join(unknown) or 'any server'}, "
        f"and {len(silent)} did not answer: {silent[0][1]}"
    )


def plate_missing(
    plate: str, missed: Sequence[tuple[str, OpenHCSError]]
) -> OpenHCSError:
    """The one-line error when no server took a command about ``plate``."""
    if all(isinstance(e, RemoteUnknownPlate) for _, e in missed):
        asked = ", ".join(a for a, _ in missed)
        return RemoteUnknownPlate(
            f"no plate {plate!r} on any of the {len(missed)} servers asked ({asked})"
        )
    return next(e for _, e in missed if not isinstance(e, RemoteUnknownPlate))
