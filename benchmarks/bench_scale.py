"""Scale check: one job of a million small files through Redis.

Writes ``--files`` tiny synthetic DICOM files (about 1 KB each, ``--per-study`` to a
study directory; the corpus module's template with its UIDs patched in) to a temporary
directory, starts a ``redis-server``, ``--workers`` ``dispatch worker`` processes and a
DCMTK ``storescp --ignore --fork`` on free loopback ports, and runs ``dispatch submit
--no-wait`` on the directory. Then it waits for the job to finish and measures:

- submit: wall time, peak RSS (GNU time's ``%M`` when present), scan rate (files / wall
  time: ``--no-wait`` returns once every file is scanned and every chunk enqueued);
- time to the first C-STORE: from the start of ``dispatch submit`` until Redis holds
  the job's first outcome (polled every 5 ms; the workers record a batch at most
  0.25 s after its first C-STORE, sooner when it fills);
- the job's Redis memory once it finished: ``MEMORY USAGE`` (exact, ``SAMPLES 0``) of
  every key of the job, per file; and the growth of ``used_memory`` over the run;
- ``dispatch status`` of this job and of a job of 100 files (the same cost: counters,
  not scans); ``dispatch report`` of the whole job: wall time and peak RSS (it streams).

With ``--workers 0`` nothing is sent: the job stays queued and its Redis memory is that
of a submitted job (chunks and task messages). Everything it started is stopped and the
files are removed at the end (``--keep`` keeps the files).

Usage: ``python benchmarks/bench_scale.py [--files N] [--per-study N] [--chunk N]
[--workers N] [--dir DIR] [--keep] [--json FILE]`` with the project's virtualenv Python.
Needs ``redis-server``, DCMTK's ``storescp`` (with workers) and GNU time for peak RSS.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Sibling scripts, not part of an installed package.
import bench_send as bench
import corpus as corpora

KEY_PREFIX = bench.KEY_PREFIX
FILE_SIZE = 1024
SMALL_JOB = 100
_JOB_ID = re.compile(r"^([0-9a-f]{12})$", re.MULTILINE)


def generate(root: Path, files: int, per_study: int) -> tuple[int, float]:
    """Write ``files`` files of :data:`FILE_SIZE` bytes under ``root``, ``per_study`` to a
    study directory; return the bytes written and the seconds it took."""
    started = time.perf_counter()
    studies = -(-files // per_study)
    spec = dataclasses.replace(
        corpora.SPECS["tiny"],
        name="scale",
        studies=studies,
        instances_per_series=per_study,
        rows=8,  # 64 bytes of pixels: the file fits in FILE_SIZE
        columns=8,
        pad_to=FILE_SIZE,
    )
    run = secrets.randbelow(10**9)
    template = corpora._template(spec, run, with_pixels=True)
    study_at = corpora._offsets(template, corpora._uid(run, corpora._STUDY, 0, 0, 0))
    series_at = corpora._offsets(template, corpora._uid(run, corpora._SERIES, 0, 0, 0))
    instance_at = corpora._offsets(template, corpora._uid(run, corpora._INSTANCE, 0, 0, 0))
    buffer = bytearray(template)
    written = 0
    for study in range(studies):
        directory = root / f"study{study:05d}"
        directory.mkdir(parents=True)
        for at, role in ((study_at, corpora._STUDY), (series_at, corpora._SERIES)):
            uid = corpora._uid(run, role, study, 0, 0).encode()
            for offset in at:
                buffer[offset : offset + len(uid)] = uid
        for inst in range(min(per_study, files - study * per_study)):
            uid = corpora._uid(run, corpora._INSTANCE, study, 0, inst).encode()
            for offset in instance_at:
                buffer[offset : offset + len(uid)] = uid
            (directory / f"IM{inst:06d}.dcm").write_bytes(buffer)
            written += len(buffer)
    return written, time.perf_counter() - started


class FirstOutcome(threading.Thread):
    """Polls Redis for the first outcome of the newest job; ``seconds`` is the time from
    ``started`` (perf_counter) until it was seen."""

    def __init__(self, client: Any, started: float, known: set[str]) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.started = started
        self.known = known
        self.seconds: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        job = None
        while not self.stop.wait(0.005):
            if job is None:
                newest = self.client.zrevrange(f"{KEY_PREFIX}:jobs", 0, 0)
                job = newest[0] if newest and newest[0] not in self.known else None
                continue
            counts = self.client.hmget(
                f"{KEY_PREFIX}:job:{job}:meta", ["stored", "failed", "not_sent"]
            )
            if any(int(c or 0) > 0 for c in counts):
                self.seconds = time.perf_counter() - self.started
                return


def submit(
    cluster: bench.Cluster, port: int, directory: Path, chunk: int, workers: int
) -> tuple[str, bench.Run, FirstOutcome]:
    """Run ``dispatch submit --no-wait`` on ``directory``; the job id, the run, and the
    watcher of its first outcome (started only with workers)."""
    client = cluster.client()
    known = set(client.zrange(f"{KEY_PREFIX}:jobs", 0, -1))
    watcher = FirstOutcome(client, time.perf_counter(), known)
    if workers:
        watcher.start()
    run = bench.run_process(
        [str(bench.dispatch_executable()), "submit", "--broker", cluster.url, "--no-wait",
         "--chunk", str(chunk), "--max-associations", str(max(workers, 1)), "+sd", "+r",
         bench.HOST, str(port), str(directory)],
        env=bench.DISPATCH_ENV,
    )  # fmt: skip
    found = _JOB_ID.findall(run.output_tail)
    if run.returncode != 0 or not found:
        raise RuntimeError(f"dispatch submit failed ({run.returncode}):\n{run.output_tail}")
    return found[-1], run, watcher


def wait_finished(cluster: bench.Cluster, job: str, timeout_s: float) -> float:
    """Seconds until the job's record says it finished."""
    started = time.perf_counter()
    client = cluster.client()
    while client.hget(f"{KEY_PREFIX}:job:{job}:meta", "finished") in (None, "0"):
        if time.perf_counter() - started > timeout_s or not cluster.alive():
            raise RuntimeError(f"job {job} did not finish: {cluster.job(job)}")
        time.sleep(0.2)
    return time.perf_counter() - started


