"""The Celery application of dicom-dispatch's workers: ``celery -A workers worker``.

app      the Celery app built from the dispatch settings
tasks    dispatch.send_chunk
reaper   hands on the chunks of dead workers
cli      ``dispatch worker`` / ``python -m workers``
"""

from workers import reaper as reaper
from workers.app import app as app

__all__ = ["app"]
