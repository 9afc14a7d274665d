"""Fixtures of the multi-host scenarios (root only: see :mod:`tests.support.netns`).

- ``network``: for the session, one bridge and five hosts: ``redis``, ``peer``,
  ``worker1``, ``worker2`` and ``submitter``.
- ``shared_redis``: for the session, a Redis on the ``redis`` host (scenarios that
  restart Redis start their own with :class:`~tests.hosts.support.HostRedis`).
- ``peer``: storescp behind a delaying proxy on the ``peer`` host, started;
  ``stopped_peer``: the same, not started yet.
- ``site``: the test's queue and directories; it starts the workers and submits.
- ``studies``: four studies of twelve small files under ``data/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hosts.support import HostRedis, Peer, Site
from tests.support.dicom_files import Study, make_study
from tests.support.netns import Network, remove_stale, require_netns

HOSTS = ("redis", "peer", "worker1", "worker2", "submitter")


@pytest.fixture(scope="session")
def network() -> Iterator[Network]:
    require_netns()
    remove_stale()
    with Network() as net:
        for name in HOSTS:
            net.add_host(name)
        yield net


@pytest.fixture(scope="session")
def shared_redis(network: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = HostRedis(network.hosts["redis"], tmp_path_factory.mktemp("hosts-redis")).start()
    yield server.url
    server.stop()


@pytest.fixture
def stopped_peer(network: Network, tmp_path: Path) -> Iterator[Peer]:
    peer = Peer(network.hosts["peer"], tmp_path / "peer")
    yield peer
    peer.stop()


@pytest.fixture
def peer(stopped_peer: Peer) -> Peer:
    return stopped_peer.start()


@pytest.fixture
def site(network: Network, tmp_path: Path) -> Iterator[Site]:
    found = Site(network, tmp_path)
    yield found
    found.close()


@pytest.fixture
def studies(site: Site) -> list[Study]:
    return [make_study(site.data / f"study{n}", images=12) for n in range(4)]


@pytest.fixture
def own_redis(network: Network, tmp_path: Path) -> Iterator[HostRedis]:
    """A Redis of the test's own with an append-only file (another port of the host)."""
    server = HostRedis(network.hosts["redis"], tmp_path / "redis", port=6380, appendonly=True)
    yield server.start()
    server.stop()
