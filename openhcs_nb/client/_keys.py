"""CurveZMQ keys on the client side: the pinned server key and this client's pair.

The client never imports the server package, so it reads the two key formats
itself: a ZeroMQ certificate (``public-key = "..."`` lines, as written by
``openhcs-server keys generate`` and pyzmq) and a plain ``<z85 key> [name]``
line. A server key may also be given directly as its 40-character Z85 text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from openhcs_nb.client.errors import ClientKeyError

_Z85_KEY = re.compile(r"[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")


@dataclass(frozen=True)
class CurveKeys:
    """Everything a client socket needs for CurveZMQ, as Z85 bytes."""

    server_public: bytes
    client_public: bytes
    client_secret: bytes


def _fields(path: Path) -> dict[str, str]:
    """``key = "value"`` lines of a ZeroMQ certificate (comments skipped)."""
    out: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip().strip("'\" \t")
    return out


def _checked(key: str, where: str) -> bytes:
    if not _Z85_KEY.fullmatch(key):
        raise ClientKeyError(f"{where}: expected a 40-character Z85 CurveZMQ key")
    return key.encode("ascii")


def read_public_key(source: str | Path) -> bytes:
    """The Z85 public key in ``source``: the key itself or a key file.

    Raises
    ------
    ClientKeyError
        ``source`` is neither a Z85 key nor a readable file holding one.
    """
    is_key = isinstance(source, str) and _Z85_KEY.fullmatch(source.strip())
    if is_key and not Path(source).is_file():
        return str(source).strip().encode("ascii")
    path = Path(source)
    if not path.is_file():
        raise ClientKeyError(
            f"server key {str(source)!r} is neither a 40-character Z85 key "
            "nor an existing key file"
        )
    fields = _fields(path)
    if "public-key" in fields:
        return _checked(fields["public-key"], f"{path}: public-key")
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            return _checked(line.split()[0], f"{path}, line {number}")
    raise ClientKeyError(f"{path}: no public key found")


def read_secret_key(path: Path) -> tuple[bytes, bytes]:
    """``(public, secret)`` from a ``*.key_secret`` certificate.

    Raises
    ------
    ClientKeyError
        The file is missing or lacks a ``public-key`` or ``secret-key`` line.
    """
    if not Path(path).is_file():
        raise ClientKeyError(f"{path}: client secret key file not found")
    fields = _fields(Path(path))
    if "secret-key" not in fields or "public-key" not in fields:
        raise ClientKeyError(f"{path}: no 'public-key' and 'secret-key' lines")
    return (
        _checked(fields["public-key"], f"{path}: public-key"),
        _checked(fields["secret-key"], f"{path}: secret-key"),
    )


def curve_keys(
    server_key: str | Path | None, client_keys: tuple[Path, Path] | None
) -> CurveKeys | None:
    """The keys for both client sockets, or None for a keyless (loopback) server.

    Without ``client_keys`` an ephemeral pair is made: the server then admits
    the client only if it does not check client keys.

    Raises
    ------
    ClientKeyError
        A key is unreadable, or client keys are given without a server key.
    """
    if server_key is None:
        if client_keys is not None:
            raise ClientKeyError(
                "client_keys need server_key: pin the server's key too"
            )
        return None
    server_public = read_public_key(server_key)
    if client_keys is None:
        import zmq

        public, secret = zmq.curve_keypair()
    else:
        public_path, secret_path = client_keys
        public, secret = read_secret_key(Path(secret_path))
        stated = read_public_key(Path(public_path))
        if stated != public:
            raise ClientKeyError(
                f"{public_path} and {secret_path} are not the same key pair"
            )
    return CurveKeys(server_public, public, secret)
