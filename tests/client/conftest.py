"""Client fixtures: a connection to the module's real server process."""

from __future__ import annotations

import pytest

from openhcs_nb.client import Connection, connect


@pytest.fixture
def conn(demo_server) -> Connection:
    connection = connect(demo_server.address, timeout=10.0)
    yield connection
    connection.close()
