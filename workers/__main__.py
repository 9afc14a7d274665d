"""``python -m workers [--concurrency N] [--queues Q] [--loglevel L] [--broker URL]``."""

import sys

from workers.cli import main

sys.exit(main())
