"""Session fixtures: one live gateway per engine, shared by the API tests.

`engine_server` runs a test once on each engine (the in-process transformers engine and vLLM),
so the behaviour the API promises is asserted on both by the same test code."""

from __future__ import annotations

import pytest

from live_server import VLLM_ENV, Server, start_server

ENGINES = ("hf", "vllm")


@pytest.fixture(scope="session")
def hf_server(tmp_path_factory) -> Server:
    srv = start_server(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def server(hf_server) -> Server:
    """The default engine's server; a module may rebind `server` to `engine_server` to run on both."""
    return hf_server


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory) -> Server:
    srv = start_server(tmp_path_factory.mktemp("vllm"), VLLM_ENV, timeout=900)
    srv.capacity = 16  # running + waiting rows before 429
    yield srv
    srv.stop()


@pytest.fixture(scope="session", params=ENGINES)
def engine_server(request) -> Server:
    return request.getfixturevalue("hf_server" if request.param == "hf" else "vllm_server")


@pytest.fixture(scope="session")
def model_name(hf_server) -> str:
    return hf_server.client().models.list().data[0].id
