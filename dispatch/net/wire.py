"""One blocking TCP socket with buffered PDU reads, and the single place where socket
errors become the project's exceptions.

The socket stays in blocking mode (no Python-level timeout, which would add a poll()
to every call): the socket timeout (-ts) is set as SO_RCVTIMEO/SO_SNDTIMEO, and the
longer waits for an ACSE or DIMSE reply poll once before the first read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
from collections.abc import Iterator

from dispatch.errors import (
    BadFile,
    ConnectFailed,
    ConnectionLost,
    DispatchError,
    NetworkTimeout,
    ProtocolError,
)
from dispatch.net.pdu import P_DATA_TF, PDU_HEADER

_RECV_SIZE = 65536
_CONTROL_PDU_LIMIT = 1 << 20
"""Largest non-P-DATA PDU we take: an A-ASSOCIATE-AC for 128 contexts is a few KB."""

_MSG_MORE = getattr(socket, "MSG_MORE", 0)


def _timeval(seconds: float | None) -> bytes:
    if not seconds:
        return struct.pack("ll", 0, 0)
    whole = int(seconds)
    return struct.pack("ll", whole, int((seconds - whole) * 1e6))


@contextlib.contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn socket errors raised inside the block into the project's tree."""
    try:
        yield
    except DispatchError:
        raise
    except (TimeoutError, BlockingIOError) as exc:
        raise NetworkTimeout(f"{what}: timed out") from exc
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as exc:
        raise ConnectionLost(f"{what}: connection {_errtext(exc)}") from exc
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
            raise NetworkTimeout(f"{what}: timed out") from exc
        raise ConnectionLost(f"{what}: {_errtext(exc)}") from exc


def _errtext(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


class Wire:
    """A connected socket that reads whole PDUs and writes bytes or file ranges."""

    def __init__(self, sock: socket.socket, socket_timeout_s: float | None) -> None:
        self.sock = sock
        self._fd = sock.fileno()
        self._buf = bytearray()
        self._poller = select.poll()
        self._poller.register(self._fd, select.POLLIN)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        timeval = _timeval(socket_timeout_s)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)

    @classmethod
    def connect(
        cls, host: str, port: int, connect_timeout_s: float | None, socket_timeout_s: float | None
    ) -> Wire:
        """Connect to ``host:port``; raises :class:`ConnectFailed` or :class:`NetworkTimeout`."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ConnectFailed(f"cannot resolve {host}: {exc.strerror}") from exc
        last: OSError | None = None
        for family, kind, proto, _name, address in infos:
            sock = socket.socket(family, kind, proto)
            sock.settimeout(connect_timeout_s)
            try:
                sock.connect(address)
            except TimeoutError as exc:
                sock.close()
                raise NetworkTimeout(f"connect to {host}:{port}: timed out") from exc
            except OSError as exc:
                sock.close()
                last = exc
                continue
            return cls(sock, socket_timeout_s)
        reason = _errtext(last) if last is not None else "no address"
        raise ConnectFailed(f"cannot connect to {host}:{port}: {reason}")

    def wait_readable(self, timeout_s: float | None, what: str) -> None:
        """Block until data arrives, at most ``timeout_s`` (None: rely on the socket timeout)."""
        if timeout_s is None or self._buf:
            return
        if not self._poller.poll(int(timeout_s * 1000)):
            raise NetworkTimeout(f"{what}: no reply within {timeout_s:g} s")

    def _fill(self, needed: int, what: str) -> None:
        while len(self._buf) < needed:
            with translate_errors(what):
                chunk = self.sock.recv(max(_RECV_SIZE, needed - len(self._buf)))
            if not chunk:
                raise ConnectionLost(f"{what}: connection closed by peer")
            self._buf += chunk

    def read_pdu(self, max_pdata: int, what: str) -> tuple[int, bytes]:
        """Read one whole PDU and return (type, PDU bytes including the 6-byte header).

        A P-DATA-TF longer than ``max_pdata`` (our maximum length received; 0 means
        unlimited), or any other PDU longer than 1 MiB, raises :class:`ProtocolError`
        before the body is read, so a hostile length never becomes an allocation.
        """
        self._fill(6, what)
        pdu_type, length = PDU_HEADER.unpack_from(self._buf, 0)
        limit = (max_pdata or _CONTROL_PDU_LIMIT) if pdu_type == P_DATA_TF else _CONTROL_PDU_LIMIT
        if length > limit:
            raise ProtocolError(
                f"{what}: peer sent a PDU of {length} bytes, more than the {limit} we accept"
            )
        self._fill(6 + length, what)
        pdu = bytes(self._buf[: 6 + length])
        del self._buf[: 6 + length]
        return pdu_type, pdu

    def send(self, data: bytes, what: str, more: bool = False) -> None:
        """Send all of ``data``; ``more`` tells the kernel that more follows at once."""
        with translate_errors(what):
            self.sock.sendall(data, _MSG_MORE if more else 0)

    def sendfile(self, fd: int, offset: int, count: int, path: str) -> None:
        """Send ``count`` bytes of file ``fd`` (named ``path``) from ``offset`` without
        copying them through user space. Plain TCP only: on a TLS socket this would
        bypass encryption. A file that ends early raises :class:`BadFile`.
        """
        what = f"sending {path}"
        end = offset + count
        while offset < end:
            with translate_errors(what):
                sent = os.sendfile(self._fd, fd, offset, end - offset)
            if sent == 0:
                raise BadFile(path, "file ended early (changed while sending?)")
            offset += sent

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
