"""Celery task messages and their task-sent events, written straight onto the broker's
Redis: what Celery's producer writes, without importing Celery.

``dispatch submit``, ``retry`` and the waiting submit's hand-on enqueue their tasks with
redis-py, which they need for the job records anyway. Celery's producer cost a submit
about 0.2 s of CPU to import and set up, and about 3 ms per task, on the way to its
first task, while the workers waited for it (measured on 10,000 tiny files, one local
Redis). A message holds, field for field, what ``Celery.send_task(name, args=[...],
queue=q)`` writes with the settings of :func:`client_app` (task protocol 2, JSON,
kombu's Redis transport, task-sent events on); only its ids, ``reply_to``, ``origin``,
the event's clock and times differ. ``tests/jobs/test_publish.py`` compares the two
command by command, so a Celery or kombu release that changes the format fails a test.

What kombu's Redis transport does for that publish, and so this module, per task:

- ``LPUSH`` of kombu's JSON envelope onto the list named like the queue (the list of
  priority 0, the only one used here): the body (base64 of the JSON ``[args, kwargs,
  embed]``), its content type and encoding, Celery's headers, and the properties
  (``delivery_info`` with exchange ``""`` and the routing key, priority 0,
  ``body_encoding``, a delivery tag unique to the message). Workers pop from the other
  end (BRPOP): first in, first out.
- ``PUBLISH`` of the task-sent event on the channel ``/<db>.celeryev/task.sent``: the
  event exchange is a fanout exchange on Redis, and kombu names a fanout channel by its
  database, exchange and routing key. Flower and ``celery events`` follow a task from
  there; nothing is lost when nobody listens.
- Once per publisher, as kombu declares the queue on its first publish, the ``SADD``
  of its binding to the sets ``_kombu.binding.<queue>`` and
  ``_kombu.binding_permanent.<queue>``.

kombu's ``global_keyprefix``
(:attr:`~dispatch.jobs.config.JobsConfig.broker_key_prefix`) prefixes the list, the
binding sets and the event channel, as kombu prefixes them. All of a call's commands go
in one pipelined round trip. The module imports neither redis-py nor Celery (the
redis-py client comes from the caller or :meth:`TaskPublisher.from_url`);
:func:`client_app` imports Celery when called. Redis errors are raised as
:class:`~dispatch.errors.BrokerUnavailable`.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from dispatch.jobs.backends.broker_errors import broker_command

PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
"""Celery's retry of a publish that fails to reach the broker (then BrokerUnavailable)."""

EVENT_EXCHANGE = "celeryev"
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
"""The third part of a protocol 2 body: no callbacks, chain or chord."""
_SEP = "\x06\x16"
"""kombu's separator in binding entries."""


def client_app(broker_url: str, visibility_timeout_s: float = 7200.0, key_prefix: str = "") -> Any:
    """A Celery app that only sends tasks (it knows no task code), configured as the
    workers' app is for what a sender needs: JSON, the transport options, task-sent
    events. The workers send through it (they have Celery loaded); the tests compare
    :class:`TaskPublisher` with it."""
    from celery import Celery  # type: ignore[import-untyped]  # lazily: see the module docstring

    options: dict[str, Any] = {"visibility_timeout": visibility_timeout_s}
    if key_prefix:
        options["global_keyprefix"] = key_prefix
    app = Celery("dispatch-client", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_send_sent_event=True,
        task_publish_retry_policy=PUBLISH_RETRY,
    )
    return app


def _envelope(body: bytes, headers: dict[str, Any], properties: dict[str, Any]) -> str:
    """kombu's JSON envelope of a message on Redis."""
    return json.dumps(
        {
            "body": base64.b64encode(body).decode("ascii"),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": properties,
        }
    )


