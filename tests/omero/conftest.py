"""Fixtures for the OMERO tests: one fixture repository per session and a fresh
double "server" per test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("omero", reason="the omero extra (omero-py) is not installed")

HERE = Path(__file__).parent
if str(HERE) not in sys.path:  # the helper modules next to this file
    sys.path.insert(0, str(HERE))

from omero_double import DoubleServer, factory_for  # noqa: E402
from omero_fixture import BOB, build_fixture  # noqa: E402

from openhcs_nb.omero.session import OmeroSession, join_session  # noqa: E402
from openhcs_nb.omero.settings import OmeroSettings  # noqa: E402


@pytest.fixture(scope="session")
def omero_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture repository's description file (``<root>/double.json``)."""
    return build_fixture(tmp_path_factory.mktemp("omero-repo"))


@pytest.fixture
def repo_root(omero_repo: Path) -> Path:
    return omero_repo.parent


@pytest.fixture
def server(omero_repo: Path) -> DoubleServer:
    """A fresh double: no saved annotations, all sessions valid."""
    return DoubleServer(omero_repo)


@pytest.fixture
def settings(repo_root: Path) -> OmeroSettings:
    return OmeroSettings(host="double", data_dir=repo_root, retry_delay_s=0.0)


@pytest.fixture
def join(server: DoubleServer, settings: OmeroSettings):
    """``join(key, **settings changes)`` through the real ``join_session``."""
    from dataclasses import replace

    joined: list[OmeroSession] = []

    def _join(key: str = BOB, **changes: object) -> OmeroSession:
        session = join_session(
            key, config=replace(settings, **changes), factory=factory_for(server)
        )
        joined.append(session)
        return session

    yield _join
    for session in joined:
        session.close()


@pytest.fixture
def bob(join) -> OmeroSession:
    return join(BOB)
