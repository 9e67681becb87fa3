"""The job context a handler reaches through ``job_context()``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.engine import Connection

from fairbeat.store import effects, transitions
from fairbeat.store.db import autocommit
from fairbeat.tasks.errors import LeaseLost
from fairbeat.tasks.runtime import Runtime

T = TypeVar("T")

_current: ContextVar[JobContext | None] = ContextVar("fairbeat_job", default=None)


@dataclass(frozen=True)
class JobContext:
    job_id: int
    workspace_id: str
    kind: str
    attempt: int
    max_attempts: int
    fence: int
    runtime: Runtime

    def heartbeat(self) -> bool:
        """Extend this run's lock; False when the job was taken away (stop working)."""
        with autocommit(self.runtime.engine) as conn:
            return transitions.heartbeat(conn, self.job_id, self.fence, self.runtime.now())

    def once(self, key: str, effect: Callable[[], T]) -> T:
        """Run a customer-visible ``effect`` once per (workspace, key), ever.

        A later attempt gets the recorded result back without running it again,
        and the suppression is counted in the duplicate-send signal. The result
        must be JSON-serialisable. A run that lost its lease never starts the
        effect. What cannot be closed here: a crash after ``effect()`` returns
        and before its record commits; pass ``key`` on to the external system
        as its idempotency key to close that window too.
        """
        if not key:
            raise ValueError("once() needs a non-empty key")
        with self.runtime.engine.begin() as conn:
            prior = effects.recorded(conn, self.workspace_id, key)
            if not effects.is_missing(prior):
                self._count_suppressed(conn, key, effects.EFFECT_SUPPRESSED)
                return prior  # type: ignore[no-any-return]
            if not transitions.heartbeat(conn, self.job_id, self.fence, self.runtime.now()):
                raise LeaseLost(f"job {self.job_id} fence {self.fence} lost its lease")
        value = effect()
        with self.runtime.engine.begin() as conn:
            fresh = effects.record(
                conn,
                workspace_id=self.workspace_id,
                effect_key=key,
                job_id=self.job_id,
                value=value,
                now=self.runtime.now(),
            )
            if not fresh:
                # Another attempt ran the same effect at the same time: a real duplicate.
                self._count_suppressed(conn, key, effects.EFFECT_RACED)
        return value

    def _count_suppressed(self, conn: Connection, key: str, reason: str) -> None:
        effects.record_duplicate(
            conn,
            workspace_id=self.workspace_id,
            effect_key=key,
            job_id=self.job_id,
            fence=self.fence,
            reason=reason,
            now=self.runtime.now(),
        )


def job_context() -> JobContext:
    """The running job's context; only inside a handler run by fairbeat."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("job_context() is only available inside a fairbeat job")
    return ctx


@contextmanager
def bound(ctx: JobContext) -> Iterator[JobContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
