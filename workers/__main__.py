"""``python -m workers [options] [-- celery worker options]``: ``dispatch worker``."""

import sys

from workers.cli import main

sys.exit(main())