def job_bytes(client: Any, job: str) -> int:
    """Exact memory of every key of the job."""
    keys = list(client.scan_iter(f"{KEY_PREFIX}:job:{job}:*", count=1000))
    return sum(int(client.memory_usage(key, samples=0) or 0) for key in keys)


def command(cluster: bench.Cluster, *args: str) -> bench.Run:
    run = bench.run_process(
        [str(bench.dispatch_executable()), *args, "--broker", cluster.url], env=bench.DISPATCH_ENV
    )
    if run.returncode != 0:
        raise RuntimeError(f"dispatch {args[0]} failed:\n{run.output_tail}")
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--per-study", type=int, default=500)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="0: submit only, send nothing")
    parser.add_argument("--dir", help="where the files go (default: the temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    parser.add_argument("--json", help="write the figures to this file too")
    args = parser.parse_args(argv)
    bench.compile_project()

    root = Path(tempfile.mkdtemp(prefix="dispatch-scale-", dir=args.dir))
    results: dict[str, Any] = {"files": args.files, "chunk": args.chunk, "workers": args.workers}
    cluster = bench.Cluster(workers=args.workers, concurrency=1)
    peer = bench.Peer(("--fork",))
    try:
        written, secs = generate(root / "big", args.files, args.per_study)
        generate(root / "small", SMALL_JOB, SMALL_JOB)
        results |= {"generated_bytes": written, "generate_s": round(secs, 1)}
        print(f"generated {args.files} files ({written / 1e6:.0f} MB) in {secs:.1f} s", flush=True)
        port = peer.ensure() if args.workers else 9  # nothing listens: nothing is sent
        cluster.start()  # without workers: Redis alone
        client = cluster.client()
        small, _, _ = submit(cluster, port, root / "small", args.chunk, args.workers)
        if args.workers:
            wait_finished(cluster, small, 120)
        before = int(client.info("memory")["used_memory"])
        job, run, watcher = submit(cluster, port, root / "big", args.chunk, args.workers)
        results |= {
            "submit_s": round(run.seconds, 2),
            "submit_peak_rss_mb": round(run.max_rss_kb / 1024, 1),
            "submit_cpu_s": round(run.cpu_seconds, 2),
            "scan_files_per_s": round(args.files / run.seconds),
        }
        if args.workers:
            done_s = wait_finished(cluster, job, args.files / 200 + 300)
            watcher.stop.set()
            watcher.join()
            first = watcher.seconds
            results |= {
                "first_outcome_s": None if first is None else round(first, 3),
                "job_s": round(run.seconds + done_s, 1),
                "job_files_per_s": round(args.files / (run.seconds + done_s)),
            }
            state = cluster.job(job)
            results["state"] = state
        after = int(client.info("memory")["used_memory"])
        used = job_bytes(client, job)
        results |= {
            "redis_job_bytes": used,
            "redis_bytes_per_file": round(used / args.files, 1),
            "redis_used_memory_growth_per_file": round((after - before) / args.files, 1),
        }
        for name, which in (("status_big_s", job), ("status_small_s", small)):
            results[name] = round(command(cluster, "status", which).seconds, 3)
        out = root / "report.jsonl"
        report = command(cluster, "report", job, "--output", str(out))
        with out.open("rb") as handle:
            lines = sum(1 for _ in handle)
        results |= {
            "report_s": round(report.seconds, 1),
            "report_peak_rss_mb": round(report.max_rss_kb / 1024, 1),
            "report_lines": lines,
        }
        out.unlink()
    finally:
        cluster.stop()
        peer.stop()
        if args.keep:
            print(f"files kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
