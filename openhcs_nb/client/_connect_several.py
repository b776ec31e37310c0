"""Connect to several servers at once, going on without those that do not answer.

``connect`` (``_connect``) calls :func:`connect_servers` when it is given more
than one address; each address is connected exactly as a single one would be,
all at the same time, so a dead server costs one ``connect_timeout``, not one
per server.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from openhcs_nb.client._server_choice import ServerKey, ServerUnreachableWarning
from openhcs_nb.client.errors import ServerUnavailable
from openhcs_nb.client.server_set import ServerSet

if TYPE_CHECKING:
    from openhcs_nb.client.connection import Connection


def connect_servers(
    addresses: Sequence[str],
    keys: Sequence[ServerKey],
    connect_one: Callable[[str, ServerKey], Connection],
) -> ServerSet:
    """Connect to every address at once; go on without those that do not answer.

    Raises
    ------
    ServerUnavailable
        None of them answered (the message names every address).
    OpenHCSError
        Anything else one connect raised (a bad key, another protocol
        version); the connections already made are closed.
    """
    with ThreadPoolExecutor(max_workers=len(addresses)) as pool:
        futures = [
            pool.submit(connect_one, a, k) for a, k in zip(addresses, keys, strict=True)
        ]
        outcomes: list[Connection | BaseException] = []
        for future in futures:
            error = future.exception()
            outcomes.append(future.result() if error is None else error)
    made = [o for o in outcomes if not isinstance(o, BaseException)]
    fatal = [o for o in outcomes if isinstance(o, BaseException)]
    other = [e for e in fatal if not isinstance(e, ServerUnavailable)]
    if other or not made:
        for conn in made:
            conn.close()
        if other:
            raise other[0]
        raise ServerUnavailable(
            f"none of the {len(addresses)} openhcs servers answered "
            f"({', '.join(addresses)}): is each running, is each key right?"
        )
    for error in fatal:
        warnings.warn(
            f"{error} (going on with {len(made)} of {len(addresses)} servers)",
            ServerUnreachableWarning,
            stacklevel=3,
        )
    return ServerSet(made)
