"""The job context a handler reaches through ``job_context()``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.engine import Connection

from fairbeat.store import effects, transitions
from fairbeat.store.db import autocommit
from fairbeat.store.new_jobs import NewJob
from fairbeat.tasks.errors import LeaseLost
from fairbeat.tasks.heartbeat import within_limit
from fairbeat.tasks.limits import PastTimeLimit
from fairbeat.tasks.runtime import Runtime

if TYPE_CHECKING:
    from fairbeat.tasks.api import Enqueued

T = TypeVar("T")

log = logging.getLogger("fairbeat.run")

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
    deadline: float | None = None  # monotonic: the end of this attempt's hard time limit
    app: Any = None  # the Celery app running the job; children are checked against it
    # Children to create with this attempt's success (enqueue without immediately).
    children: list[Child] = field(default_factory=list)

    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        dedupe_key: str | None = None,
        run_at: datetime | None = None,
        priority: int = 0,
        priority_class: str = "default",
        max_attempts: int | None = None,
        after: list[int] | None = None,
        immediately: bool = False,
    ) -> Enqueued | None:
        """Enqueue a child job: in this job's workspace, ``parent_id`` this job,
        checked as ``enqueue`` checks (the same errors, now) and under the
        same pending limit, quota and fairness.

        By default the child is created only if this attempt succeeds, in the
        same transaction as its SUCCEEDED, so a failed or retried attempt
        creates none; returns None (no id exists yet). ``immediately=True``
        creates it now and returns it: then a retried attempt enqueues it
        again unless ``dedupe_key`` names it.
        """
        from fairbeat.tasks import api  # api imports the run module, which imports this one
        from fairbeat.tasks.families import check_after, check_room

        settings = self.runtime.settings
        attempts = settings.max_attempts if max_attempts is None else max_attempts
        new = api.prepare(
            self.app,
            self.workspace_id,
            kind,
            payload,
            dedupe_key,
            run_at,
            priority,
            attempts,
            parent_id=self.job_id,
            priority_class=priority_class,
        )
        ids = check_after(self.app, self.workspace_id, after)
        if immediately:
            return api.insert(self.app, new, ids)
        check_room(self.app, self.workspace_id, buffered=len(self.children))
        self.children.append(Child(new, ids))
        return None

    def heartbeat(self) -> bool:
        """Extend this run's lock; False when the job was taken away, or is past
        its time limit (stop working either way)."""
        if not within_limit(self.deadline):
            return False
        with autocommit(self.runtime.engine) as conn:
            return transitions.heartbeat(conn, self.job_id, self.fence, self.runtime.now())

    @property
    def cancelled(self) -> bool:
        """True once this job was cancelled (its fence taken, or it was claimed again
        since): stop working; nothing this attempt does after it is recorded. One
        primary-key read per call."""
        with self.runtime.engine.connect() as conn:
            return transitions.fence_taken(conn, self.job_id, self.fence)

    def once(self, key: str, effect: Callable[[], T]) -> T:
        """Run a customer-visible ``effect`` once per (workspace, key), ever.

        A later attempt gets the recorded result back without running it again,
        counted as a suppressed effect (never as a duplicate send). A result
        JSON cannot hold is left out of the record, the reason kept, and later
        attempts get None; they still never run ``effect`` again. A key the
        ledger cannot hold is refused before ``effect`` runs. Right before
        ``effect`` starts, the run checks it still holds its job (its fence)
        and is within its time limit; a run that lost either never starts it.
        What cannot be closed here: a crash, or a freeze past the stale cutoff,
        while ``effect()`` runs or before its record commits; pass ``key`` on
        to the external system as its idempotency key to close that window too.
        """
        effects.check_key(key)
        with self.runtime.engine.begin() as conn:
            prior = effects.recorded(conn, self.workspace_id, key)
            if not effects.is_missing(prior):
                self._count(conn, key, effects.EFFECT_SUPPRESSED)
                return prior  # type: ignore[no-any-return]
            self._check_still_holding(conn)
        value = effect()
        reason = effects.unstorable(value)
        if reason is not None:
            log.warning(
                "once(%r): result not stored (%s); the effect is recorded as done",
                key,
                reason,
                extra={"action": "run.effect_unstored", "job_id": self.job_id},
            )
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
                self._count(conn, key, effects.EFFECT_RACED)
        return value

    def _check_still_holding(self, conn: Connection) -> None:
        if not within_limit(self.deadline):
            raise PastTimeLimit(f"job {self.job_id} is past its time limit; effect not started")
        if not transitions.heartbeat(conn, self.job_id, self.fence, self.runtime.now()):
            raise LeaseLost(f"job {self.job_id} fence {self.fence} lost its lease")

    def _count(self, conn: Connection, key: str, reason: str) -> None:
        effects.record_duplicate(
            conn,
            workspace_id=self.workspace_id,
            effect_key=key,
            job_id=self.job_id,
            fence=self.fence,
            reason=reason,
            now=self.runtime.now(),
        )


@dataclass(frozen=True)
class Child:
    """A child job checked at ``enqueue`` and created with the attempt's success."""

    new: NewJob
    after: tuple[int, ...]


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
