"""Reading a job's input files in a child process: the embedded mode's sender threads
then do not share their interpreter lock with the scan, which reads every file.

:class:`ChildReader` forks at once; the child runs
:func:`~dispatch.jobs.scan.read_files` and sends what it finds through a pipe in
batches (pickled), then an end marker; the parent iterates over the same items in the
same order and groups them itself (:meth:`~dispatch.jobs.scan.Scanner.group`). Fork it
before starting any thread: a forked child holds only the thread that forked, and a
lock another thread held would stay locked in it. The child touches nothing but the
files and the pipe, and leaves with ``os._exit``.

A child that ends without its end marker (killed, out of memory) raises
:class:`~dispatch.errors.ScanFailed` in the parent: a scan that broke off is never
taken for the end of the inputs.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import time
from collections.abc import Callable, Iterable, Iterator

from dispatch.errors import ScanFailed
from dispatch.jobs.scan import Found, read_files
from dispatch.outcome import FileOutcome
from dispatch.settings import ReadMode

BATCH_ITEMS = 64
BATCH_DELAY_S = 0.02
"""A batch goes to the parent once it holds this many items, or once an item is read
this long after the batch's first (inputs read slowly, e.g. from a network share)."""

_END = "end"
"""The last message of a child that read every input; one that failed sends
``("error", text)`` instead. Every other message is a batch (a list)."""


class ChildReader:
    """Iterate over :func:`read_files` of ``make_inputs()`` run in a forked child.

    ``make_inputs`` is called in the child (it may walk directories). Iterate once;
    :meth:`close` (also on leaving a ``with`` block) stops a child still reading and
    reaps it.
    """

    def __init__(
        self, make_inputs: Callable[[], Iterable[str | FileOutcome]], read_mode: ReadMode
    ) -> None:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(read_end)
            _child(write_end, make_inputs, read_mode)
        os.close(write_end)
        self.pid: int | None = pid
        self._pipe = os.fdopen(read_end, "rb")

    def __iter__(self) -> Iterator[Found | FileOutcome]:
        load = pickle.load
        while True:
            try:
                batch = load(self._pipe)
            except (EOFError, pickle.UnpicklingError, OSError) as exc:
                raise ScanFailed(f"the scan of the inputs broke off: {self._ended()}") from exc
            if isinstance(batch, list):
                yield from batch
                continue
            self._ended()
            if batch == _END:
                return
            raise ScanFailed(f"the scan of the inputs broke off: {batch[1]}")

    def close(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            self._ended()
        self._pipe.close()

    def __enter__(self) -> ChildReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _ended(self) -> str:
        """Reap the child; how it ended, in words."""
        if self.pid is None:
            return "reader already ended"
        _pid, status = os.waitpid(self.pid, 0)
        self.pid = None
        if os.WIFSIGNALED(status):
            return f"reader killed by signal {os.WTERMSIG(status)}"
        return f"reader exited with status {os.WEXITSTATUS(status)}"


def _child(
    fd: int, make_inputs: Callable[[], Iterable[str | FileOutcome]], read_mode: ReadMode
) -> None:
    """The child's whole life: read, send, leave (never returns)."""
    code = 1
    try:
        # The parent decides about interrupts: it stops the child when it stops.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        out = os.fdopen(fd, "wb")
        dump = pickle.dump
        try:
            batch: list[Found | FileOutcome] = []
            since = 0.0
            for item in read_files(make_inputs(), read_mode):
                if not batch:
                    since = time.monotonic()
                batch.append(item)
                if len(batch) >= BATCH_ITEMS or time.monotonic() - since >= BATCH_DELAY_S:
                    dump(batch, out, pickle.HIGHEST_PROTOCOL)
                    out.flush()
                    batch = []
            if batch:
                dump(batch, out, pickle.HIGHEST_PROTOCOL)
            dump(_END, out, pickle.HIGHEST_PROTOCOL)
            code = 0
        except Exception as exc:  # told to the parent, which reports it
            with contextlib.suppress(Exception):
                dump(("error", f"{type(exc).__name__}: {exc}"), out, pickle.HIGHEST_PROTOCOL)
        finally:
            with contextlib.suppress(Exception):
                out.close()
    finally:
        os._exit(code)
