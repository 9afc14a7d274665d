"""Hosts for tests: Linux network namespaces on one bridge, and processes run in them.

A :class:`Network` is one bridge in the root namespace holding address ``.1`` of a
private /24 that only these namespaces use (``10.213.N.0/24``, the first N from 7 up
that no route of the root namespace covers), and one namespace per :class:`Host`,
joined to the bridge by a veth pair: the host's ``eth0`` with address ``.10``, ``.11``...
and its loopback up. The root namespace (the test process) reaches every host through
the bridge, and the hosts reach each other; nothing is routed beyond the /24 (the hosts
have no default route). A process started in a host (:meth:`Host.popen`) binds and
connects in that host's namespace: a server listening on ``0.0.0.0`` there listens on
the host's own addresses only.

Names begin with :data:`PREFIX` and the creating process's id in hex (then a number: a
process may make several networks), so that what a killed run left behind is recognised
(its process is gone) and removed by the next run (:func:`remove_stale`).
:meth:`Network.close` ends every process started in its hosts and removes namespaces,
links and bridge, also after a failed test.

Needs root and ``ip`` (iproute2): :func:`require_netns` skips a test without them, or
fails it when the environment has ``CI=true``.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import itertools
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pytest

from tests.support.programs import find_program

PREFIX = "dsp"
"""First letters of every namespace, bridge and veth name this module creates."""
SUBNETS = ipaddress.IPv4Network("10.213.0.0/16")
FIRST_SUBNET = 7
"""Networks are ``10.213.N.0/24`` with N from this up."""
FIRST_HOST = 10
"""Hosts get addresses ``.10``, ``.11``... (``.1`` is the bridge in the root namespace)."""
STOP_TIMEOUT_S = 5.0

_LOCK_NAME = "dispatch-test-netns.lock"
_numbers = itertools.count()
_STALE_NETNS = re.compile(rf"^{PREFIX}-([0-9a-f]+)n\d+-")
_STALE_LINK = re.compile(rf"^{PREFIX}([0-9a-f]+)n\d+(?:br|v\d+)$")
_ROUTE_TYPES = {"unicast", "local", "broadcast", "multicast", "throw", "unreachable", "prohibit",
                "blackhole", "nat", "anycast"}  # fmt: skip


def require_netns() -> None:
    """End the test unless network namespaces can be made here (root, ``ip``).

    Without them the test fails when the environment has ``CI=true`` (CI runs as root
    and installs iproute2) and is skipped otherwise.
    """
    reason = ""
    if os.geteuid() != 0:
        reason = "network namespaces need root"
    elif find_program("ip") is None:
        reason = "program 'ip' (iproute2) is not installed"
    if not reason:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true requires it)")
    pytest.skip(reason)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_netns_processes(netns: str) -> None:
    """SIGKILL every process still running in namespace ``netns``."""
    pids = _ip("netns", "pids", netns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def remove_stale() -> list[str]:
    """Remove the namespaces and links of this prefix whose creating process is gone
    (left by a killed run); return their names."""
    removed: list[str] = []
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split(" ", 1)[0]
        found = _STALE_NETNS.match(name)
        if found and not _alive(int(found.group(1), 16)):
            _kill_netns_processes(name)
            _ip("netns", "delete", name, check=False)
            removed.append(name)
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        # "7: dsp1a2bn0br: <BROADCAST,...>" or "8: dsp1a2bn0v0@if2: <...>"
        name = line.split(":", 2)[1].strip().split("@", 1)[0]
        found = _STALE_LINK.match(name)
        if found and not _alive(int(found.group(1), 16)):
            _ip("link", "delete", name, check=False)
            removed.append(name)
    return removed


def listening(pid: int, port: int) -> bool:
    """True when a socket in process ``pid``'s network namespace listens on TCP ``port``."""
    return "0A" in _states(pid, local_port=port)


def connected(pid: int, address: str, port: int) -> bool:
    """True when a socket in process ``pid``'s network namespace has an established TCP
    connection to ``address:port``."""
    return "01" in _states(pid, remote=(address, port))


def _hex_address(address: str, port: int) -> str:
    packed = ipaddress.IPv4Address(address).packed
    return f"{int.from_bytes(packed, 'little'):08X}:{port:04X}"


def _states(
    pid: int, *, local_port: int | None = None, remote: tuple[str, int] | None = None
) -> set[str]:
    """The states (hex, as the kernel lists them) of the TCP sockets of ``pid``'s
    namespace on ``local_port`` or connected to ``remote``.

    Reads the kernel's table as the process sees it (``/proc/PID/net/tcp``), which is
    its own namespace's; a process that is gone has none.
    """
    wanted_remote = _hex_address(*remote) if remote else None
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except (FileNotFoundError, ProcessLookupError):
        return set()
    states = set()
    for line in lines:
        # fields[1]: local "ADDR:PORT" in hex, fields[2]: remote, fields[3]: the state.
        fields = line.split()
        if local_port is not None and not fields[1].endswith(f":{local_port:04X}"):
            continue
        if wanted_remote is not None and fields[2] != wanted_remote:
            continue
        states.add(fields[3])
    return states


