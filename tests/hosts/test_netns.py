"""The hosts of the scenarios: they reach each other, the root namespace reaches them, a
route can be taken away, and nothing is left behind (not even by a killed run)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

from tests.support.cluster import REPO
from tests.support.netns import (
    Host,
    Network,
    listening,
    remove_stale,
    require_netns,
    stop_process,
    wait_until,
)

PORT = 8080


def _names() -> str:
    """Every namespace and link of the root namespace, as ``ip`` lists them."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return netns + links


def _connects(host: Host, to: Host) -> subprocess.CompletedProcess[str]:
    code = f"import socket; socket.create_connection(({to.address!r}, {PORT}), 2).close()"
    return host.run([sys.executable, "-c", code])


def test_hosts_reach_each_other_and_the_root_namespace_reaches_them(network: Network) -> None:
    client, server = network.hosts["worker1"], network.hosts["peer"]
    other = network.hosts["worker2"]
    listener = server.popen([sys.executable, "-m", "http.server", "--bind", server.address,
                             str(PORT)])  # fmt: skip
    try:
        wait_until(lambda: listening(listener.pid, PORT), "the server to listen", 10)
        assert _connects(client, server).returncode == 0
        socket.create_connection((server.address, PORT), 2).close()
        with client.unreachable(server):
            cut = _connects(client, server)
            assert cut.returncode != 0 and "No route to host" in cut.stderr
            assert _connects(other, server).returncode == 0
        assert _connects(client, server).returncode == 0
    finally:
        stop_process(listener)


def test_a_closed_network_leaves_nothing_behind() -> None:
    require_netns()
    with Network() as net:
        host = net.add_host("solo")
        sleeper = host.popen(["sleep", "60"])
        assert net.bridge in _names() and host.netns in _names()
    assert sleeper.poll() == -signal.SIGKILL
    assert net.bridge not in _names() and host.netns not in _names()


def test_what_a_killed_run_left_is_removed_by_the_next() -> None:
    require_netns()
    code = (
        "from tests.support.netns import Network\n"
        "net = Network().open()\n"
        "host = net.add_host('left')\n"
        "host.popen(['sleep', '60'])\n"
        "print(net.bridge, host.netns, flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    run = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                           text=True)  # fmt: skip
    with run:
        assert run.stdout is not None
        bridge, netns = run.stdout.readline().split()
        run.kill()
    assert bridge in _names() and netns in _names()
    removed = remove_stale()
    assert {bridge, netns} <= set(removed)
    assert bridge not in _names() and netns not in _names()
