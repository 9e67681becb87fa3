"""fairbeat: multi-tenant background jobs on Celery, fair across workspaces.

The public API::

    from fairbeat import enqueue, enqueue_many, job_context, EnqueueError
    from fairbeat import cancel, cancel_workspace   # cancel(job_id, why=...), running jobs too
    from fairbeat import schedules   # schedules.add(...), list, pause, resume, remove

``celery -A fairbeat worker`` and ``celery -A fairbeat beat`` find the app
here. Importing this package builds nothing, reads no setting and connects
nowhere: each name is loaded on first use (PEP 562), and the Celery app is
built from the ``FAIRBEAT_*`` settings the first time ``fairbeat.app`` is read.
Every module of fairbeat imports through this package, never through a
generic top-level name, so a project's own ``tasks.py`` cannot shadow it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    from fairbeat.tasks import schedules
    from fairbeat.tasks.api import Enqueued, enqueue
    from fairbeat.tasks.bulk import enqueue_many
    from fairbeat.tasks.cancellation import CancelError, Cancelled, cancel, cancel_workspace
    from fairbeat.tasks.context import JobContext, job_context
    from fairbeat.tasks.errors import EnqueueError, WorkspaceBacklogFull
    from fairbeat.tasks.settings import Settings, SettingsError

    app: Celery

_LAZY = {
    "Enqueued": "fairbeat.tasks.api",
    "enqueue": "fairbeat.tasks.api",
    "enqueue_many": "fairbeat.tasks.bulk",
    "cancel": "fairbeat.tasks.cancellation",
    "cancel_workspace": "fairbeat.tasks.cancellation",
    "Cancelled": "fairbeat.tasks.cancellation",
    "CancelError": "fairbeat.tasks.cancellation",
    "JobContext": "fairbeat.tasks.context",
    "job_context": "fairbeat.tasks.context",
    "EnqueueError": "fairbeat.tasks.errors",
    "WorkspaceBacklogFull": "fairbeat.tasks.errors",
    "Settings": "fairbeat.tasks.settings",
    "SettingsError": "fairbeat.tasks.settings",
}

__all__ = [
    "CancelError",
    "Cancelled",
    "EnqueueError",
    "Enqueued",
    "JobContext",
    "Settings",
    "SettingsError",
    "WorkspaceBacklogFull",
    "app",
    "cancel",
    "cancel_workspace",
    "enqueue",
    "enqueue_many",
    "job_context",
    "schedules",
]


def __getattr__(name: str) -> Any:
    if name == "app":
        from fairbeat.tasks.application import app_for_command

        return app_for_command()
    if name == "schedules":
        return importlib.import_module("fairbeat.tasks.schedules")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fairbeat' has no attribute {name!r}")
