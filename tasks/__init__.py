"""fairbeat's Celery edge. ``celery -A tasks worker`` and ``celery -A tasks beat`` start here.

Importing this package reads the ``FAIRBEAT_*`` settings once and builds the app.
"""

import sys

from tasks.api import enqueue
from tasks.app import create_app
from tasks.context import JobContext, job_context
from tasks.errors import EnqueueError
from tasks.settings import SettingsError, load_settings

try:
    app = create_app(load_settings())
except SettingsError as exc:
    # Fail at start, naming the variable, before any process does work.
    sys.exit(f"fairbeat: {exc}")

__all__ = ["EnqueueError", "JobContext", "app", "enqueue", "job_context"]
