"""The composition root's state: settings, and the engine built from them per process."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from sqlalchemy import Engine

from fairbeat.scheduling.retry import RetryPolicy
from fairbeat.store.db import make_engine
from fairbeat.tasks.settings import Settings

# Redis calls on the hot path fail fast: a dead Redis means safe defaults, not a hang.
REDIS_TIMEOUT_S = 2.0

if TYPE_CHECKING:
    from celery import Celery

    from fairbeat.store.control import ControlState
    from fairbeat.store.live import LiveState
    from fairbeat.tasks.pending_room import PendingRoom


class Runtime:
    """Holds what the tasks need; opens connections lazily, once per process.

    Celery's prefork pool forks after import, and a pooled connection must
    never cross a fork, so the engine is keyed by the process id.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Engine | None = None
        self._live: LiveState | None = None
        self._control: ControlState | None = None
        self._pending_room: PendingRoom | None = None
        self._pid = 0

    def _after_fork(self) -> None:
        if self._pid != os.getpid():
            self._engine = None
            self._live = None
            self._control = None
            self._pending_room = None
            self._pid = os.getpid()

    @property
    def engine(self) -> Engine:
        self._after_fork()
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url)
        return self._engine

    @property
    def pending_room(self) -> PendingRoom:
        """This process's memory of each workspace's pending limit."""
        self._after_fork()
        if self._pending_room is None:
            from fairbeat.tasks.pending_room import PendingRoom

            self._pending_room = PendingRoom()
        return self._pending_room

    @property
    def live(self) -> LiveState:
        """fairbeat's Redis state. Connects on first use; calls raise redis.RedisError."""
        self._after_fork()
        if self._live is None:
            # Imported here: a command that reads only SQL never loads redis-py.
            import redis

            from fairbeat.store.keys import Keys
            from fairbeat.store.live import LiveState

            client = redis.Redis.from_url(
                self.settings.redis_url,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
            )
            self._live = LiveState(client, Keys(self.settings.redis_prefix))
        return self._live

    @property
    def control(self) -> ControlState:
        """Control-loop state in Redis (ladder, overrides); calls raise redis.RedisError."""
        if self._control is None or self._pid != os.getpid():
            from fairbeat.store.control import ControlState

            live = self.live
            self._control = ControlState(live.client, live.keys)
        return self._control

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
        raise RuntimeError("this Celery app was not built by fairbeat.tasks.application.create_app")
    return cast(Runtime, runtime)
