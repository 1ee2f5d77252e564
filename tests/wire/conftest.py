"""Fixtures of the wire tests: a server on a free loopback port over the test's tmp_path.

`wire_server` runs a WireServer on a background thread of the test process (ServerThread); the
tests that kill the server start `logstore serve` as a subprocess instead (wire_support).
"""

from __future__ import annotations

import logging

import pytest
from wire_support import SERVER_CONFIG

from wire.runner import ServerThread


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "data"
    path.mkdir()
    return str(path)


@pytest.fixture
def wire_server(data_dir):
    logging.getLogger("txn").setLevel(logging.WARNING)
    server = ServerThread(data_dir, SERVER_CONFIG).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_server(data_dir):
    """Start servers with extra settings: make_server({...}) -> ServerThread."""
    started = []

    def start(config: dict | None = None, **kwargs) -> ServerThread:
        server = ServerThread(data_dir, {**SERVER_CONFIG, **(config or {})}, **kwargs).start()
        started.append(server)
        return server
    yield start
    for server in started:
        server.stop()
