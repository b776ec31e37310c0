"""CurveZMQ key files and the ZAP handler that admits only authorized clients.

Rules:

- Keys are 40-character Z85 strings (32 raw bytes). A key pair is two files in
  ZeroMQ's certificate format: ``<name>.key`` (public, safe to hand out) and
  ``<name>.key_secret`` (public + secret, mode 0600, created exclusively).
- Authorized client keys come from a text file (``<z85 key> [name]`` per line,
  ``#`` comments) or a folder of such files and ``*.key`` certificates. The name
  becomes the ZMQ User-Id the server reads from each received frame
  (``frame.get("User-Id")``); without a name the file's stem is used.
- Fail closed: server sockets use the ZAP domain ``openhcs-nb`` with
  ``ZAP_ENFORCE_DOMAIN``, so when no authenticator is running every client is
  refused instead of every client being accepted (libzmq's default).
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import stat
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from struct import error as struct_error
from typing import TextIO

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from openhcs_nb.server.config import ConfigError

log = logging.getLogger(__name__)

ZAP_DOMAIN = "openhcs-nb"
_Z85_KEY = re.compile(rb"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")
_SECRET_SUFFIX = ".key_secret"


@dataclass(frozen=True)
class KeyPair:
    """A CurveZMQ key pair as Z85 bytes, ready for ``socket.curve_*key``."""

    public: bytes
    secret: bytes


def generate_keys(directory: Path, name: str = "server") -> tuple[Path, Path]:
    """Write a new key pair as ``<name>.key`` and ``<name>.key_secret`` (0600).

    Returns
    -------
    tuple[Path, Path]
        The public key file and the secret key file.

    Raises
    ------
    ConfigError
        When ``name`` is not a plain file name or either file already exists
        (keys are never overwritten).
    """
    if not re.fullmatch(r"[A-Za-z0-9_.@-]+", name) or name.startswith("."):
        raise ConfigError(
            f"key name {name!r}", "use letters, digits, '_', '-', '.', '@'"
        )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    public_path = directory / f"{name}.key"
    secret_path = directory / f"{name}{_SECRET_SUFFIX}"
    for path in (public_path, secret_path):
        if path.exists():
            raise ConfigError(str(path), "already exists; keys are never overwritten")
    public, secret = zmq.curve_keypair()
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    _write_certificate(secret_path, name, created, public, secret)
    _write_certificate(public_path, name, created, public, None)
    return public_path, secret_path


def load_keypair(secret_path: Path) -> KeyPair:
    """Read a ``*.key_secret`` file written by :func:`generate_keys` (or pyzmq).

    Raises
    ------
    ConfigError
        When the file is missing, readable by group or others, or lacks a key.
    """
    if not secret_path.is_file():
        raise ConfigError(str(secret_path), "secret key file not found")
    mode = secret_path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            str(secret_path),
            f"secret key is readable by others (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {secret_path}",
        )
    fields = dict(_certificate_fields(secret_path))
    if "secret-key" not in fields or "public-key" not in fields:
        raise ConfigError(str(secret_path), "no 'public-key' and 'secret-key' lines")
    return KeyPair(
        _check_key(fields["public-key"], f"{secret_path}: public-key"),
        _check_key(fields["secret-key"], f"{secret_path}: secret-key"),
    )


def load_public_key(path: Path) -> bytes:
    """Read a public key from a ``*.key`` certificate or a ``<z85 key>`` text line.

    Raises
    ------
    ConfigError
        When the file is missing or holds no valid key.
    """
    keys = _read_key_file(path)
    if not keys:
        raise ConfigError(str(path), "no public key found")
    return next(iter(keys))


@dataclass(frozen=True)
class AuthorizedKeys:
    """The client public keys allowed to connect, each with the user name it maps to."""

    names: Mapping[bytes, str]

    @classmethod
    def load(cls, path: Path, *, allow_empty: bool = False) -> AuthorizedKeys:
        """Read a key file, or every key file in a folder (``*.key_secret`` skipped).

        ``allow_empty`` accepts a file with no keys (a reload after the last
        user was revoked); at start-up an empty file is a mistake.

        Raises
        ------
        ConfigError
            When the path is missing, a line is not a Z85 key (naming file and
            line), or no key is found at all.
        """
        if path.is_dir():
            files = sorted(
                p
                for p in path.iterdir()
                if p.is_file()
                and not p.name.startswith(".")
                and not p.name.endswith(_SECRET_SUFFIX)
            )
        elif path.is_file():
            files = [path]
        else:
            raise ConfigError(str(path), "authorized keys file or folder not found")
        names: dict[bytes, str] = {}
        for file in files:
            names.update(_read_key_file(file))
        if not names and not allow_empty:
            raise ConfigError(
                str(path), "no authorized client keys; nobody could connect"
            )
        return cls(names)

    def name_of(self, key: bytes) -> str | None:
        """Return the user name of a Z85 public key, or None if it is not allowed."""
        return self.names.get(key)

    def __contains__(self, key: object) -> bool:
        """Tell whether a Z85 public key is allowed."""
        return key in self.names

    def __len__(self) -> int:
        """Count the allowed keys."""
        return len(self.names)


def configure_server_socket(socket: zmq.Socket, keypair: KeyPair) -> None:
    """Make ``socket`` a CurveZMQ server that asks the ZAP handler (fail closed).

    Call before ``bind``; start the authenticator on the same context first.
    """
    socket.curve_server = True
    socket.curve_publickey = keypair.public
    socket.curve_secretkey = keypair.secret
    socket.zap_domain = ZAP_DOMAIN.encode()
    socket.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)


class CurveAuthenticator(ThreadAuthenticator):
    """ZAP thread that admits only listed client keys and names them as User-Id."""

    def __init__(self, context: zmq.Context, authorized: AuthorizedKeys) -> None:
        super().__init__(context, log=logging.getLogger(f"{__name__}.zap"))
        self._authorized = authorized

    def update(self, authorized: AuthorizedKeys) -> None:
        """Swap in a new key set (e.g. on SIGHUP); new connections use it."""
        self._authorized = authorized

    def callback(self, domain: str, key: bytes) -> bool:
        """Decide one CURVE handshake; ``key`` is the client's Z85 public key."""
        name = self._authorized.name_of(key)
        if name is None:
            log.warning("refused CurveZMQ client with unknown key %s", key.decode())
            return False
        log.info("admitted CurveZMQ client %r (domain %s)", name, domain)
        return True

    def curve_user_id(self, client_public_key: bytes) -> str:
        """Return the name the client's key was listed with, as the ZMQ User-Id."""
        key = z85.encode(client_public_key)
        return self._authorized.name_of(key) or key.decode()


