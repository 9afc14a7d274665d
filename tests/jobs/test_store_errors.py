"""Errors of redis-py and kombu become BrokerUnavailable at the backend's boundary."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from dispatch.errors import BrokerUnavailable, TransientError
from dispatch.jobs.backends.broker_errors import map_broker_errors
from dispatch.jobs.backends.memory import MemoryJobStore, MemorySlots
from dispatch.jobs.backends.redis import RedisJobStore, RedisSlots
from dispatch.jobs.publish import TaskPublisher
from dispatch.jobs.runner import run_chunk
from dispatch.outcome import FileOutcome
from tests.jobs.support import chunks_of, make_spec
from tests.support.dicom_files import make_study
from tests.support.scp import StorageScp
from tests.support.storescp import free_port


@pytest.fixture
def unreachable() -> Any:
    """A redis-py client of a port nobody listens on."""
    import redis

    return redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", decode_responses=True)


def _assert_unavailable(info: pytest.ExceptionInfo[BrokerUnavailable]) -> None:
    import redis

    assert isinstance(info.value, TransientError)
    assert str(info.value).startswith("cannot reach the broker: ")
    assert "\n" not in str(info.value)
    assert isinstance(info.value.__cause__, redis.ConnectionError)


def test_store_commands_raise_broker_unavailable(unreachable: Any) -> None:
    store = RedisJobStore(unreachable, prefix="t")
    with pytest.raises(BrokerUnavailable) as info:
        store.progress("job1")
    _assert_unavailable(info)
    with pytest.raises(BrokerUnavailable) as info:
        store.claim_chunk("job1", "c00001", "h", 10)
    _assert_unavailable(info)
    with pytest.raises(BrokerUnavailable) as info:
        list(store.report("job1"))
    _assert_unavailable(info)


def test_slots_raise_broker_unavailable(unreachable: Any) -> None:
    with pytest.raises(BrokerUnavailable) as info:
        RedisSlots(unreachable, prefix="t").try_acquire("peer", 1, "a", 10)
    _assert_unavailable(info)


def test_publisher_raises_broker_unavailable(unreachable: Any) -> None:
    publisher = TaskPublisher(unreachable)
    with pytest.raises(BrokerUnavailable) as info:
        publisher.send_task("dispatch.send_chunk", ["job1", "c00001"], "q")
    _assert_unavailable(info)
    with pytest.raises(BrokerUnavailable) as info:
        publisher.send_tasks("dispatch.send_chunk", [["job1", "c00001"]], "q")
    _assert_unavailable(info)


def test_kombu_errors_are_translated_too() -> None:
    from kombu.exceptions import OperationalError

    with pytest.raises(BrokerUnavailable) as info, map_broker_errors():
        raise OperationalError("Error 111\n  refused")
    assert str(info.value) == "cannot reach the broker: Error 111 refused"
    assert info.value.reason == "Error 111 refused"


def test_other_errors_pass_unchanged() -> None:
    with pytest.raises(KeyError), map_broker_errors():
        raise KeyError("a bug shows as itself")


def test_a_store_failure_while_the_peer_stores_ends_the_run_not_the_file(
    scp: StorageScp, tmp_path: Path
) -> None:
    # The runner records outcomes while the peer works on a file: the store failing
    # then is no transient failure of the exchange (to retry against the peer), nor the
    # file's outcome. The run stops with it; the chunk's lease hands it on.
    study = make_study(tmp_path / "s", images=3)
    chunks = chunks_of(study.files, 10)

    class Unreachable(MemoryJobStore):
        def record_many(self, job_id: str, outcomes: Sequence[FileOutcome]) -> list[bool]:
            raise BrokerUnavailable("Connection refused")

    store = Unreachable()
    spec = make_spec(scp.host, scp.port, job_id="down1")
    store.create_job(spec, chunks)
    scp.stall_on_store(2)  # a slow answer: what is held goes on record meanwhile
    releaser = threading.Timer(0.2, scp.release_stall)
    releaser.start()
    try:
        with pytest.raises(BrokerUnavailable):
            run_chunk(spec, chunks[0], store, MemorySlots())
    finally:
        releaser.cancel()
        scp.release_stall()
    assert store.progress("down1").retries == 0
