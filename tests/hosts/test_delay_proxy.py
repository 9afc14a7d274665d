"""The delaying proxy of the scenarios: latency added, bytes and order kept, no bandwidth cap."""

from __future__ import annotations

import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.delay_proxy import DelayProxy

RTT_MS = 100.0


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """A TCP echo server on 127.0.0.1 (it closes its side after the client's end)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield str(host), int(port)
    server.shutdown()
    server.server_close()


def _receive(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        part = sock.recv(size - len(data))
        if not part:
            break
        data += part
    return bytes(data)


def test_a_round_trip_takes_at_least_the_rtt(echo_server: tuple[str, int]) -> None:
    with (
        DelayProxy(("127.0.0.1", 0), echo_server, rtt_ms=RTT_MS) as proxy,
        socket.create_connection(proxy.address, timeout=5) as sock,
    ):
        for _ in range(3):
            started = time.monotonic()
            sock.sendall(b"ping")
            assert _receive(sock, 4) == b"ping"
            assert time.monotonic() - started >= RTT_MS / 1000


def test_bytes_arrive_intact_and_in_order_then_the_end_of_stream(
    echo_server: tuple[str, int],
) -> None:
    payload = os.urandom(3 * 1024 * 1024)
    with (
        DelayProxy(("127.0.0.1", 0), echo_server, rtt_ms=20) as proxy,
        socket.create_connection(proxy.address, timeout=10) as sock,
    ):
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        echoed = _receive(sock, len(payload))
        sender.join()
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b""
    assert echoed == payload


def test_the_delay_is_latency_not_a_bandwidth_cap(echo_server: tuple[str, int]) -> None:
    # Ten messages sent 20 ms apart without waiting for answers: the last answer comes
    # one round trip after the last message (0.4 s), not after ten one-way delays in
    # a row in each direction (over 1 s), as it would if chunks waited for each other.
    rtt_s = 0.2
    with (
        DelayProxy(("127.0.0.1", 0), echo_server, rtt_ms=rtt_s * 1000) as proxy,
        socket.create_connection(proxy.address, timeout=5) as sock,
    ):
        started = time.monotonic()
        for n in range(10):
            sock.sendall(b"%02d" % n)
            time.sleep(0.02)
        assert _receive(sock, 20) == b"".join(b"%02d" % n for n in range(10))
        elapsed = time.monotonic() - started
    assert rtt_s <= elapsed < 0.75


def test_a_refused_target_closes_the_connection() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with (
        DelayProxy(("127.0.0.1", 0), ("127.0.0.1", port), rtt_ms=10) as proxy,
        socket.create_connection(proxy.address, timeout=5) as sock,
    ):
        try:
            data = sock.recv(1)
        except ConnectionResetError:
            data = b""
        assert data == b""


def test_the_program_announces_its_address_and_stops_on_sigterm(
    echo_server: tuple[str, int],
) -> None:
    target = f"{echo_server[0]}:{echo_server[1]}"
    command = [sys.executable, "-m", "tests.support.delay_proxy", "--listen", "127.0.0.1:0"]
    command += ["--target", target, "--rtt-ms", "10"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    with process:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        assert line[0] == "listening"
        host, port = line[1].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"hello")
            assert _receive(sock, 5) == b"hello"
        process.terminate()
        try:
            assert process.wait(5) == 0
        finally:
            process.kill()