def task_message(
    name: str,
    args: Sequence[str],
    queue: str,
    *,
    task_id: str,
    delivery_tag: str,
    reply_to: str,
    origin: str,
) -> str:
    """The Redis list element of the Celery task ``name(*args)`` sent to ``queue``.

    ``args`` are short strings (ids): their ``repr`` is then Celery's ``argsrepr``.
    ``task_id`` is also the root and correlation id; ``delivery_tag`` must be unique
    per message (kombu acknowledges by it); ``origin`` names the sending process as
    Celery does (``gen<pid>@<host>``).
    """
    arguments = list(args)
    headers: dict[str, Any] = {
        "lang": "py",
        "task": name,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": repr(arguments),
        "kwargsrepr": "{}",
        "origin": origin,
        "ignore_result": None,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    properties: dict[str, Any] = {
        "correlation_id": task_id,
        "reply_to": reply_to,
        "delivery_mode": 2,  # persistent
        "delivery_info": {"exchange": "", "routing_key": queue},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": delivery_tag,
    }
    body = json.dumps([arguments, {}, _EMBED]).encode("utf-8")
    return _envelope(body, headers, properties)


def task_sent_event(
    name: str,
    args: Sequence[str],
    queue: str,
    *,
    task_id: str,
    delivery_tag: str,
    hostname: str,
    clock: int,
    timestamp: float,
) -> str:
    """The message of the task-sent event of :func:`task_message`'s task, published
    by ``hostname`` (the task's ``origin``) at ``timestamp`` (seconds since the epoch)
    with its Lamport ``clock``."""
    fields: dict[str, Any] = {
        "hostname": hostname,
        "utcoffset": _utcoffset(),
        "pid": os.getpid(),
        "clock": clock,
        "uuid": task_id,
        "root_id": task_id,
        "parent_id": None,
        "name": name,
        "args": repr(list(args)),
        "kwargs": "{}",
        "retries": 0,
        "eta": None,
        "expires": None,
        "queue": queue,
        "exchange": "",
        "routing_key": queue,
        "timestamp": timestamp,
        "type": "task-sent",
    }
    properties: dict[str, Any] = {
        "delivery_mode": 1,  # transient
        "delivery_info": {"exchange": EVENT_EXCHANGE, "routing_key": "task.sent"},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": delivery_tag,
    }
    return _envelope(json.dumps(fields).encode("utf-8"), {"hostname": hostname}, properties)


def _utcoffset() -> float:
    """The local offset to UTC in hours, west positive (as Celery's events give it)."""
    return (time.altzone if time.localtime().tm_isdst else time.timezone) / 3600


class TaskPublisher:
    """Sends Celery tasks by name to the queues of the broker whose Redis ``client``
    (a redis-py client) reaches, with a task-sent event each.

    ``key_prefix`` is kombu's ``global_keyprefix`` and ``db`` the database number of the
    client (it names the event channel). ``send_task`` takes the arguments of
    ``Celery.send_task`` that dispatch uses, so code that sends through either is
    written once. Both sending methods raise
    :class:`~dispatch.errors.BrokerUnavailable` when Redis fails the command.
    """

    def __init__(self, client: Any, *, key_prefix: str = "", db: int = 0) -> None:
        self._client = client
        self._prefix = key_prefix
        self._channel = f"{key_prefix}/{db}.{EVENT_EXCHANGE}/task.sent"
        # Celery's reply_to names the sending app; no reply is ever read from it.
        self._reply_to = str(uuid.uuid4())
        self._hostname = f"gen{os.getpid()}@{socket.gethostname()}"
        self._clock = 0
        self._declared: set[str] = set()

    @classmethod
    def from_url(cls, url: str, key_prefix: str = "") -> TaskPublisher:
        """A publisher on a Redis client of its own for ``url``, built (and the URL
        parsed: password, db number, ``rediss://``) as the job store builds its own."""
        from dispatch.jobs.backends.redis import RedisJobStore

        client = RedisJobStore.from_url(url).client
        db = int(client.connection_pool.connection_kwargs.get("db", 0))
        return cls(client, key_prefix=key_prefix, db=db)

    def _add(self, pipe: Any, name: str, args: Sequence[str], queue: str) -> str:
        """Queue the commands of one task on ``pipe``; return its id."""
        task_id = str(uuid.uuid4())
        pipe.lpush(
            self._prefix + queue,
            task_message(
                name,
                args,
                queue,
                task_id=task_id,
                delivery_tag=str(uuid.uuid4()),
                reply_to=self._reply_to,
                origin=self._hostname,
            ),
        )
        self._clock += 1
        event = task_sent_event(
            name,
            args,
            queue,
            task_id=task_id,
            delivery_tag=str(uuid.uuid4()),
            hostname=self._hostname,
            clock=self._clock,
            timestamp=time.time(),
        )
        pipe.publish(self._channel, event)
        return task_id

    @broker_command
    def send_task(self, name: str, args: Sequence[str], queue: str) -> str:
        """Enqueue ``name(*args)`` on ``queue``; return the task id."""
        return self.send_tasks(name, [args], queue)[0]

    @broker_command
    def send_tasks(self, name: str, calls: Iterable[Sequence[str]], queue: str) -> list[str]:
        """Enqueue ``name(*args)`` for each ``args`` of ``calls``, in that order, in one
        round trip; return the task ids."""
        with self._client.pipeline(transaction=False) as pipe:
            if queue not in self._declared:
                binding = _SEP.join((queue, "", queue))
                pipe.sadd(f"{self._prefix}_kombu.binding.{queue}", binding)
                pipe.sadd(f"{self._prefix}_kombu.binding_permanent.{queue}", binding)
            ids = [self._add(pipe, name, args, queue) for args in calls]
            if ids:
                pipe.execute()
                self._declared.add(queue)
        return ids

    def close(self) -> None:
        """Release the client's connections."""
        self._client.close()