class Host:
    """One namespace of a :class:`Network`: a name, an address, its processes."""

    def __init__(self, network: Network, name: str, netns: str, address: str) -> None:
        self.network = network
        self.name = name
        self.netns = netns
        self.address = address
        self.processes: list[subprocess.Popen[Any]] = []

    def __repr__(self) -> str:
        return f"Host({self.name!r}, {self.address})"

    def command(self, argv: Sequence[str | Path]) -> list[str]:
        """``argv`` as a command line that runs it in this host."""
        return ["ip", "netns", "exec", self.netns, *map(str, argv)]

    def popen(
        self,
        argv: Sequence[str | Path],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        stdout: int | IO[Any] | None = None,
    ) -> subprocess.Popen[Any]:
        """Start ``argv`` in this host, in a session of its own (its process id is
        also its process group's); output to ``log`` (appended) unless ``stdout`` is
        given. :meth:`Network.close` kills it if it still runs then."""
        with contextlib.ExitStack() as stack:
            out: int | IO[Any] | None = stdout
            err: int | IO[Any] | None = None
            if stdout is None and log is not None:
                out = stack.enter_context(log.open("a"))
                err = subprocess.STDOUT
            elif log is not None:
                err = stack.enter_context(log.open("a"))
            process = subprocess.Popen(
                self.command(argv),
                cwd=cwd,
                env=None if env is None else dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                text=True,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def run(
        self, argv: Sequence[str | Path], *, cwd: Path | None = None, timeout_s: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in this host to its end, output captured."""
        return subprocess.run(
            self.command(argv),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    @contextlib.contextmanager
    def unreachable(self, other: Host) -> Iterator[None]:
        """Within the block this host has no route to ``other``: connecting to it fails
        at once (EHOSTUNREACH), and so does the other way round (the answers have no
        route either); every other pair of hosts is unaffected."""
        route = ("route", "add", "unreachable", f"{other.address}/32")
        _ip("-n", self.netns, *route)
        try:
            yield
        finally:
            _ip("-n", self.netns, "route", "delete", "unreachable", f"{other.address}/32")


def stop_process(process: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to the process group of ``process``; SIGKILL it if it outlives
    :data:`STOP_TIMEOUT_S`; reap it. Idempotent."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Members of the group that outlive its leader (storescp's forked children) go too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


class Network:
    """A bridge and its hosts; use as a context manager, or call :meth:`close`."""

    def __init__(self) -> None:
        # Interface names have at most 15 characters: "dsp" + 6 + "n" + 2 + "v" + 2.
        self.tag = f"{os.getpid():x}n{next(_numbers)}"
        self.bridge = f"{PREFIX}{self.tag}br"
        self.hosts: dict[str, Host] = {}
        self.subnet: ipaddress.IPv4Network | None = None

    def __enter__(self) -> Network:
        return self.open()

    def __exit__(
        self,
        _kind: type[BaseException] | None,
        _error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> Network:
        """Make the bridge on a /24 nobody routes yet (under a lock: other test runs
        may be choosing one at the same time)."""
        lock_path = Path(tempfile.gettempdir()) / _LOCK_NAME
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            subnet = self._free_subnet()
            _ip("link", "add", self.bridge, "type", "bridge")
            try:
                self.subnet = subnet
                _ip("addr", "add", f"{subnet[1]}/{subnet.prefixlen}", "dev", self.bridge)
                _ip("link", "set", self.bridge, "up")
            except BaseException:
                self.close()
                raise
        return self

    @staticmethod
    def _free_subnet() -> ipaddress.IPv4Network:
        routed: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for line in _ip("-4", "route", "show", "table", "all").stdout.splitlines():
            words = line.split()
            if words and words[0] in _ROUTE_TYPES:
                words = words[1:]
            if not words or words[0] == "default":
                continue
            with contextlib.suppress(ValueError):
                routed.append(ipaddress.ip_network(words[0], strict=False))
        for candidate in list(SUBNETS.subnets(new_prefix=24))[FIRST_SUBNET:]:
            if not any(candidate.overlaps(net) for net in routed):
                return candidate
        raise RuntimeError(f"no free /24 left in {SUBNETS}")

    def add_host(self, name: str) -> Host:
        """A new namespace on the bridge, with the next address."""
        assert self.subnet is not None, "the network is not open"
        index = len(self.hosts)
        netns = f"{PREFIX}-{self.tag}-{name}"
        veth = f"{PREFIX}{self.tag}v{index}"
        address = str(self.subnet[FIRST_HOST + index])
        _ip("netns", "add", netns)
        host = Host(self, name, netns, address)
        self.hosts[name] = host
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _ip("link", "set", veth, "master", self.bridge, "up")
        _ip("-n", netns, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        return host

    def close(self) -> None:
        """Stop every process of every host, then remove the hosts and the bridge."""
        for host in self.hosts.values():
            for process in host.processes:
                stop_process(process, signal.SIGKILL)
                # A pipe the caller asked for (stdout=PIPE) is closed with its process.
                if process.stdout is not None:
                    process.stdout.close()
            _kill_netns_processes(host.netns)
            _ip("netns", "delete", host.netns, check=False)
        self.hosts.clear()
        _ip("link", "delete", self.bridge, check=False)


def wait_until(
    predicate: Callable[[], bool], what: str, timeout_s: float, poll_s: float = 0.05
) -> None:
    """Poll ``predicate()`` until it is true; raise AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)