def start_authenticator(
    context: zmq.Context, authorized: AuthorizedKeys
) -> CurveAuthenticator:
    """Start the ZAP handler on ``context``; ``stop()`` it at shutdown.

    Raises
    ------
    zmq.ZMQError
        When another ZAP handler is already bound on this context.
    """
    authenticator = CurveAuthenticator(context, authorized)
    authenticator.start()
    authenticator.configure_curve_callback(
        ZAP_DOMAIN, credentials_provider=authenticator
    )
    return authenticator


def cmd_keys_generate(
    directory: Path, name: str = "server", out: TextIO | None = None
) -> tuple[Path, Path]:
    """Back ``openhcs-server keys generate DIR``: write keys, say what goes where.

    Raises
    ------
    ConfigError
        As :func:`generate_keys`.
    """
    stream = out or sys.stdout
    public_path, secret_path = generate_keys(directory, name)
    public = load_public_key(public_path).decode()
    server_text = (
        f"  On the server, set in server.toml:\n"
        f"    [security]\n    server_secret_key = {str(secret_path)!r}\n"
        f"  Give clients the public key (they pin it): {public}\n"
    )
    client_text = (
        f"  Add this line to the server's authorized_keys file (or copy\n"
        f"  {public_path.name} into its authorized_keys folder):\n"
        f"    {public} {name}\n"
    )
    stream.write(
        f"Wrote {public_path} (public, share it)\n"
        f"Wrote {secret_path} (secret, mode 0600, never share it)\n"
        + (server_text if name == "server" else client_text)
    )
    return public_path, secret_path


def _write_certificate(
    path: Path, name: str, created: str, public: bytes, secret: bytes | None
) -> None:
    kind = "SECRET" if secret else "public"
    lines = [
        f"#   openhcs-nb CurveZMQ {kind} key {name!r}, created {created}",
        "#   Keep this file private." if secret else "#   Safe to share.",
        "metadata",
        f'    name = "{name}"',
        "curve",
        f'    public-key = "{public.decode()}"',
    ]
    if secret:
        lines.append(f'    secret-key = "{secret.decode()}"')
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    if not secret:
        path.chmod(0o644)


def _certificate_fields(path: Path) -> Iterator[tuple[str, bytes]]:
    for raw in path.read_bytes().splitlines():
        line = raw.strip()
        if b"=" in line and not line.startswith(b"#"):
            key, _, value = line.partition(b"=")
            yield key.strip().decode("ascii", "replace"), value.strip(b" \t'\"")


def _read_key_file(path: Path) -> dict[bytes, str]:
    """Return ``{z85 key: name}`` from a certificate or a plain key list."""
    if not path.is_file():
        raise ConfigError(str(path), "key file not found")
    fields = dict(_certificate_fields(path))
    if "public-key" in fields:
        name = fields.get("name", path.stem.encode()).decode("utf-8", "replace")
        return {_check_key(fields["public-key"], f"{path}: public-key"): name}
    keys: dict[bytes, str] = {}
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        key, _, comment = line.partition(b" ")
        name = comment.strip().decode("utf-8", "replace") or path.stem
        keys[_check_key(key, f"{path}, line {number}")] = name
    return keys


def _check_key(key: bytes, where: str) -> bytes:
    if not _Z85_KEY.match(key):
        raise ConfigError(where, "expected a 40-character Z85 CurveZMQ key")
    try:
        z85.decode(key)
    except (ValueError, KeyError, OverflowError, struct_error):
        raise ConfigError(where, "not a valid Z85 key") from None
    return key
