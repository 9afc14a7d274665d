"""dicom-dispatch: a fast DICOM C-STORE sender.

The package is layered: :mod:`dispatch.net` speaks DICOM upper layer and DIMSE over
one blocking socket; :mod:`dispatch.transfer` sends files through it one by one, for the
use cases :mod:`dispatch.storescu` (a run with storescu's rules) and
:mod:`dispatch.jobs` (the distributed sender); :mod:`dispatch.cli` is the command line.
Nothing here imports Celery, Redis or Prometheus.
"""

__version__ = "0.1.0"
