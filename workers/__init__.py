"""The Celery application of dicom-dispatch's workers: ``celery -A workers worker``.

app      the Celery app built from the dispatch settings
tasks    dispatch.send_chunk
reaper   hands on the chunks of dead workers
cli      ``dispatch worker`` / ``python -m workers``
metrics  ``--metrics-port``: Prometheus metrics of every pool process, summed
"""

from workers import metrics as metrics
from workers import reaper as reaper
from workers.app import app as app

__all__ = ["app"]
