"""Task messages and task-sent events written onto Redis without Celery: the same
commands as Celery's producer, run by real workers, in order, reaped chunks sent again,
the broker URL's password and db honoured, and ``dispatch submit`` without celery."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dispatch.jobs.backends.redis import RedisJobStore
from dispatch.jobs.enqueue import SEND_CHUNK, celery_client, resend_reaped, wait_for_job
from dispatch.jobs.model import JobState
from dispatch.jobs.publish import TaskPublisher
from tests.jobs.support import RedisServer, chunks_of, make_spec
from tests.support.cluster import REPO, Worker, run_cli
from tests.support.dicom_files import make_study
from tests.support.scp import StorageScp

PASSWORD = "s3cret-pw"

# What differs between two messages of the same task: its ids, the name of the sending
# app (Celery's reply_to; no reply is ever read from it), the sending process, and the
# event's time and clock.
_VARYING = {
    "id", "root_id", "uuid", "correlation_id", "reply_to", "delivery_tag", "origin",
    "hostname", "pid", "clock", "timestamp",
}  # fmt: skip


def _decode(raw: str | bytes) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    return message


def _queue() -> str:
    """A queue no worker consumes."""
    return f"publish-test-{uuid.uuid4().hex[:8]}"


def _shape(value: Any) -> Any:
    """``value`` with the varying fields replaced by their type, keys in their order."""
    if isinstance(value, dict):
        return [(k, type(v).__name__ if k in _VARYING else _shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


def _effects(server: RedisServer, db: int, queue: str, send: Callable[[], object]) -> Any:
    """What ``send()`` did on Redis: the verbs of its commands in order (MONITOR, the
    connections' chatter left out), then the queue's messages, the messages published
    (channel, message) and the binding sets, each message reduced to its :func:`_shape`."""
    import redis

    client = redis.Redis.from_url(server.url(db))
    pubsub = client.pubsub()
    pubsub.psubscribe("*")
    assert pubsub.get_message(timeout=5)["type"] == "psubscribe"
    verbs: list[str] = []
    ready, done = threading.Event(), threading.Event()

    def watch() -> None:
        with redis.Redis.from_url(server.url(db)).monitor() as monitor:
            ready.set()
            for entry in monitor.listen():
                verb = str(entry["command"]).split(" ", 1)[0].upper()
                if verb == "ECHO":
                    done.set()
                    return
                verbs.append(verb)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert ready.wait(10)
    time.sleep(0.2)  # MONITOR answers before it is attached: let it settle
    send()
    client.echo("end-of-send")
    assert done.wait(10)
    thread.join(10)
    client.publish("end-of-send", "")
    published = []
    while (message := pubsub.get_message(timeout=5)) and message["channel"] != b"end-of-send":
        published.append((message["channel"].decode(), _shape(_decode(message["data"]))))
    pubsub.close()
    keys: list[str] = sorted(k.decode() for k in client.keys(f"*{queue}*"))  # type: ignore[union-attr]
    pushed = [k for k in keys if client.type(k) == b"list"]
    assert len(pushed) == 1, keys
    messages = [_shape(_decode(raw)) for raw in client.lrange(pushed[0], 0, -1)]
    bindings = {k: client.smembers(k) for k in keys if client.type(k) == b"set"}
    client.delete(*keys)
    client.close()
    chatter = {"PING", "HELLO", "CLIENT", "SELECT", "MULTI", "EXEC", "LLEN"}
    return [v for v in verbs if v not in chatter], pushed, messages, published, bindings


def test_the_commands_equal_celerys_producer_field_by_field(redis_server: RedisServer) -> None:
    queue, prefix, args = _queue(), "pfx:", ["0123456789ab", "c00001"]
    app = celery_client(redis_server.url(3), key_prefix=prefix)
    try:
        celerys = _effects(
            redis_server, 3, queue, lambda: app.send_task(SEND_CHUNK, args=args, queue=queue)
        )
    finally:
        app.close()
    publisher = TaskPublisher.from_url(redis_server.url(3), prefix)
    ours = _effects(redis_server, 3, queue, lambda: publisher.send_tasks(SEND_CHUNK, [args], queue))
    publisher.close()
    assert ours == celerys
    verbs, pushed, _messages, published, bindings = ours
    assert verbs == ["SADD", "SADD", "LPUSH", "PUBLISH"]
    assert pushed == [prefix + queue]
    # The event goes to kombu's fanout channel of the exchange, in the client's db (3).
    assert [channel for channel, _ in published] == [f"{prefix}/3.celeryev/task.sent"]
    assert sorted(bindings) == [
        f"{prefix}_kombu.binding.{queue}",
        f"{prefix}_kombu.binding_permanent.{queue}",
    ]


def test_a_task_is_celerys_message_by_name_with_the_ids_as_arguments(
    redis_server: RedisServer, redis_client: Any
) -> None:
    queue = _queue()
    publisher = TaskPublisher.from_url(redis_server.url(1))
    (task_id,) = publisher.send_tasks(SEND_CHUNK, [["0123456789ab", "c00001"]], queue)
    publisher.close()
    (message,) = (_decode(raw) for raw in redis_client.lrange(queue, 0, -1))
    assert message["headers"]["task"] == SEND_CHUNK
    assert message["headers"]["id"] == message["headers"]["root_id"] == task_id
    assert message["properties"]["correlation_id"] == task_id
    assert message["body"][0] == ["0123456789ab", "c00001"]


def test_ids_and_clocks_are_fresh_per_message(redis_server: RedisServer, redis_client: Any) -> None:
    queue = _queue()
    pubsub = redis_client.pubsub()
    pubsub.subscribe("/1.celeryev/task.sent")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    publisher = TaskPublisher.from_url(redis_server.url(1))
    sent = publisher.send_tasks(SEND_CHUNK, [["job", "c1"], ["job", "c2"]], queue)
    publisher.close()
    first, second = (_decode(raw) for raw in reversed(redis_client.lrange(queue, 0, -1)))
    assert [first["headers"]["id"], second["headers"]["id"]] == sent
    assert first["properties"]["delivery_tag"] != second["properties"]["delivery_tag"]
    events = [_decode(pubsub.get_message(timeout=5)["data"])["body"] for _ in sent]
    pubsub.close()
    assert [(e["type"], e["uuid"], e["args"]) for e in events] == [
        ("task-sent", sent[0], "['job', 'c1']"),
        ("task-sent", sent[1], "['job', 'c2']"),
    ]
    assert events[1]["clock"] == events[0]["clock"] + 1


def test_send_tasks_queues_first_in_first_out(redis_server: RedisServer, redis_client: Any) -> None:
    queue = _queue()
    calls = [["job", f"c{n:05d}"] for n in range(5)]
    TaskPublisher.from_url(redis_server.url(1)).send_tasks(SEND_CHUNK, calls, queue)
    # A worker pops from the right end (BRPOP): the first task sent comes out first.
    popped = [_decode(redis_client.rpop(queue))["body"][0] for _ in calls]
    assert popped == calls


def test_a_published_task_is_run_by_a_real_worker(
    scp: StorageScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    study = make_study(tmp_path / "s", images=3)
    spec = make_spec(scp.host, scp.port, job_id="pub1")
    (chunk,) = chunks_of(study.files, 10)
    job_store.create_job(spec, [chunk])
    TaskPublisher.from_url(redis_url).send_task(
        SEND_CHUNK, args=["pub1", chunk.chunk_id], queue=spec.queue
    )
    final = wait_for_job(job_store, "pub1", poll_s=0.1, timeout_s=60)
    assert final.state is JobState.COMPLETED and final.stored == 3
    assert sorted(s.sop_instance_uid for s in scp.stores) == sorted(study.sop_instance_uids)


def test_resend_reaped_publishes_the_expired_chunk_again(
    redis_server: RedisServer, redis_client: Any, tmp_path: Path
) -> None:
    queue = _queue()
    store = RedisJobStore(redis_client)
    study = make_study(tmp_path / "s", images=1)
    (chunk,) = chunks_of(study.files, 10)
    store.create_job(make_spec("127.0.0.1", 1, job_id="reap1", queue=queue), [chunk])
    assert store.claim_chunk("reap1", chunk.chunk_id, "dead:1", lease_s=0.05)
    publisher = TaskPublisher.from_url(redis_server.url(1))
    deadline = time.monotonic() + 5
    reaped: list[tuple[str, str]] = []
    while not reaped and time.monotonic() < deadline:  # until the lease has run out
        reaped = resend_reaped(store, publisher)
        time.sleep(0.02)
    assert reaped == [("reap1", chunk.chunk_id)]
    (raw,) = redis_client.lrange(queue, 0, -1)
    message = _decode(raw)
    assert message["headers"]["task"] == SEND_CHUNK
    assert message["body"][0] == ["reap1", chunk.chunk_id]


def test_a_chunk_recorded_but_never_published_is_sent_by_a_workers_reaper(
    scp: StorageScp,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The submitter "died" between recording the job and publishing its task. A worker
    # of its own (a database of its own, a short grace from its settings) hands it on.
    monkeypatch.setenv("DISPATCH_UNCLAIMED_GRACE_S", "0.5")
    url = redis_server.url(2)
    store = RedisJobStore.from_url(url)
    store.client.flushdb()
    worker = Worker("unclaimed", url, tmp_path)
    try:
        worker.wait_ready(store)
        study = make_study(tmp_path / "s", images=2)
        (chunk,) = chunks_of(study.files, 10)
        store.create_job(make_spec(scp.host, scp.port, job_id="lost1"), [chunk])
        final = wait_for_job(store, "lost1", poll_s=0.1, timeout_s=60)
    finally:
        worker.stop()
    assert final.state is JobState.COMPLETED and final.stored == 2
    assert sorted(s.sop_instance_uid for s in scp.stores) == sorted(study.sop_instance_uids)


# -- dispatch submit on a broker with a password ------------------------------------------


@pytest.fixture(scope="module")
def locked_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of its own (no worker consumes it) that requires ``PASSWORD``."""
    import redis

    server = RedisServer(tmp_path_factory.mktemp("redis-password")).start()
    redis.Redis.from_url(server.url()).config_set("requirepass", PASSWORD)
    yield server
    server.stop()


def _locked_url(server: RedisServer, db: int) -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{server.port}/{db}"


def test_publisher_from_url_uses_the_password_and_db(locked_redis: RedisServer) -> None:
    import redis

    queue = _queue()
    TaskPublisher.from_url(_locked_url(locked_redis, 3)).send_task(
        SEND_CHUNK, args=["j", "c"], queue=queue
    )
    db3 = redis.Redis.from_url(_locked_url(locked_redis, 3))
    db0 = redis.Redis.from_url(_locked_url(locked_redis, 0))
    assert (db3.llen(queue), db0.llen(queue)) == (1, 0)


def test_submit_enqueues_on_the_broker_db_and_never_shows_the_password(
    locked_redis: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    for name in [n for n in os.environ if n.startswith("DISPATCH_")]:
        monkeypatch.delenv(name)
    study = make_study(tmp_path / "s", images=2)
    url = _locked_url(locked_redis, 4)
    run = run_cli(
        "submit", "-d", "--no-check", "--broker", url, "--no-wait", "127.0.0.1", "1", *study.files
    )
    assert run.code == 0, run.stderr
    job_id = run.stdout.split()[0]
    assert PASSWORD not in run.stdout + run.stderr
    (raw,) = redis.Redis.from_url(url, decode_responses=True).lrange("dispatch", 0, -1)
    assert isinstance(raw, str)
    assert _decode(raw)["body"][0] == [job_id, "c00001"]


SUBMIT_AND_LIST_MODULES = """
import sys
from dispatch.cli.main import main
code = main(sys.argv[1:])
print(",".join(sorted({m.split(".")[0] for m in sys.modules} & {"celery", "kombu", "workers"})))
sys.exit(code)
"""


def test_submit_imports_neither_celery_nor_kombu(locked_redis: RedisServer, tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    argv = ["submit", "--no-check", "--broker", _locked_url(locked_redis, 5), "--no-wait"]
    argv += ["127.0.0.1", "1"]
    out = subprocess.run(
        [sys.executable, "-c", SUBMIT_AND_LIST_MODULES, *argv, *map(str, study.files)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    job_line, modules = out.stdout.splitlines()
    assert len(job_line) == 12 and modules == ""
