"""Celery task messages written straight onto the broker's Redis, without Celery.

``dispatch submit`` enqueues its send tasks with redis-py, which it needs for the job
records anyway, instead of importing celery and kombu (about 0.1 s of its start-up). A
message holds, field for field, what ``Celery.send_task(name, args=[...], queue=q)``
puts in Redis with the settings of :func:`dispatch.jobs.enqueue.celery_client` (task
protocol 2, JSON serializer, kombu's Redis transport); only its ids, ``reply_to`` and
``origin`` differ. ``tests/jobs/test_publish.py`` compares the two, so a Celery or kombu
release that changes the format fails a test.

What kombu's Redis transport does for that publish, and so this module:

- Celery sends a task for a queue of a direct exchange to the nameless default
  exchange with the queue's name as the routing key, which kombu delivers by LPUSH
  onto the list named like the queue: the list of priority 0, the only one used here
  (kombu's lists of priorities 3, 6 and 9 are named ``<queue>\\x06\\x16<n>``). Nothing
  reads the ``_kombu.binding.*`` sets for such a publish; a worker declares its queues
  when it starts, and messages pushed before wait in the list until it consumes them
  (BRPOP, from the other end: first in, first out).
- The list element is kombu's JSON envelope: the body (base64 of the JSON
  ``[args, kwargs, embed]``), its content type and encoding, Celery's headers, and the
  properties (``delivery_info`` with exchange ``""`` and the routing key, priority 0,
  ``body_encoding``, a delivery tag unique to the message).

kombu's ``global_keyprefix`` transport option is not supported (the settings never set
it). The module imports neither redis-py nor kombu: the redis-py client comes from the
caller, or from :meth:`TaskPublisher.from_url`. Its errors are raised as
:class:`~dispatch.errors.BrokerUnavailable`.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from dispatch.jobs.backends.broker_errors import broker_command

_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
"""The third part of a protocol 2 body: no callbacks, chain or chord."""


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
    body = json.dumps([arguments, {}, _EMBED]).encode("utf-8")
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
    return json.dumps(
        {
            "body": base64.b64encode(body).decode("ascii"),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": properties,
        }
    )


class TaskPublisher:
    """Sends Celery tasks by name to the queues of the broker whose Redis ``client``
    (a redis-py client) reaches.

    ``send_task`` takes the arguments of ``Celery.send_task`` that dispatch uses, so
    code that sends through either is written once. Both sending methods raise
    :class:`~dispatch.errors.BrokerUnavailable` when Redis fails the command.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        # Celery's reply_to names the sending app; no reply is ever read from it.
        self._reply_to = str(uuid.uuid4())
        self._host = socket.gethostname()

    @classmethod
    def from_url(cls, url: str) -> TaskPublisher:
        """A publisher on a Redis client of its own for ``url``, built (and the URL
        parsed: password, db number, ``rediss://``) as the job store builds its own."""
        from dispatch.jobs.backends.redis import RedisJobStore

        return cls(RedisJobStore.from_url(url).client)

    def _message(self, name: str, args: Sequence[str], queue: str) -> tuple[str, str]:
        task_id = str(uuid.uuid4())
        message = task_message(
            name,
            args,
            queue,
            task_id=task_id,
            delivery_tag=str(uuid.uuid4()),
            reply_to=self._reply_to,
            origin=f"gen{os.getpid()}@{self._host}",
        )
        return task_id, message

    @broker_command
    def send_task(self, name: str, args: Sequence[str], queue: str) -> str:
        """Enqueue ``name(*args)`` on ``queue``; return the task id."""
        task_id, message = self._message(name, args, queue)
        self._client.lpush(queue, message)
        return task_id

    @broker_command
    def send_tasks(self, name: str, calls: Iterable[Sequence[str]], queue: str) -> list[str]:
        """Enqueue ``name(*args)`` for each ``args`` of ``calls``, in that order, in one
        round trip; return the task ids."""
        ids: list[str] = []
        with self._client.pipeline(transaction=False) as pipe:
            for args in calls:
                task_id, message = self._message(name, args, queue)
                pipe.lpush(queue, message)
                ids.append(task_id)
            if ids:
                pipe.execute()
        return ids
