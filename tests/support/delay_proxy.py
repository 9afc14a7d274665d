"""A TCP proxy that delays both directions of every connection: a link with a round trip.

Where netem is not available this gives a connection through the proxy a round-trip
time of at least ``rtt_ms``: every chunk read from one side is stamped on arrival and
written to the other side once ``rtt_ms / 2`` has passed. Reading goes on meanwhile, so
the delay is latency, not a cap on throughput (up to :data:`QUEUED_CHUNKS` chunks of
:data:`CHUNK_BYTES` wait per direction; then reading pauses). Bytes keep their order;
an end of stream is passed on after the same delay, a reset as a reset.

In a test::

    with DelayProxy(("127.0.0.1", 0), ("127.0.0.1", port), rtt_ms=20) as proxy:
        connect_to(*proxy.address)

As a program (benchmarks, a host of :mod:`tests.support.netns`)::

    python -m tests.support.delay_proxy --listen HOST:PORT --target HOST:PORT --rtt-ms N

It prints ``listening HOST:PORT`` once it accepts connections and runs until SIGTERM
or SIGINT. A connection whose target refuses is closed at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from types import TracebackType

CHUNK_BYTES = 65536
"""The most read from a socket at once."""
QUEUED_CHUNKS = 256
"""Chunks waiting for their time per direction of a connection (at most 16 MiB)."""
MAX_CONNECTIONS = 64
"""Connections served at once; more are closed as soon as they are accepted."""
START_TIMEOUT_S = 5.0

Address = tuple[str, int]

_RESET = None
"""Queued instead of data: the source was reset, so reset the destination."""


class _Relay:
    """The proxy's event-loop side: a listening server and its connections."""

    def __init__(self, listen: Address, target: Address, rtt_ms: float) -> None:
        if rtt_ms < 0:
            raise ValueError("rtt_ms must not be negative")
        self.listen = listen
        self.target = target
        self.one_way_s = rtt_ms / 2000.0
        self.address: Address | None = None
        self.stopping = asyncio.Event()
        self._connections: set[asyncio.Task[None]] = set()

    async def serve(self, on_ready: Callable[[Address], None]) -> None:
        """Accept connections until :attr:`stopping` is set; then end every connection."""
        server = await asyncio.start_server(self._accept, *self.listen, reuse_address=True)
        host, port = server.sockets[0].getsockname()[:2]
        self.address = (str(host), int(port))
        on_ready(self.address)
        try:
            await self.stopping.wait()
        finally:
            server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= MAX_CONNECTIONS:
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._relay(reader, writer)
        finally:
            self._connections.discard(task)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        for side in (writer, up_writer):
            sock = side.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pumps = [
            asyncio.ensure_future(self._pump(reader, up_writer)),
            asyncio.ensure_future(self._pump(up_reader, writer)),
        ]
        try:
            await asyncio.gather(*pumps)
        except (OSError, asyncio.IncompleteReadError):
            # One side failed: the other learns of it as a reset, as it would without us.
            pass
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for side in (writer, up_writer):
                side.transport.abort()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Copy ``source`` to ``sink``, each chunk :attr:`one_way_s` after it was read."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue(QUEUED_CHUNKS)

        async def receive() -> None:
            try:
                while data := await source.read(CHUNK_BYTES):
                    await queue.put((loop.time() + self.one_way_s, data))
            except OSError:
                await queue.put((loop.time() + self.one_way_s, _RESET))
                return
            await queue.put((loop.time() + self.one_way_s, b""))

        receiving = asyncio.ensure_future(receive())
        try:
            while True:
                due, data = await queue.get()
                wait_s = due - loop.time()
                if wait_s > 0:
                    await asyncio.sleep(wait_s)
                if data is _RESET:
                    raise ConnectionResetError("the other side was reset")
                if not data:
                    if sink.can_write_eof():
                        sink.write_eof()
                    return
                sink.write(data)
                await sink.drain()
        finally:
            receiving.cancel()
            await asyncio.gather(receiving, return_exceptions=True)


class DelayProxy:
    """The proxy on a thread of its own; :meth:`start` returns once it listens.

    ``listen`` may name port 0: :attr:`address` is where it listens then.
    :meth:`stop` (or leaving the ``with`` block) closes the listening socket and every
    connection, and joins the thread.
    """

    def __init__(self, listen: Address, target: Address, rtt_ms: float) -> None:
        self._relay = _Relay(listen, target, rtt_ms)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="delay-proxy", daemon=True)

    @property
    def address(self) -> Address:
        """Where the proxy listens (once started)."""
        assert self._relay.address is not None, "the proxy is not started"
        return self._relay.address

    def start(self) -> DelayProxy:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError("the delay proxy did not start")
        if self._error is not None:
            raise RuntimeError(f"the delay proxy did not start: {self._error}")
        return self

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            await self._relay.serve(lambda _address: self._ready.set())

        try:
            asyncio.run(main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def stop(self) -> None:
        """Stop serving; idempotent."""
        loop = self._loop
        if loop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._relay.stopping.set)
        if self._thread.ident is not None:
            self._thread.join(START_TIMEOUT_S)

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(
        self,
        _kind: type[BaseException] | None,
        _error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _address(text: str) -> Address:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host, int(port)


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of milliseconds, not {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the proxy until SIGTERM or SIGINT; return the exit code."""
    parser = argparse.ArgumentParser(description="TCP proxy adding a round-trip delay")
    parser.add_argument("--listen", type=_address, required=True, metavar="HOST:PORT")
    parser.add_argument("--target", type=_address, required=True, metavar="HOST:PORT")
    parser.add_argument("--rtt-ms", type=_milliseconds, required=True, metavar="N")
    args = parser.parse_args(argv)

    async def run() -> None:
        relay = _Relay(args.listen, args.target, args.rtt_ms)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, relay.stopping.set)

        def ready(address: Address) -> None:
            print(f"listening {address[0]}:{address[1]}", flush=True)

        await relay.serve(ready)

    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"delay_proxy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
