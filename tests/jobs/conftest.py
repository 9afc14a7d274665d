"""Fixtures of the job tests: a session-scoped real redis-server.

- ``redis_server``: the running server (one per session).
- ``redis_client``: a client on a database of its own, emptied before each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.jobs.support import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("redis"))).start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Any:
    import redis

    client = redis.Redis.from_url(redis_server.url(1), decode_responses=True)
    client.flushdb()
    return client
