"""dicom-dispatch: a fast DICOM C-STORE sender.

The package is layered: :mod:`dispatch.net` speaks DICOM upper layer and DIMSE over
one blocking socket; :mod:`dispatch.sender` sends files through it under a halt/continue
policy; :mod:`dispatch.cli` is the command line. Nothing here imports Celery, Redis or
Prometheus.
"""

__version__ = "0.1.0"
