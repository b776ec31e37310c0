"""Small pure helpers the connection uses to build commands and read replies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from openhcs_nb.client._wells import copy_arrays
from openhcs_nb.client.errors import RemoteError, RemoteProtocolError
from openhcs_nb.protocol import PROTOCOL_VERSION, HelloReply, WellDone


class PipelineLike(Protocol):
    """Anything that turns into pipeline code (a ``Pipeline``)."""

    def to_code(self) -> str:
        """Readable Python that the server's safe loader accepts."""
        ...


def client_name() -> str:
    """What the client calls itself in Hello: ``openhcs-nb/<version>``."""
    from openhcs_nb import __version__

    return f"openhcs-nb/{__version__}"


def code_of(pipeline: PipelineLike | str) -> str:
    """Pipeline code: the string itself, or ``pipeline.to_code()``."""
    return pipeline if isinstance(pipeline, str) else pipeline.to_code()


def pub_address(address: str, port: int) -> str | None:
    """The PUB address: the command address's host with ``port`` (tcp only)."""
    scheme, sep, rest = address.partition("://")
    if scheme != "tcp" or not sep or ":" not in rest or port <= 0:
        return None
    host = rest.rpartition(":")[0]
    return f"tcp://{host}:{port}"


def check_hello(reply: HelloReply) -> None:
    """Refuse a server that speaks another protocol version.

    Raises
    ------
    RemoteProtocolError
        The versions differ; the message says which side to upgrade.
    """
    if reply.protocol_version != PROTOCOL_VERSION:
        raise RemoteProtocolError(
            f"the server speaks protocol {reply.protocol_version}, this "
            f"client speaks {PROTOCOL_VERSION}: upgrade the older side",
            code="version_mismatch",
        )


def images_of_event(seq: int) -> Callable[[Any, Sequence[Any]], dict[str, Any]]:
    """A reply reader: the images of the WellDone with ``seq`` in a FetchReply."""

    def images(reply: Any, buffers: Sequence[Any]) -> dict[str, Any]:
        for event in reply.events:
            if isinstance(event, WellDone) and event.seq == seq:
                return copy_arrays(event.previews, buffers)
        raise RemoteError(f"the server returned no images for event {seq}")

    return images
