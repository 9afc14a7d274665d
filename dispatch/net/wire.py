"""One blocking TCP (or TLS) socket with buffered PDU reads, and the single place where
socket and TLS errors become the project's exceptions.

A plain TCP socket stays in blocking mode (no Python-level timeout, which would add a
poll() to every call): the socket timeout (-ts) is set as SO_RCVTIMEO/SO_SNDTIMEO. A TLS
socket takes -ts as its Python-level timeout (see :class:`Wire`). The longer waits for
an ACSE or DIMSE reply poll once before the first read.

On a TLS socket every byte goes through the TLS layer: no ``sendfile``, no raw
``sendmsg``; data sets are read into a buffer, framed as PDUs there, and written in
large ``sendall`` calls.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import ssl
import struct

from dispatch.errors import (
    BadFile,
    ConnectFailed,
    ConnectionLost,
    DispatchError,
    NetworkTimeout,
    ProtocolError,
)
from dispatch.net.pdu import P_DATA_TF, PDATA_HEADER, PDU_HEADER, pdata_header
from dispatch.net.tls import peer_alert, translate_tls

_RECV_SIZE = 65536
_CONTROL_PDU_LIMIT = 1 << 20
"""Largest non-P-DATA PDU we take: an A-ASSOCIATE-AC for 128 contexts is a few KB."""

_MSG_MORE = getattr(socket, "MSG_MORE", 0)

ZERO_COPY_MIN = 65536
"""Smallest fragment worth a sendfile call of its own (see :meth:`Wire.send_file_pdus`)."""
_BATCH_BYTES = 1 << 20
"""Data read and sent per sendmsg when fragments are small; at 16 KB fragments that is
128 iovecs, well under IOV_MAX."""


def _handshake(
    sock: socket.socket,
    context: ssl.SSLContext,
    server_hostname: str | None,
    timeout_s: float | None,
    host: str,
    port: int,
) -> ssl.SSLSocket:
    """Wrap the connected ``sock`` and complete the TLS handshake; closes it on failure."""
    what = f"TLS handshake with {host}:{port}"
    sock.settimeout(timeout_s)
    try:
        wrapped = context.wrap_socket(
            sock, server_hostname=server_hostname, do_handshake_on_connect=False
        )
    except (OSError, ValueError) as exc:
        sock.close()
        raise ConnectFailed(f"{what}: {exc}") from exc
    try:
        wrapped.do_handshake()
    except TimeoutError as exc:
        wrapped.close()
        raise NetworkTimeout(f"{what}: timed out") from exc
    except OSError as exc:
        wrapped.close()
        raise translate(exc, what) from exc
    return wrapped


def _timeval(seconds: float | None) -> bytes:
    if not seconds:
        return struct.pack("ll", 0, 0)
    whole = int(seconds)
    return struct.pack("ll", whole, int((seconds - whole) * 1e6))


def translate(exc: OSError, what: str) -> DispatchError:
    """The project's error for a socket error met while doing ``what``.

    Called from ``except OSError`` clauses, not a context manager: it sits on the hot
    path of every send and receive, where a try block costs nothing until it fires.
    TLS errors (certificates, handshake, alerts) go to :func:`~dispatch.net.tls.translate_tls`.
    """
    if isinstance(exc, ssl.SSLError):
        return translate_tls(exc, what)
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
        self.tls = isinstance(sock, ssl.SSLSocket)
        """True on a TLS socket: nothing may bypass the TLS layer."""
        self._more = 0 if self.tls else _MSG_MORE  # SSLSocket.sendall takes no flags
        self._fd = sock.fileno()
        self._buf = bytearray()
        self._readable = False
        """A poll() found the socket readable and nothing was received since: the next
        receive will not block."""
        self._poller = select.poll()
        self._poller.register(self._fd, select.POLLIN)
        self._batch: bytearray | None = None
        # On a TLS socket SO_RCVTIMEO/SO_SNDTIMEO would never fire: OpenSSL reports the
        # expired wait as "want read/write", and Python's TLS layer retries that forever
        # on a blocking socket. There the socket timeout is Python's own (a poll() per
        # call, small beside the encryption).
        self._socket_timeout_s = (socket_timeout_s or None) if self.tls else None
        sock.settimeout(self._socket_timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        timeval = _timeval(socket_timeout_s)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        connect_timeout_s: float | None,
        socket_timeout_s: float | None,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        handshake_timeout_s: float | None = None,
    ) -> Wire:
        """Connect to ``host:port``, then with ``tls`` complete the TLS handshake within
        ``handshake_timeout_s`` (``server_hostname``: the name sent and, if the context
        checks host names, checked). Raises :class:`ConnectFailed`,
        :class:`NetworkTimeout`, :class:`~dispatch.errors.TlsError` or
        :class:`ConnectionLost`."""
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
            if tls is not None:
                sock = _handshake(sock, tls, server_hostname, handshake_timeout_s, host, port)
            return cls(sock, socket_timeout_s)
        reason = _errtext(last) if last is not None else "no address"
        raise ConnectFailed(f"cannot connect to {host}:{port}: {reason}")

    def wait_readable(self, timeout_s: float | None, what: str) -> None:
        """Block until data arrives, at most ``timeout_s`` (None: rely on the socket timeout)."""
        if timeout_s is None or self._buf or self._readable:
            return
        if self.tls:
            self._tls_wait(timeout_s, what)
        elif self._poller.poll(int(timeout_s * 1000)):
            self._readable = True
        else:
            raise NetworkTimeout(f"{what}: no reply within {timeout_s:g} s")

    def _tls_wait(self, timeout_s: float, what: str) -> None:
        """:meth:`wait_readable` on a TLS socket: poll() is not enough there, since the
        socket also turns readable for TLS records that carry no data (a TLS 1.3 server
        sends session tickets after the handshake), and a read after them would wait the
        socket timeout instead. So read, with the wait as the read's own timeout."""
        sock = self.sock
        if sock.pending():  # type: ignore[attr-defined]
            return  # decrypted bytes wait inside the TLS layer, invisible to poll()
        sock.settimeout(timeout_s)
        try:
            chunk = sock.recv(_RECV_SIZE)
        except (TimeoutError, ssl.SSLWantReadError) as exc:
            raise NetworkTimeout(f"{what}: no reply within {timeout_s:g} s") from exc
        except OSError as exc:
            raise translate(exc, what) from exc
        finally:
            sock.settimeout(self._socket_timeout_s)
        if not chunk:
            raise ConnectionLost(f"{what}: connection closed by peer")
        self._buf += chunk

    def _fill(self, needed: int, what: str) -> None:
        buf = self._buf
        while len(buf) < needed:
            self._readable = False
            try:
                chunk = self.sock.recv(max(_RECV_SIZE, needed - len(buf)))
            except OSError as exc:
                raise translate(exc, what) from exc
            if not chunk:
                raise ConnectionLost(f"{what}: connection closed by peer")
            buf += chunk

    def read_pdu(self, max_pdata: int, what: str) -> tuple[int, bytes]:
        """Read one whole PDU and return (type, PDU bytes including the 6-byte header).

        A P-DATA-TF longer than ``max_pdata`` (our maximum length received; 0 means
        unlimited), or any other PDU longer than 1 MiB, raises :class:`ProtocolError`
        before the body is read, so a hostile length never becomes an allocation.
        """
        buf = self._buf
        if len(buf) < 6:
            self._fill(6, what)
        pdu_type, length = PDU_HEADER.unpack_from(buf, 0)
        limit = (max_pdata or _CONTROL_PDU_LIMIT) if pdu_type == P_DATA_TF else _CONTROL_PDU_LIMIT
        if length > limit:
            raise ProtocolError(
                f"{what}: peer sent a PDU of {length} bytes, more than the {limit} we accept"
            )
        end = 6 + length
        if len(buf) < end:
            self._fill(end, what)
        if len(buf) == end:  # as a rule: one PDU per receive
            pdu = bytes(buf)
            buf.clear()
        else:
            pdu = bytes(buf[:end])
            del buf[:end]
        return pdu_type, pdu

    def send(self, data: bytes, what: str, more: bool = False) -> None:
        """Send all of ``data``; ``more`` tells the kernel that more follows at once."""
        try:
            self.sock.sendall(data, self._more if more else 0)
        except OSError as exc:
            raise self._send_error(exc, what) from exc

    def send_pdus(
        self, head: bytes, data: bytes | memoryview, context_id: int, fragment: int, path: str
    ) -> None:
        """Send ``head`` then ``data`` (the data set of ``path``) as P-DATA-TF PDUs of at
        most ``fragment`` data bytes, the last one marked last, all in one system call on
        plain TCP."""
        size = len(data)
        parts: list[bytes | memoryview] = [head]
        if size <= fragment:
            parts += (pdata_header(size, context_id, 2), data)
            total = len(head) + PDATA_HEADER.size + size
        else:
            view = memoryview(data)
            for start in range(0, size, fragment):
                piece = view[start : start + fragment]
                last = start + fragment >= size
                parts += (pdata_header(len(piece), context_id, 2 if last else 0), piece)
            total = len(head) + (len(parts) - 1) // 2 * PDATA_HEADER.size + size
        try:
            if self.tls:
                self.sock.sendall(b"".join(parts))
            else:
                self._sendmsg_all(parts, False, total)
        except OSError as exc:
            raise self._send_error(exc, f"sending {path}") from exc

    def send_file_pdus(
        self,
        head: bytes,
        fd: int,
        offset: int,
        count: int,
        context_id: int,
        fragment: int,
        path: str,
    ) -> None:
        """Send ``head`` then ``count`` bytes of file ``fd`` from ``offset`` as P-DATA-TF
        PDUs of at most ``fragment`` data bytes, the last one marked last.

        Fragments of at least :data:`ZERO_COPY_MIN` go out zero-copy: each PDU header
        with MSG_MORE, then ``os.sendfile``. Smaller fragments (a peer that takes 16 KB
        PDUs) would make that two system calls per 16 KB, which costs more than the copy
        it saves; they are read into a buffer in batches and each batch goes out in one
        ``sendmsg``. On a TLS socket neither is used (either would bypass encryption):
        batches are framed in a buffer and written with ``sendall``.
        A file that ends early raises :class:`BadFile`.
        """
        if self.tls:
            self._tls_pdus(head, fd, offset, count, context_id, fragment, path)
        elif fragment >= ZERO_COPY_MIN:
            self._sendfile_pdus(head, fd, offset, count, context_id, fragment, path)
        else:
            self._batched_pdus(head, fd, offset, count, context_id, fragment, path)

    def _sendfile_pdus(
        self,
        head: bytes,
        fd: int,
        offset: int,
        count: int,
        context_id: int,
        fragment: int,
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
        self,
        head: bytes,
        fd: int,
        offset: int,
        count: int,
        context_id: int,
        fragment: int,
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

    def _tls_pdus(
        self,
        head: bytes,
        fd: int,
        offset: int,
        count: int,
        context_id: int,
        fragment: int,
        path: str,
    ) -> None:
        """Read fragments straight into their places between PDU headers in one buffer,
        then hand about 1 MiB at a time to the TLS layer."""
        what = f"sending {path}"
        per_batch = max(1, _BATCH_BYTES // fragment)
        slot = fragment + PDATA_HEADER.size
        size = len(head) + per_batch * slot
        if self._batch is None or len(self._batch) < size:
            self._batch = bytearray(size)
        buf = self._batch
        view = memoryview(buf)
        end = offset + count
        pos = len(head)
        view[:pos] = head
        try:
            while True:
                want = min(per_batch * fragment, end - offset)
                targets: list[memoryview] = []
                starts = range(0, want, fragment) if want else range(1)
                for start in starts:
                    piece = min(fragment, want - start)
                    last = offset + start + piece == end
                    PDATA_HEADER.pack_into(
                        buf, pos, P_DATA_TF, piece + 6, piece + 2, context_id, 2 if last else 0
                    )
                    pos += PDATA_HEADER.size
                    targets.append(view[pos : pos + piece])
                    pos += piece
                got = os.preadv(fd, targets, offset) if want else 0
                if got != want:
                    raise BadFile(path, "file ended early (changed since it was read?)")
                offset += want
                self.sock.sendall(view[:pos])
                if offset >= end:
                    return
                pos = 0
        except OSError as exc:
            raise self._send_error(exc, what) from exc

    def _send_error(self, exc: OSError, what: str) -> DispatchError:
        """:func:`translate`, but on a TLS socket that the peer closed, its alert (if it
        sent one) says why: a refused client certificate shows up here under TLS 1.3."""
        if self.tls and isinstance(exc, ssl.SSLEOFError | ConnectionError):
            alert = peer_alert(self.sock, what)  # type: ignore[arg-type]
            if alert is not None:
                return alert
        return translate(exc, what)

    def _sendmsg_all(
        self, parts: list[bytes | memoryview], more: bool, total: int | None = None
    ) -> None:
        """Send ``parts`` (``total`` bytes, counted here when not given)."""
        if total is None:
            total = sum(len(p) for p in parts)
        sent = self.sock.sendmsg(parts, (), _MSG_MORE if more else 0)
        if sent < total:
            # Partial send (a full buffer and a signal, or a send timeout): rare, so
            # finish it the simple way.
            rest = b"".join(bytes(p) for p in parts)[sent:]
            self.sock.sendall(rest, _MSG_MORE if more else 0)

    def abort(self, abort_pdu: bytes) -> None:
        """Send ``abort_pdu`` if the socket takes it at once, then close; never raises.

        It never waits: a peer that stopped reading must not hold up the abort.
        """
        with contextlib.suppress(OSError):
            self.sock.setblocking(False)
            self.sock.send(abort_pdu)
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
