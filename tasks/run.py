"""``fairbeat.run``: execute one claimed job, fenced on (job id, fence)."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import socket
import time
import traceback
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from celery import Celery, Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from redis import RedisError
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.scheduling.retry import decide_retry
from fairbeat.store import families, job_queries, transitions
from fairbeat.store.db import autocommit, retry_on_disconnect
from fairbeat.tasks import limits
from fairbeat.tasks.context import JobContext, bound
from fairbeat.tasks.errors import LeaseLost
from fairbeat.tasks.heartbeat import keep_alive
from fairbeat.tasks.kick import kick
from fairbeat.tasks.limits import PastTimeLimit
from fairbeat.tasks.runtime import Runtime, runtime_of

log = logging.getLogger("fairbeat.run")

SUCCEEDED = "SUCCEEDED"
RETRY_SCHEDULED = "RETRY_SCHEDULED"
DEAD_LETTERED = "DEAD_LETTERED"
FINISH_REFUSED = "FINISH_REFUSED"  # the job was recovered while this run worked
# The job was cancelled while this run worked: its late finish is dropped.
DROPPED_CANCELLED = "DROPPED_CANCELLED"

# last_error keeps the end of the traceback, where the cause is.
ERROR_TEXT_MAX = 4000
# A database that is down at start: try the message again this often, then
# leave the claim to recovery.
START_RETRIES = 8


# Celery's and fairbeat's own tasks are never job kinds.
INTERNAL_PREFIXES = ("fairbeat.", "celery.")


class PermanentJobError(Exception):
    """This job can never succeed as it is (no handler, payload does not fit it)."""


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _error_text(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc))
    return text[-ERROR_TEXT_MAX:]


def resolve_handler(app: Celery, kind: str, payload: dict[str, Any]) -> Task:  # type: ignore[type-arg]
    task = app.tasks.get(kind)
    if task is None or kind.startswith(INTERNAL_PREFIXES):
        raise PermanentJobError(f"no handler task named {kind!r} on this worker")
    try:
        inspect.signature(task.run).bind(**payload)
    except TypeError as exc:
        raise PermanentJobError(f"payload does not fit {kind}: {exc}") from None
    return task


def execute(
    app: Celery,
    job_id: int,
    fence: int,
    sent: limits.TimeLimits | None = None,
    task_id: str | None = None,
) -> str:
    """Start, run and finish one job; returns what happened (an outcome code).

    ``task_id`` is this run's Celery task id, recorded on the job so that a
    cancel can terminate the attempt after its grace period.

    ``sent`` are the time limits Celery enforces on this message (None: the
    job kind's own, as this worker knows them). A finished job frees
    a slot of its workspace's quota: it kicks the dispatcher so the next job
    need not wait for beat.
    """
    outcome = _execute(app, job_id, fence, sent, task_id)
    if not outcome.startswith("DROPPED_"):
        kick(app, "job finished")
    return outcome


def _execute(
    app: Celery, job_id: int, fence: int, sent: limits.TimeLimits | None, task_id: str | None
) -> str:
    rt = runtime_of(app)
    now = rt.now()
    with autocommit(rt.engine) as conn:
        started = transitions.start(conn, job_id, fence, now, _worker_name(), task_id)
        dropped = None if started else transitions.record_dropped_delivery(conn, job_id, fence, now)
    if started is None:
        log.warning(
            "delivery dropped",
            extra={"action": "run.dropped", "job_id": job_id, "fence": fence, "reason": dropped},
        )
        return f"DROPPED_{dropped}"
    limit = sent or limits.limits_for(app, started.kind)
    ctx = JobContext(
        job_id=job_id,
        workspace_id=started.workspace_id,
        kind=started.kind,
        attempt=started.attempt,
        max_attempts=started.max_attempts,
        fence=fence,
        runtime=rt,
        deadline=time.monotonic() + limit.hard_s,
        app=app,
    )
    began = time.monotonic()
    try:
        handler = resolve_handler(app, started.kind, started.payload)
        with bound(ctx), keep_alive(rt, job_id, fence, ctx.deadline):
            try:
                handler(**started.payload)
            finally:
                _record_run_time(rt, ctx, time.monotonic() - began)
    except SoftTimeLimitExceeded as exc:
        return _after_failure(rt, ctx, exc, task_id, limits.limit_error(limit.soft_s, soft=True))
    except PastTimeLimit as exc:
        return _after_failure(rt, ctx, exc, task_id, limits.limit_error(limit.hard_s, soft=False))
    except Exception as exc:
        return _after_failure(rt, ctx, exc, task_id)
    finished = rt.now()
    if ctx.children:
        done = retry_on_disconnect(
            rt.engine, lambda c: _succeed(c, ctx, finished), transaction=True
        )
    else:
        done = retry_on_disconnect(
            rt.engine, lambda c: families.succeed(c, job_id, fence, finished)
        )
    if not done and _cancelled(rt, ctx, task_id):
        return _logged(ctx, DROPPED_CANCELLED)
    return _logged(ctx, SUCCEEDED if done else FINISH_REFUSED)


def _record_run_time(rt: Runtime, ctx: JobContext, seconds: float) -> None:
    """Feed fairness by worker time: the time this attempt held its slot."""
    settings = rt.settings
    if settings.fairness != "time":
        return
    # An estimate that missed one sample is still an estimate: the next finish updates it.
    with contextlib.suppress(RedisError):
        rt.live.record_run_time(ctx.workspace_id, ctx.kind, seconds, settings.fairness_ewma_alpha)


def _succeed(conn: Connection, ctx: JobContext, now: datetime) -> bool:
    """SUCCEEDED, fenced, releasing the jobs waiting on this one; in the same
    transaction, create the children the handler enqueued."""
    if not families.succeed(conn, ctx.job_id, ctx.fence, now):
        return False
    settings = ctx.runtime.settings
    from fairbeat.tasks import api  # api imports this module

    for child in ctx.children:
        new = replace(child.new, created_at=now)
        api.insert_child(conn, new, settings, child.after)
    return True


def _fail(conn: Connection, ctx: JobContext, now: datetime, error: str) -> bool:
    """FAILED, fenced; in the same transaction, end the jobs waiting on this one."""
    if not transitions.fail(conn, ctx.job_id, ctx.fence, now, error):
        return False
    policy = ctx.runtime.settings.dependency_failure
    families.settle(conn, ctx.job_id, JobStatus.FAILED, policy, now)
    return True


def _after_failure(
    rt: Runtime, ctx: JobContext, exc: Exception, task_id: str | None, head: str = ""
) -> str:
    permanent = isinstance(exc, PermanentJobError | LeaseLost)
    error = _error_text(exc)
    if head:  # the reason first; the traceback's end after it, within the bound
        error = head + "\n" + error[len(head) + 1 - ERROR_TEXT_MAX :]
    outcome = end_attempt(rt, ctx, error, permanent)
    if outcome == FINISH_REFUSED and _cancelled(rt, ctx, task_id):
        # Not an error of the job: the handler stopped (or failed) after its cancel.
        return _logged(ctx, DROPPED_CANCELLED, error=head or str(exc))
    return _logged(ctx, outcome, error=head or str(exc))


def _cancelled(rt: Runtime, ctx: JobContext, task_id: str | None) -> bool:
    return retry_on_disconnect(
        rt.engine, lambda c: transitions.was_cancelled(c, ctx.job_id, task_id)
    )


def end_attempt(rt: Runtime, ctx: JobContext, error: str, permanent: bool = False) -> str:
    """Retry the attempt later, or dead-letter it on its last; fenced on the attempt."""
    decision = decide_retry(
        job_id=ctx.job_id,
        attempt=ctx.max_attempts if permanent else ctx.attempt,
        max_attempts=ctx.max_attempts,
        policy=rt.retry_policy,
    )
    now = rt.now()
    if decision.retry:
        run_at = now + timedelta(seconds=decision.delay_s)
        done = retry_on_disconnect(
            rt.engine, lambda c: transitions.retry_later(c, ctx.job_id, ctx.fence, run_at, error)
        )
        outcome = RETRY_SCHEDULED
    else:
        done = retry_on_disconnect(rt.engine, lambda c: _fail(c, ctx, now, error), transaction=True)
        outcome = DEAD_LETTERED
    return outcome if done else FINISH_REFUSED


def _logged(ctx: JobContext, outcome: str, **extra: Any) -> str:
    log.info(
        "job %s %s",
        ctx.job_id,
        outcome,
        extra={
            "action": "run.finished",
            "job_id": ctx.job_id,
            "workspace_id": ctx.workspace_id,
            "kind": ctx.kind,
            "attempt": ctx.attempt,
            "outcome": outcome,
            **extra,
        },
    )
    return outcome


def end_killed_attempt(
    app: Celery, job_id: int, fence: int, limit_s: float, soft: bool = False
) -> str:
    """End the attempt of a job stopped by its time limit outside its handler.

    Celery killed it at the hard limit (this runs in the worker's main
    process, which saw the kill), or the soft limit fired after the handler,
    while the run recorded its end. The job is moved on at once (retried, or
    FAILED on its last attempt) instead of waiting a stale cutoff for
    recovery, with ``last_error`` naming the time limit; fenced, so an
    attempt that already ended, or a job taken over, is left alone.
    """
    rt = runtime_of(app)
    with rt.engine.connect() as conn:
        row = job_queries.get_job(conn, job_id)
    if row is None or row["fence"] != fence or row["status"] != "RUNNING":
        return FINISH_REFUSED
    ctx = JobContext(
        job_id=job_id,
        workspace_id=row["workspace_id"],
        kind=row["kind"],
        attempt=row["attempts"],
        max_attempts=row["max_attempts"],
        fence=fence,
        runtime=rt,
    )
    outcome = end_attempt(rt, ctx, limits.limit_error(limit_s, soft=soft))
    if outcome != FINISH_REFUSED:
        kick(app, "job stopped at its time limit")
    return _logged(ctx, outcome, error=limits.TIME_LIMIT)


class RunTask(Task):  # type: ignore[type-arg]  # the stubs' Task is generic, Celery's is not
    """``fairbeat.run``'s task class: a hard time-limit kill ends the job's attempt."""

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        # Celery calls this in the worker's main process when it killed the
        # child at the hard limit; in the child it is an ordinary task failure.
        if not isinstance(exc, TimeLimitExceeded) or len(args or ()) < 2:
            return
        try:
            end_killed_attempt(self.app, int(args[0]), int(args[1]), _limit_of(exc))
        except Exception:  # recovery takes the job back one stale cutoff later
            log.exception(
                "could not end the attempt of a killed job",
                extra={"action": "run.kill_not_recorded", "job_id": args[0]},
            )


def _limit_of(exc: TimeLimitExceeded) -> float:
    value = exc.args[0] if exc.args else None
    return float(value) if isinstance(value, int | float) else 0.0


@shared_task(name="fairbeat.run", bind=True, base=RunTask, max_retries=START_RETRIES)
def run(self: Task, job_id: int, fence: int) -> str:  # type: ignore[type-arg]
    sent = limits.from_message(self.request.timelimit)
    try:
        return execute(self.app, job_id, fence, sent, self.request.id)
    except SoftTimeLimitExceeded:
        # It fired outside the handler (while the run recorded the attempt's end).
        soft_s = (sent or limits.resolve(runtime_of(self.app).settings)).soft_s
        return end_killed_attempt(self.app, job_id, fence, soft_s, soft=True)
    except OperationalError as exc:
        # Only a failure before the job started gets here with nothing done;
        # a retry of this message is dropped by the fence if it had started.
        raise self.retry(exc=exc, countdown=min(60, 2**self.request.retries)) from exc
