"""Several real users of one server: a CurveZMQ key pair each, and the server's.

Tests of a shared server need users who are really distinct: each gets their own
key pair, listed by name in ``authorized_keys``, so the server learns who they
are from the CurveZMQ handshake (the ZAP User-Id) and never from what they send.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openhcs_nb.client._keys import CurveKeys
from openhcs_nb.server.keys import KeyPair, generate_keys, load_keypair


@dataclass(frozen=True)
class Users:
    """The server's public key, every user's key pair, and the server config."""

    server_public: bytes
    pairs: dict[str, KeyPair]
    authorized_keys: Path
    server_secret: Path

    @property
    def security_toml(self) -> str:
        """The ``[security]`` section that turns CurveZMQ on with these users."""
        return (
            "[security]\n"
            f'server_secret_key = "{self.server_secret}"\n'
            f'authorized_keys = "{self.authorized_keys}"\n'
        )

    def raw_keys(self, name: str) -> tuple[bytes, bytes, bytes]:
        """``(server public, client public, client secret)`` for a RawClient."""
        pair = self.pairs[name]
        return self.server_public, pair.public, pair.secret

    def connect_args(self, name: str) -> dict[str, object]:
        """Keyword arguments of ``openhcs_nb.connect`` that log in as ``name``."""
        keys = self.authorized_keys.parent / "keys"
        return {
            "server_key": self.server_public.decode(),
            "client_keys": (keys / f"{name}.key", keys / f"{name}.key_secret"),
        }

    def client_keys(self, name: str) -> CurveKeys:
        """The keys ``openhcs_nb.connect(..., keys=...)`` takes for this user."""
        pair = self.pairs[name]
        return CurveKeys(self.server_public, pair.public, pair.secret)

    def write_authorized(self, names: list[str]) -> None:
        """Rewrite ``authorized_keys`` to list only ``names`` (e.g. to revoke)."""
        lines = [f"{self.pairs[n].public.decode()} {n}" for n in names]
        tmp = self.authorized_keys.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.authorized_keys)


def make_users(base: Path, names: list[str]) -> Users:
    """Generate a server key and one key per name under ``base``."""
    keys = base / "keys"
    _, server_secret = generate_keys(keys, "server")
    pairs = {}
    for name in names:
        _, secret = generate_keys(keys, name)
        pairs[name] = load_keypair(secret)
    users = Users(
        load_keypair(server_secret).public,
        pairs,
        base / "authorized_keys",
        server_secret,
    )
    users.write_authorized(names)
    return users


def start_curve_server(base: Path, plates_root: Path, names: list[str], **options):
    """A started real server with CurveZMQ on for ``names``; kill() it afterwards."""
    from server_process import ServerProcess

    users = make_users(base / "users", names)
    extra = users.security_toml + options.pop("extra", "")
    server = ServerProcess(base / "server", plates_root, extra=extra, **options)
    return server.start(), users
