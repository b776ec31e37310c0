"""Writing a server.toml for the config tests."""

from __future__ import annotations

from pathlib import Path


def write(tmp_path: Path, text: str) -> Path:
    """``text`` as ``server.toml`` in ``tmp_path``; its path."""
    path = tmp_path / "server.toml"
    path.write_text(text)
    return path
