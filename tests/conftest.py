"""Session fixtures: one live gateway shared by the API tests."""

from __future__ import annotations

import pytest

from live_server import Server, start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    srv = start_server(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def model_name(server) -> str:
    return server.client().models.list().data[0].id
