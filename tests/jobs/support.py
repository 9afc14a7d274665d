"""Helpers of the job tests: a real redis-server, and specs aimed at a test peer."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from dispatch.errors import UnknownJob
from dispatch.jobs.backends.memory import MemoryJobStore
from dispatch.jobs.backends.redis import RedisJobStore
from dispatch.jobs.model import Chunk, JobSpec, destination_of
from dispatch.jobs.scan import chunk, scan
from dispatch.jobs.store import JobStore
from dispatch.outcome import Outcome
from dispatch.proposals import build_contexts
from dispatch.settings import AssociationSettings, SendPolicy, Timeouts
from tests.support.processes import end_group
from tests.support.programs import require_program
from tests.support.storescp import free_port

START_TIMEOUT_S = 10.0


class RedisServer:
    """A redis-server on 127.0.0.1, without persistence, in its own session."""

    def __init__(self, workdir: Path) -> None:
        self.program = require_program("redis-server")
        self.workdir = workdir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        import redis

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        cmd = [str(self.program), "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        client = redis.Redis.from_url(self.url())
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                # Nothing announces readiness across processes: poll, bounded.
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is None:
            return
        end_group(self.process, 5)


def make_spec(
    host: str,
    port: int,
    *,
    job_id: str,
    halt: bool = True,
    retries: int = 3,
    max_associations: int = 2,
    queue: str = "dispatch",
) -> JobSpec:
    settings = AssociationSettings(
        host=host,
        port=port,
        contexts=build_contexts("uncompressed"),
        timeouts=Timeouts(connect_s=5.0, socket_s=30.0, acse_s=10.0, dimse_s=30.0),
    )
    return JobSpec(
        job_id=job_id,
        name=f"test {job_id}",
        settings=settings,
        policy=SendPolicy(halt=halt),
        retries=retries,
        max_associations=max_associations,
        destination=destination_of(settings),
        queue=queue,
    )


def chunks_of(paths: Sequence[Path | str], max_files: int) -> list[Chunk]:
    """Scan the paths (all must be good) and cut them into chunks."""
    result = scan(str(p) for p in paths)
    assert not result.problems, result.problems
    return chunk(result.groups, max_files)


def confirmed(store: JobStore, job_id: str, chunk_id: str) -> set[str]:
    """The paths of the chunk that the peer confirmed (STORED), read through the
    contract."""
    paths = {f.path for f in store.chunk(job_id, chunk_id).files}
    return {o.path for o in store.report(job_id) if o.outcome is Outcome.STORED} & paths


def chunk_ids(store: JobStore, job_id: str) -> list[str]:
    """Every chunk id of the job in submission order, as the store keeps it (no
    production code needs it: the contract has no method for it)."""
    if isinstance(store, MemoryJobStore):
        return list(store._job(job_id).chunks)
    assert isinstance(store, RedisJobStore)
    raw = store.client.hget(f"{store.prefix}:job:{job_id}:meta", "order")
    if raw is None:
        raise UnknownJob(f"no such job: {job_id}")
    ids: list[str] = json.loads(raw)
    return ids
