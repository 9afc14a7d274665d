"""Send tasks by name through Celery's own producer, without the workers' code.

:class:`TaskPublisher` holds a Celery app that knows no task (built on first use:
``dispatch send`` and the embedded mode never import celery) and sends with
``Celery.send_task`` on one pooled producer connection. So the messages are Celery's
own, whatever its release; a task-sent event goes out for each task (Flower and
``celery events`` follow a task from there); kombu's ``global_keyprefix``
(:attr:`~dispatch.jobs.config.JobsConfig.broker_key_prefix`) applies to the queues.

Measured on 10,000 tiny files (one local Redis), against messages written by hand
with one pipelined round trip: a submit in the default chunks (10 tasks) takes about
0.5 s more (0.27 s of it importing Celery); one task per file about 0.8 ms more CPU per
task. Small studies are packed into chunks of at least a quarter of ``--chunk``, so a
default submit pays that on at most one task per 250 files.

Errors of kombu and redis-py are raised as :class:`~dispatch.errors.BrokerUnavailable`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dispatch.jobs.backends.broker_errors import broker_command

PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
"""Celery's retry of a publish that fails to reach the broker (then BrokerUnavailable)."""


def client_app(broker_url: str, visibility_timeout_s: float = 7200.0, key_prefix: str = "") -> Any:
    """A Celery app that only sends tasks (it knows no task code), configured as the
    workers' app is for what a sender needs: JSON, the transport options, task-sent
    events."""
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


class TaskPublisher:
    """Sends Celery tasks by name to the queues of the broker at ``broker_url``.

    ``send_task`` takes the arguments of ``Celery.send_task`` that dispatch uses, so
    code that sends through either is written once. Both sending methods raise
    :class:`~dispatch.errors.BrokerUnavailable` when the broker cannot be reached.
    """

    def __init__(
        self, broker_url: str, *, key_prefix: str = "", visibility_timeout_s: float = 7200.0
    ) -> None:
        self._url = broker_url
        self._key_prefix = key_prefix
        self._visibility_timeout_s = visibility_timeout_s
        self._app: Any = None

    @classmethod
    def from_url(cls, url: str, key_prefix: str = "") -> TaskPublisher:
        """A publisher for the broker at ``url`` (password, db number, ``rediss://``)."""
        return cls(url, key_prefix=key_prefix)

    @property
    def app(self) -> Any:
        """The sending Celery app, built on first use."""
        if self._app is None:
            self._app = client_app(self._url, self._visibility_timeout_s, self._key_prefix)
        return self._app

    @broker_command
    def send_task(self, name: str, args: Sequence[str], queue: str) -> str:
        """Enqueue ``name(*args)`` on ``queue``; return the task id."""
        return str(self.app.send_task(name, args=list(args), queue=queue).id)

    @broker_command
    def send_tasks(self, name: str, calls: Iterable[Sequence[str]], queue: str) -> list[str]:
        """Enqueue ``name(*args)`` for each ``args`` of ``calls``, in that order, on one
        producer; return the task ids."""
        app = self.app
        with app.producer_or_acquire() as producer:
            return [
                str(app.send_task(name, args=list(args), queue=queue, producer=producer).id)
                for args in calls
            ]

    def close(self) -> None:
        """Release the broker connections (a no-op if nothing was sent)."""
        if self._app is not None:
            self._app.close()
            self._app = None
