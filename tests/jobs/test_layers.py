"""The layers point one way: dispatch never imports workers, celery or (eagerly) redis."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import dispatch.jobs, dispatch.jobs.enqueue, dispatch.jobs.embedded, dispatch.jobs.redis_store
import dispatch.storescu
bad = sorted(m for m in sys.modules if m.split('.')[0] in ('workers', 'celery', 'kombu', 'redis'))
print(','.join(bad))
"""


def test_dispatch_jobs_imports_no_celery_redis_or_workers() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_module_of_dispatch_names_workers() -> None:
    from pathlib import Path

    import dispatch

    root = Path(dispatch.__file__).parent
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "import workers" in path.read_text() or "from workers" in path.read_text()
    ]
    assert offenders == []


ENGINE_CHECK = """
import sys
import dispatch.net, dispatch.storescu, dispatch.dicomfile, dispatch.proposals
import dispatch.transfer, dispatch.codecs.convert, dispatch.codecs.stream, dispatch.codecs.transcode
bad = sorted(
    m for m in sys.modules
    if m.split('.')[0] in ('workers', 'celery', 'kombu', 'redis', 'prometheus_client')
    or m.startswith(('dispatch.cli', 'dispatch.jobs', 'dispatch.metrics'))
)
print(','.join(bad))
"""


def test_the_engine_knows_nothing_of_jobs_metrics_or_the_command_line() -> None:
    out = subprocess.run(
        [sys.executable, "-c", ENGINE_CHECK], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


FLOORS_CHECK = """
import sys
import dispatch.storescu, dispatch.echo, dispatch.jobs.submit, dispatch.jobs.attempt
print(','.join(sorted(m for m in sys.modules if m.startswith('dispatch.cli'))))
import dispatch.transfer
"""

TRANSFER_CHECK = """
import sys
import dispatch.transfer
print(','.join(sorted(
    m for m in sys.modules if m in ('dispatch.storescu', 'dispatch.echo')
    or m.startswith(('dispatch.jobs', 'dispatch.cli'))
)))
"""


def test_the_use_cases_can_be_driven_without_the_command_line() -> None:
    for check in (FLOORS_CHECK, TRANSFER_CHECK):
        out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == ""
