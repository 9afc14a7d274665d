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

from dispatch.errors import (
    BadFile,
    ConnectFailed,
    ConnectionLost,
    DispatchError,
    NetworkTimeout,
    ProtocolError,
)
from dispatch.net.pdu import P_DATA_TF, PDU_HEADER, pdata_header

_RECV_SIZE = 65536
_CONTROL_PDU_LIMIT = 1 << 20
"""Largest non-P-DATA PDU we take: an A-ASSOCIATE-AC for 128 contexts is a few KB."""

_MSG_MORE = getattr(socket, "MSG_MORE", 0)

ZERO_COPY_MIN = 65536
"""Smallest fragment worth a sendfile call of its own (see :meth:`Wire.send_file_pdus`)."""
_BATCH_BYTES = 1 << 20
"""Data read and sent per sendmsg when fragments are small; at 16 KB fragments that is
128 iovecs, well under IOV_MAX."""


def _timeval(seconds: float | None) -> bytes:
    if not seconds:
        return struct.pack("ll", 0, 0)
    whole = int(seconds)
    return struct.pack("ll", whole, int((seconds - whole) * 1e6))


def translate(exc: OSError, what: str) -> DispatchError:
    """The project's error for a socket error met while doing ``what``.

    Called from ``except OSError`` clauses, not a context manager: it sits on the hot
    path of every send and receive, where a try block costs nothing until it fires.
    """
    if isinstance(exc, TimeoutError | BlockingIOError) or exc.errno in (
        errno.EAGAIN,
        errno.EWOULDBLOCK,
    ):
        return NetworkTimeout(f"{what}: timed out")
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return ConnectionLost(f"{what}: connection {_errtext(exc)}")
    return ConnectionLost(f"{what}: {_errtext(exc)}")


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
        self._batch: bytearray | None = None
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
            try:
                chunk = self.sock.recv(max(_RECV_SIZE, needed - len(self._buf)))
            except OSError as exc:
                raise translate(exc, what) from exc
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
        try:
            self.sock.sendall(data, _MSG_MORE if more else 0)
        except OSError as exc:
            raise translate(exc, what) from exc

    def send_file_pdus(
        self, head: bytes, fd: int, offset: int, count: int, context_id: int, fragment: int,
        path: str,
    ) -> None:
        """Send ``head`` then ``count`` bytes of file ``fd`` from ``offset`` as P-DATA-TF
        PDUs of at most ``fragment`` data bytes, the last one marked last.

        Fragments of at least :data:`ZERO_COPY_MIN` go out zero-copy: each PDU header
        with MSG_MORE, then ``os.sendfile``. Smaller fragments (a peer that takes 16 KB
        PDUs) would make that two system calls per 16 KB, which costs more than the copy
        it saves; they are read into a buffer in batches and each batch goes out in one
        ``sendmsg``. Plain TCP only: on a TLS socket either would bypass encryption.
        A file that ends early raises :class:`BadFile`.
        """
        if fragment >= ZERO_COPY_MIN:
            self._sendfile_pdus(head, fd, offset, count, context_id, fragment, path)
        else:
            self._batched_pdus(head, fd, offset, count, context_id, fragment, path)

    def _sendfile_pdus(
        self, head: bytes, fd: int, offset: int, count: int, context_id: int, fragment: int,
        path: str,
    ) -> None:
        what = f"sending {path}"
        sock, sock_fd = self.sock, self._fd
        try:
            sock.sendall(head, _MSG_MORE)
            end = offset + count
            while offset < end:
                size = min(fragment, end - offset)
                last = offset + size == end
                sock.sendall(pdata_header(size, context_id, 2 if last else 0), _MSG_MORE)
                stop = offset + size
                while offset < stop:
                    sent = os.sendfile(sock_fd, fd, offset, stop - offset)
                    if sent == 0:
                        raise BadFile(path, "file ended early (changed while sending?)")
                    offset += sent
        except OSError as exc:
            raise translate(exc, what) from exc

    def _batched_pdus(
        self, head: bytes, fd: int, offset: int, count: int, context_id: int, fragment: int,
        path: str,
    ) -> None:
        what = f"sending {path}"
        per_batch = max(1, _BATCH_BYTES // fragment)
        if self._batch is None or len(self._batch) < per_batch * fragment:
            self._batch = bytearray(per_batch * fragment)
        view = memoryview(self._batch)
        parts: list[bytes | memoryview] = [head]
        end = offset + count
        try:
            while True:
                want = min(per_batch * fragment, end - offset)
                got = os.preadv(fd, [view[:want]], offset) if want else 0
                if got != want:
                    raise BadFile(path, "file ended early (changed since it was read?)")
                for start in range(0, want, fragment):
                    size = min(fragment, want - start)
                    last = offset + start + size == end
                    parts.append(pdata_header(size, context_id, 2 if last else 0))
                    parts.append(view[start : start + size])
                offset += want
                if not want:  # an empty data set is still one (empty) last fragment
                    parts.append(pdata_header(0, context_id, 2))
                self._sendmsg_all(parts, more=offset < end)
                if offset >= end:
                    return
                parts = []
        except OSError as exc:
            raise translate(exc, what) from exc

    def _sendmsg_all(self, parts: list[bytes | memoryview], more: bool) -> None:
        total = sum(len(p) for p in parts)
        sent = self.sock.sendmsg(parts, (), _MSG_MORE if more else 0)
        if sent < total:
            # Partial send (a full buffer and a signal, or a send timeout): rare, so
            # finish it the simple way.
            rest = b"".join(bytes(p) for p in parts)[sent:]
            self.sock.sendall(rest, _MSG_MORE if more else 0)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
