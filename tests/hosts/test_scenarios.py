"""``dispatch submit`` across hosts while destinations restart, Redis blinks and workers
die: every file ends with exactly one outcome, the peer has every file, none more
often than the in-flight window allows, and the job ends completed with exit code 0.

The hosts: Redis on ``redis``, storescp (behind a link with a round trip of
:data:`~tests.hosts.support.PEER_RTT_MS`) on ``peer``, one worker on each of
``worker1`` and ``worker2``, ``dispatch submit --wait`` on ``submitter``.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from dispatch.jobs.runner import RECORD_BATCH
from tests.hosts.support import HostRedis, HostWorker, Peer, Site, Submission
from tests.support.dicom_files import Study
from tests.support.netns import wait_until

JOB_TIMEOUT_S = 60.0
IN_FLIGHT = RECORD_BATCH + 1
"""Files of a chunk that may reach the peer twice when its run is cut short (its worker
dies, Redis goes away): the one in flight, and those stored whose outcomes were held for
the next batch (at most a batch, and at most a fraction of a second old: see
dispatch.jobs.runner)."""


def _files(studies: list[Study]) -> list[Path]:
    return [f for s in studies for f in s.files]


def assert_delivered(
    site: Site, submission: Submission, code: int, studies: list[Study], peer: Peer, window: int
) -> None:
    """The job completed (exit code 0), one ``stored`` outcome per file, the peer has
    every file of the job and nothing else, at most ``window`` of them twice."""
    state = submission.state()
    context = f"submit exited {code}, job {state}\n{site.logs()}"
    report = submission.report()
    by_file = Counter(submission.resolve(o["path"]) for o in report)
    assert by_file == Counter(f.resolve() for f in _files(studies)), context
    outcomes = Counter((o["outcome"], o["reason"]) for o in report)
    assert outcomes == {("stored", ""): len(report)}, f"{outcomes}\n{context}"
    received = peer.received()
    assert set(received) == {o["sop_instance_uid"] for o in report}, context
    twice = sorted(n for n in received.values() if n > 1)
    assert twice == [2] * len(twice) and len(twice) <= window, f"stored {twice} times\n{context}"
    assert (state, code) == ("completed", 0), context


def _sending(workers: list[HostWorker], peer: Peer) -> HostWorker:
    """The first worker seen mid-chunk: its association is open, and the peer has
    stored files already."""
    found: list[HostWorker] = []

    def one_sending() -> bool:
        found[:] = [w for w in workers if w.connected_to(peer)]
        return bool(found) and bool(peer.storescp.files())

    wait_until(one_sending, "a worker sending", JOB_TIMEOUT_S, poll_s=0.01)
    return found[0]


def test_good_weather_across_hosts(
    site: Site, shared_redis: str, peer: Peer, studies: list[Study]
) -> None:
    site.start_workers(shared_redis)
    submission = site.submit(shared_redis, peer, _files(studies))
    code = submission.wait(JOB_TIMEOUT_S)
    assert_delivered(site, submission, code, studies, peer, window=0)


def test_a_worker_killed_mid_chunk_the_job_completes(
    site: Site, shared_redis: str, peer: Peer, studies: list[Study]
) -> None:
    workers = site.start_workers(shared_redis)
    submission = site.submit(shared_redis, peer, _files(studies))
    victim = _sending(workers, peer)
    victim.kill()
    stored_before = len(peer.storescp.files())
    code = submission.wait(JOB_TIMEOUT_S)
    assert stored_before < len(_files(studies)), "the job ended before the kill"
    assert_delivered(site, submission, code, studies, peer, window=IN_FLIGHT)


def test_a_worker_terminated_mid_chunk_the_job_completes(
    site: Site, shared_redis: str, peer: Peer, studies: list[Study]
) -> None:
    workers = site.start_workers(shared_redis)
    submission = site.submit(shared_redis, peer, _files(studies))
    victim = _sending(workers, peer)
    victim.terminate()
    stored_before = len(peer.storescp.files())
    code = submission.wait(JOB_TIMEOUT_S)
    assert stored_before < len(_files(studies)), "the job ended before the signal"
    # A worker asked to stop records the file in flight and hands the rest of its chunk
    # back: nothing is sent twice.
    assert_delivered(site, submission, code, studies, peer, window=0)
    assert victim.process.wait(JOB_TIMEOUT_S) == 0


def test_relative_paths_with_workers_in_another_directory(
    site: Site, shared_redis: str, peer: Peer, studies: list[Study]
) -> None:
    site.start_workers(shared_redis)
    relative = [f.relative_to(site.data) for f in _files(studies)]
    submission = site.submit(shared_redis, peer, relative)
    code = submission.wait(JOB_TIMEOUT_S)
    assert_delivered(site, submission, code, studies, peer, window=0)


def test_the_peer_reachable_from_one_worker_host_only(
    site: Site, shared_redis: str, peer: Peer, studies: list[Study]
) -> None:
    hosts = site.network.hosts
    with hosts["worker2"].unreachable(hosts["peer"]):
        site.start_workers(shared_redis)
        submission = site.submit(shared_redis, peer, _files(studies))
        code = submission.wait(JOB_TIMEOUT_S)
    assert_delivered(site, submission, code, studies, peer, window=0)


PEER_OUTAGE_S = 10.0


def test_the_peer_down_at_first_then_back(
    site: Site, shared_redis: str, stopped_peer: Peer, studies: list[Study]
) -> None:
    site.start_workers(shared_redis)
    submission = site.submit(shared_redis, stopped_peer, _files(studies))
    down_since = time.monotonic()
    # The outage lasts PEER_OUTAGE_S, unless the job gives up before.
    wait_until(
        lambda: (
            submission.process.poll() is not None or time.monotonic() - down_since >= PEER_OUTAGE_S
        ),
        "the end of the outage",
        PEER_OUTAGE_S + 5,
    )
    stopped_peer.start()
    code = submission.wait(JOB_TIMEOUT_S)
    assert_delivered(site, submission, code, studies, stopped_peer, window=0)


REDIS_OUTAGE_S = 2.0


def test_redis_restarted_mid_job_while_submit_waits(
    site: Site, own_redis: HostRedis, peer: Peer, studies: list[Study]
) -> None:
    site.start_workers(own_redis.url)
    submission = site.submit(own_redis.url, peer, _files(studies))
    wait_until(lambda: bool(peer.storescp.files()), "the first file stored", JOB_TIMEOUT_S, 0.01)
    own_redis.stop()
    stored_before = len(peer.storescp.files())
    time.sleep(REDIS_OUTAGE_S)  # the outage itself: a length of time, not an awaited event
    own_redis.start()
    code = submission.wait(JOB_TIMEOUT_S)
    assert stored_before < len(_files(studies)), "the job ended before Redis stopped"
    # Both workers may be mid-chunk when Redis goes away.
    assert_delivered(site, submission, code, studies, peer, window=2 * IN_FLIGHT)
