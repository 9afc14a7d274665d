"""``python -m tests.support.hanging_submit N ARGS...``: ``dispatch submit ARGS`` whose
process hangs as it publishes its N-th chunk (recorded in the job, never published), as
a submitter stopped in the middle of enqueuing; the test then kills it."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

from dispatch.jobs import enqueue
from dispatch.jobs.model import JobSpec
from dispatch.jobs.publish import TaskPublisher

_send_chunks = enqueue.send_chunks
_published = 0


def _send_until_the_last(publisher: TaskPublisher, spec: JobSpec, chunk_ids: Sequence[str]) -> None:
    global _published
    _published += 1
    if _published >= int(sys.argv[1]):
        threading.Event().wait()  # until killed
    _send_chunks(publisher, spec, chunk_ids)


enqueue.send_chunks = _send_until_the_last

if __name__ == "__main__":
    from dispatch.cli.main import main

    sys.exit(main(["submit", *sys.argv[2:]]))
