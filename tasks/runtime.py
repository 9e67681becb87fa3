"""The composition root's state: settings, and the engine built from them per process."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from sqlalchemy import Engine

from scheduling.retry import RetryPolicy
from store.db import make_engine
from tasks.settings import Settings

if TYPE_CHECKING:
    from celery import Celery


class Runtime:
    """Holds what the tasks need; opens connections lazily, once per process.

    Celery's prefork pool forks after import, and a pooled connection must
    never cross a fork, so the engine is keyed by the process id.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Engine | None = None
        self._engine_pid = 0

    @property
    def engine(self) -> Engine:
        if self._engine is None or self._engine_pid != os.getpid():
            self._engine = make_engine(self.settings.database_url)
            self._engine_pid = os.getpid()
        return self._engine

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(base_s=self.settings.retry_base_s, cap_s=self.settings.retry_cap_s)

    @staticmethod
    def now() -> datetime:
        """The clock, read at the edge, in UTC."""
        return datetime.now(UTC)


def runtime_of(app: Celery) -> Runtime:
    runtime = getattr(app, "fairbeat_runtime", None)
    if runtime is None:
        raise RuntimeError("this Celery app was not built by tasks.app.create_app")
    return cast(Runtime, runtime)
