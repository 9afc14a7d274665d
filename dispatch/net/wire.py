"""One blocking TCP (or TLS) socket with buffered PDU reads, and the single place where
socket and TLS errors become the project's exceptions.

A plain TCP socket stays in blocking mode (no Python-level timeout, which would add a
poll() to every call): the socket timeout (-ts) is set as SO_RCVTIMEO/SO_SNDTIMEO. A TLS
socket takes -ts as its Python-level timeout (see :class:`Wire`). The longer waits for
an ACSE or DIMSE reply poll once before the first read.

Every message leaves through :meth:`Wire.send_message`, the one place that frames
P-DATA-TF PDUs. On a TLS socket every byte goes through the TLS layer: no ``sendfile``,
no raw ``sendmsg``; PDUs are joined into large ``sendall`` calls.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import ssl
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
from dispatch.net.pdu import P_DATA_TF, PDU_HEADER, pdata_header
from dispatch.net.source import DataSource
from dispatch.net.tls import peer_alert, translate_tls

_RECV_SIZE = 65536
_CONTROL_PDU_LIMIT = 1 << 20
"""Largest non-P-DATA PDU we take: an A-ASSOCIATE-AC for 128 contexts is a few KB."""

_MSG_MORE = getattr(socket, "MSG_MORE", 0)

ZERO_COPY_MIN = 65536
"""Smallest fragment worth a sendfile call of its own (see :meth:`Wire.send_message`)."""
_BATCH_BYTES = 1 << 20
"""Data read and sent per sendmsg when fragments are small."""
_IOV_MAX = os.sysconf("SC_IOV_MAX")
"""Most buffers one sendmsg takes (1024 on Linux)."""
_PDUS_PER_CALL = _IOV_MAX // 2 - 1
"""Most data PDUs framed for one sendmsg: two buffers each (header, fragment), and two
left for a command PDU that goes out with the first batch."""
_COMMAND = 0x01
"""PDV control header bit: a command fragment (else a data set fragment)."""
_LAST = 0x02
"""PDV control header bit: the last fragment of the command or data set."""


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

    def send_message(
        self, command: bytes, data: DataSource, context_id: int, fragment: int
    ) -> None:
        """Send one DIMSE message on presentation context ``context_id``: the command set
        ``command``, then the data set of ``data``, each as P-DATA-TF PDUs of one PDV with
        at most ``fragment`` bytes (at least 1), the last PDV of each marked last.

        How the bytes leave does not change what the peer receives. On plain TCP a file
        range in fragments of at least :data:`ZERO_COPY_MIN` goes zero-copy: each PDU
        header with MSG_MORE, then ``os.sendfile``. Smaller fragments (a peer that takes
        16 KB PDUs) would make that two system calls per 16 KB, which costs more than the
        copy it saves: they, bytes in memory and streams go out in batches of about
        1 MiB, each one ``sendmsg`` of the headers and the data in place (a file's read
        into one buffer first). On a TLS socket nothing may bypass the TLS layer: each
        batch is joined and written with ``sendall``.

        A file that ends early raises :class:`BadFile`; socket errors are translated.
        """
        parts = _frame(command, context_id, fragment, _COMMAND | _LAST)
        payload = data.data
        try:
            if payload is not None and len(payload) <= fragment:
                # Most files are small: the whole message in one PDU each, one call.
                parts += (pdata_header(len(payload), context_id, _LAST), payload)
                self._write(parts, more=False)
            elif data.fd >= 0 and fragment >= ZERO_COPY_MIN and not self.tls:
                self._write(parts, more=True)
                self._sendfile(data, context_id, fragment)
            else:
                progress, sent = data.progress, 0
                for batch, last in self._batches(data, fragment):
                    parts += _frame(batch, context_id, fragment, _LAST if last else 0)
                    self._write(parts, more=not last)
                    parts = []
                    if progress is not None:
                        sent += len(batch)
                        progress(sent)
        except OSError as exc:
            raise self._send_error(exc, f"sending {data.path}") from exc

    def _sendfile(self, data: DataSource, context_id: int, fragment: int) -> None:
        """The data set of the file range ``data``: per PDU its header, then the
        fragment straight from the file."""
        sock, sock_fd, fd = self.sock, self._fd, data.fd
        offset, end = data.offset, data.offset + data.length
        progress = data.progress
        while True:
            size = min(fragment, end - offset)
            stop = offset + size
            sock.sendall(pdata_header(size, context_id, _LAST if stop == end else 0), _MSG_MORE)
            while offset < stop:
                sent = os.sendfile(sock_fd, fd, offset, stop - offset)
                if sent == 0:
                    raise BadFile(data.path, "file ended early (changed while sending?)")
                offset += sent
            if progress is not None:
                progress(offset - data.offset)
            if offset == end:
                return

    def _batches(self, data: DataSource, fragment: int) -> Iterator[tuple[memoryview, bool]]:
        """The data set of ``data`` in pieces of a whole number of fragments, at most
        :data:`_PDUS_PER_CALL` of them and about :data:`_BATCH_BYTES`, each with whether
        it is the last; an empty data set is one empty last piece. A file's piece is
        only valid until the next is asked for (they share one buffer)."""
        size = fragment * max(1, min(_BATCH_BYTES // fragment, _PDUS_PER_CALL))
        if data.data is not None:
            view = memoryview(data.data)
            total = len(view)
            for start in range(0, total, size) if total else range(1):
                yield view[start : start + size], start + size >= total
        elif data.chunks is not None:
            pending = bytearray()
            for chunk in data.chunks:
                pending += chunk
                if len(pending) > size:
                    # Keep the last bytes back: only they may be marked last.
                    whole = bytes(pending[: (len(pending) - 1) // size * size])
                    del pending[: len(whole)]
                    for start in range(0, len(whole), size):
                        yield memoryview(whole)[start : start + size], False
            yield memoryview(bytes(pending)), True
        else:
            if self._batch is None or len(self._batch) < size:
                self._batch = bytearray(size)
            buffer = memoryview(self._batch)
            offset, end = data.offset, data.offset + data.length
            while True:
                want = min(size, end - offset)
                got = os.preadv(data.fd, [buffer[:want]], offset) if want else 0
                if got != want:
                    raise BadFile(data.path, "file ended early (changed since it was read?)")
                offset += want
                yield buffer[:want], offset == end
                if offset == end:
                    return

    def _write(self, parts: list[bytes | memoryview], more: bool) -> None:
        """Send ``parts`` in order: one ``sendmsg`` (unless there are more than the
        kernel takes at once), or one ``sendall`` of their join on TLS. ``more`` tells
        the kernel that more follows at once."""
        if self.tls:
            self.sock.sendall(b"".join(parts))
            return
        count = len(parts)
        if count <= _IOV_MAX:
            self._sendmsg(parts, more)
            return
        for start in range(0, count, _IOV_MAX):
            self._sendmsg(parts[start : start + _IOV_MAX], more or start + _IOV_MAX < count)

    def _sendmsg(self, parts: list[bytes | memoryview], more: bool) -> None:
        flags = _MSG_MORE if more else 0
        sent = self.sock.sendmsg(parts, (), flags)
        if sent < sum(map(len, parts)):
            # Partial send (a full buffer and a signal, or a send timeout): rare, so
            # finish it the simple way.
            self.sock.sendall(b"".join(parts)[sent:], flags)

    def _send_error(self, exc: OSError, what: str) -> DispatchError:
        """:func:`translate`, but on a TLS socket that the peer closed, its alert (if it
        sent one) says why: a refused client certificate shows up here under TLS 1.3."""
        if self.tls and isinstance(exc, ssl.SSLEOFError | ConnectionError):
            alert = peer_alert(self.sock, what)  # type: ignore[arg-type]
            if alert is not None:
                return alert
        return translate(exc, what)

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


def _frame(
    data: bytes | memoryview, context_id: int, fragment: int, control: int
) -> list[bytes | memoryview]:
    """``data`` as P-DATA-TF PDUs of one PDV with at most ``fragment`` bytes each, as a
    list of buffers (header, fragment, header, ...; fragments are views of ``data``).
    ``control`` is the PDV control header of the final PDV; the others have it without
    the last bit. Empty ``data`` is one empty PDV."""
    size = len(data)
    if size <= fragment:
        return [pdata_header(size, context_id, control), data]
    view = memoryview(data)
    early = control & ~_LAST
    parts: list[bytes | memoryview] = []
    for start in range(0, size, fragment):
        piece = view[start : start + fragment]
        final = start + fragment >= size
        parts += (pdata_header(len(piece), context_id, control if final else early), piece)
    return parts
