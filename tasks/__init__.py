"""fairbeat's Celery edge. ``celery -A tasks worker`` and ``celery -A tasks beat`` start here.

Importing this package reads the ``FAIRBEAT_*`` settings once and builds the app.
"""

from tasks.api import enqueue
from tasks.app import create_app
from tasks.context import JobContext, job_context
from tasks.errors import EnqueueError
from tasks.settings import load_settings

app = create_app(load_settings())

__all__ = ["EnqueueError", "JobContext", "app", "enqueue", "job_context"]
