"""The Redis store hands on chunks that were recorded but whose task was never published
(the submitter died in between), and never a chunk whose task waits in the queue."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from dispatch.jobs.backends.redis import RedisJobStore
from dispatch.jobs.config import JobsConfig
from dispatch.jobs.enqueue import SEND_CHUNK
from dispatch.jobs.model import Chunk, FileRef
from dispatch.jobs.publish import TaskPublisher
from tests.jobs.support import RedisServer, make_spec

GRACE_S = 5.0
QUEUE = "unclaimed-test"


def _later(grace_count: float = 1.2) -> float:
    """A reaper's clock that many graces from now (no test waits for a grace)."""
    return time.time() + GRACE_S * grace_count


@pytest.fixture
def store(redis_client: Any) -> RedisJobStore:
    config = JobsConfig(unclaimed_grace_s=GRACE_S)
    return RedisJobStore(redis_client, prefix="t", unclaimed_grace_s=config.unclaimed_grace_s)


def _chunks() -> list[Chunk]:
    return [
        Chunk("c00001", "1.2.3", (FileRef("/a/1", 100, 1),)),
        Chunk("c00002", "1.2.4", (FileRef("/b/1", 200, 2),)),
    ]


def _job(store: RedisJobStore, job_id: str = "job1") -> str:
    store.create_job(make_spec("127.0.0.1", 104, job_id=job_id, queue=QUEUE), _chunks())
    return job_id


def test_a_chunk_never_published_is_handed_out_after_the_grace(store: RedisJobStore) -> None:
    job = _job(store)
    assert store.reap() == []
    assert store.reap(now=_later(0.5)) == []
    assert sorted(store.reap(now=_later())) == [(job, "c00001"), (job, "c00002")]
    assert store.reap(now=_later()) == []  # handed out once
    # Handed out again only if its task is lost once more (the reaper died meanwhile).
    assert len(store.reap(now=_later(2.5))) == 2


def test_a_chunk_whose_task_is_queued_is_not_handed_out(
    store: RedisJobStore, redis_client: Any, redis_server: RedisServer
) -> None:
    job = _job(store)
    publisher = TaskPublisher.from_url(redis_server.url(1))
    publisher.send_tasks(SEND_CHUNK, [[job, "c00001"], [job, "c00002"]], QUEUE)
    publisher.close()
    assert store.reap(now=_later()) == []
    # A worker took the first task (the list's far end) and lost it before claiming.
    redis_client.rpop(QUEUE)
    assert store.reap(now=_later()) == [(job, "c00001")]


def test_a_chunk_whose_task_a_worker_reserved_is_not_handed_out(
    store: RedisJobStore, redis_client: Any, redis_server: RedisServer
) -> None:
    job = _job(store)
    publisher = TaskPublisher.from_url(redis_server.url(1))
    publisher.send_tasks(SEND_CHUNK, [[job, "c00001"], [job, "c00002"]], QUEUE)
    publisher.close()
    # kombu moves a message a worker takes into its 'unacked' hash until acknowledged.
    message = json.loads(redis_client.rpop(QUEUE))
    redis_client.hset("unacked", "tag-1", json.dumps([message, "", QUEUE]))
    assert store.reap(now=_later()) == []


def test_with_a_broker_key_prefix_the_prefixed_queue_and_unacked_are_read(
    redis_client: Any, redis_server: RedisServer
) -> None:
    prefix = "shared-redis:"
    store = RedisJobStore(
        redis_client, prefix="t", unclaimed_grace_s=GRACE_S, broker_key_prefix=prefix
    )
    job = _job(store)
    publisher = TaskPublisher.from_url(redis_server.url(1), prefix)
    publisher.send_tasks(SEND_CHUNK, [[job, "c00001"], [job, "c00002"]], QUEUE)
    publisher.close()
    assert redis_client.llen(QUEUE) == 0 and redis_client.llen(prefix + QUEUE) == 2
    assert store.reap(now=_later()) == []
    message = json.loads(redis_client.rpop(prefix + QUEUE))
    redis_client.hset(prefix + "unacked", "tag-1", json.dumps([message, "", QUEUE]))
    assert store.reap(now=_later()) == []
    redis_client.delete(prefix + "unacked")
    assert store.reap(now=_later()) == [(job, "c00001")]


def test_a_claimed_chunk_is_left_to_its_lease(store: RedisJobStore) -> None:
    job = _job(store)
    assert store.claim_chunk(job, "c00001", "h", 60)
    assert store.reap(now=_later()) == [(job, "c00002")]
    assert store.claim_chunk(job, "c00002", "h2", 60)  # its task, sent again, runs
    store.release_chunk(job, "c00001", "h")
    assert store.reap(now=_later(3)) == []  # the leases run 60 s
    assert store.reap(now=time.time() + 61) == [(job, "c00001")]  # c00002 is still held


def test_chunks_added_to_an_open_job_are_watched_and_finished_ones_are_not(
    store: RedisJobStore,
) -> None:
    spec = make_spec("127.0.0.1", 104, job_id="open1", queue=QUEUE)
    store.create_job(spec, [], open=True)
    first, second = _chunks()
    store.add_chunks("open1", [first, second])
    store.finish_chunk("open1", "c00001")
    assert store.reap(now=_later()) == [("open1", "c00002")]


def test_an_expired_job_is_forgotten(store: RedisJobStore, redis_client: Any) -> None:
    _job(store)
    redis_client.delete("t:job:job1:meta")
    assert store.reap(now=_later()) == []
    assert redis_client.zcard("t:unclaimed") == 0


def test_without_a_grace_unclaimed_chunks_are_not_looked_at(redis_client: Any) -> None:
    store = RedisJobStore(redis_client, prefix="t")
    _job(store)
    assert store.reap(now=_later(10)) == []


def test_the_grace_is_a_positive_setting() -> None:
    from dispatch.errors import UsageError
    from dispatch.jobs.config import load_config

    assert load_config(environ={"DISPATCH_UNCLAIMED_GRACE_S": "0.5"}).unclaimed_grace_s == 0.5
    with pytest.raises(UsageError, match="unclaimed_grace_s"):
        load_config(environ={"DISPATCH_UNCLAIMED_GRACE_S": "0"})
