"""fairbeat's Celery edge: the app, and the dispatch, run, gate and maintenance tasks.

Installed as ``fairbeat.tasks``; import it by that name. From a checkout,
``celery -A tasks worker`` also works (the design card's entry point): the app
is built from the ``FAIRBEAT_*`` settings on first use, never at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    app: Celery


def __getattr__(name: str) -> Any:
    if name == "app":
        from fairbeat.tasks.application import app_for_command

        return app_for_command()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
