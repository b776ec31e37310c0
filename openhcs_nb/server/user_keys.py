"""``openhcs-server keys add USER`` and ``keys revoke USER``: per-user keys.

Both edit the ``authorized_keys`` named in ``server.toml`` (a file of
``<key> <user>`` lines, or a folder of ``<user>.key`` certificates) in a way
the running server's watcher always reads whole: a file is rewritten to a
temporary name and renamed over the old one; a certificate is written under
a dot-name (which the loader skips) and renamed into place. The server
reloads within a second and, on revoke, cuts the user's connections off.

``add`` writes the user's pair with :func:`~.keys.generate_keys` (secret
0600, folder 0700) and refuses a user that already has a key unless
``force`` is given, which replaces (and so revokes) the old one. Its report
holds what a JupyterHub hook needs to give that user's server.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from openhcs_nb.server.config import ConfigError
from openhcs_nb.server.keys import (
    _read_key_file,
    generate_keys,
    load_keypair,
    load_public_key,
)

_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


@dataclass(frozen=True)
class UserKey:
    """What ``keys add`` made, as the hub hook reads it (``--json``)."""

    user: str
    public_key: str
    public_key_file: str
    secret_key_file: str
    authorized_keys: str
    server_public_key: str | None
    server_address: str

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-able values."""
        return asdict(self)


def check_user(user: str) -> str:
    """``user`` if it is a safe name for a key file and an authorized_keys line.

    Raises
    ------
    ConfigError
        Spaces, newlines, slashes and the like, which could forge a line or
        a path, or more than 64 characters.
    """
    if not _USER.fullmatch(user):
        raise ConfigError(
            f"user {user[:80]!r}",
            "use 1-64 letters, digits, '_', '-', '.', '@', starting with a "
            "letter or digit",
        )
    return user


def add_user_key(config: Any, user: str, out: Path, *, force: bool = False) -> UserKey:
    """Make ``user`` a key pair in ``out`` and authorize it.

    Raises
    ------
    ConfigError
        No ``[security] authorized_keys`` configured, a bad user name, a key
        already there (without ``force``), or files that exist in ``out``.
    """
    check_user(user)
    target = _authorized_path(config)
    if user in users_with_keys(target):
        if not force:
            raise ConfigError(
                f"user {user!r}",
                f"already has a key in {target}; pass --force to replace it "
                "(the old key stops working)",
            )
        revoke_user_key(config, user)
    if force:
        for suffix in (".key", ".key_secret"):
            (out / f"{user}{suffix}").unlink(missing_ok=True)
    public_path, secret_path = generate_keys(out, user)
    public = load_public_key(public_path).decode()
    if target.is_dir():
        _install_certificate(public_path, target / f"{user}.key")
    else:
        lines = _lines(target)
        _rewrite(target, [*lines, f"{public} {user}"])
    return UserKey(
        user=user,
        public_key=public,
        public_key_file=str(public_path),
        secret_key_file=str(secret_path),
        authorized_keys=str(target),
        server_public_key=_server_public(config),
        server_address=config.server.command_address,
    )


def revoke_user_key(config: Any, user: str) -> int:
    """Remove every key of ``user`` from authorized_keys; returns how many.

    Raises
    ------
    ConfigError
        A bad user name, no authorized_keys, or no key for ``user``.
    """
    check_user(user)
    target = _authorized_path(config)
    removed = 0
    if target.is_dir():
        for path in sorted(target.iterdir()):
            if _is_key_file(path) and user in _read_key_file(path).values():
                path.unlink()
                removed += 1
    else:
        kept = []
        for line in _lines(target):
            if _line_user(line) == user:
                removed += 1
            else:
                kept.append(line)
        if removed:
            _rewrite(target, kept)
    if not removed:
        raise ConfigError(f"user {user!r}", f"has no key in {target}")
    return removed


def users_with_keys(target: Path) -> set[str]:
    """The user names authorized_keys grants today."""
    if target.is_dir():
        names: set[str] = set()
        for path in target.iterdir():
            if _is_key_file(path):
                names.update(_read_key_file(path).values())
        return names
    return {u for u in map(_line_user, _lines(target)) if u}


def _authorized_path(config: Any) -> Path:
    path = config.security.authorized_keys
    if path is None:
        raise ConfigError(
            "security.authorized_keys",
            "not set; name the file (or folder) the server admits keys from",
        )
    return Path(path)


def _server_public(config: Any) -> str | None:
    secret = config.security.server_secret_key
    return load_keypair(Path(secret)).public.decode() if secret else None


def _is_key_file(path: Path) -> bool:
    return (
        path.is_file()
        and not path.name.startswith(".")
        and not path.name.endswith(".key_secret")
    )


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.is_file() else []


def _line_user(line: str) -> str | None:
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    _key, _, name = text.partition(" ")
    return name.strip() or None


def _rewrite(path: Path, lines: list[str]) -> None:
    """Replace ``path`` in one rename, owner-only, so no reader sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + ("\n" if lines else ""))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _install_certificate(source: Path, target: Path) -> None:
    hidden = target.with_name(f".{target.name}.tmp")
    hidden.write_bytes(source.read_bytes())
    os.chmod(hidden, 0o644)
    os.replace(hidden, target)
