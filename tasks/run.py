"""``fairbeat.run``: execute one claimed job, fenced on (job id, fence)."""

from __future__ import annotations

import inspect
import logging
import os
import socket
import traceback
from datetime import timedelta
from typing import Any

from celery import Celery, Task, shared_task
from sqlalchemy.exc import OperationalError

from fairbeat.scheduling.retry import decide_retry
from fairbeat.store import transitions
from fairbeat.store.db import autocommit, retry_on_disconnect
from fairbeat.tasks.context import JobContext, bound
from fairbeat.tasks.errors import LeaseLost
from fairbeat.tasks.heartbeat import keep_alive
from fairbeat.tasks.kick import kick
from fairbeat.tasks.runtime import Runtime, runtime_of

log = logging.getLogger("fairbeat.run")

SUCCEEDED = "SUCCEEDED"
RETRY_SCHEDULED = "RETRY_SCHEDULED"
DEAD_LETTERED = "DEAD_LETTERED"
FINISH_REFUSED = "FINISH_REFUSED"  # the job was recovered while this run worked

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


def execute(app: Celery, job_id: int, fence: int) -> str:
    """Start, run and finish one job; returns what happened (an outcome code).

    A finished job frees a slot of its workspace's quota: it kicks the
    dispatcher so the next job need not wait for beat.
    """
    outcome = _execute(app, job_id, fence)
    if not outcome.startswith("DROPPED_"):
        kick(app, "job finished")
    return outcome


def _execute(app: Celery, job_id: int, fence: int) -> str:
    rt = runtime_of(app)
    now = rt.now()
    with autocommit(rt.engine) as conn:
        started = transitions.start(conn, job_id, fence, now, _worker_name())
        dropped = None if started else transitions.record_dropped_delivery(conn, job_id, fence, now)
    if started is None:
        log.warning(
            "delivery dropped",
            extra={"action": "run.dropped", "job_id": job_id, "fence": fence, "reason": dropped},
        )
        return f"DROPPED_{dropped}"
    ctx = JobContext(
        job_id=job_id,
        workspace_id=started.workspace_id,
        kind=started.kind,
        attempt=started.attempt,
        max_attempts=started.max_attempts,
        fence=fence,
        runtime=rt,
    )
    try:
        handler = resolve_handler(app, started.kind, started.payload)
        with bound(ctx), keep_alive(rt, job_id, fence):
            handler(**started.payload)
    except Exception as exc:
        return _after_failure(rt, ctx, exc)
    finished = rt.now()
    done = retry_on_disconnect(rt.engine, lambda c: transitions.succeed(c, job_id, fence, finished))
    return _logged(ctx, SUCCEEDED if done else FINISH_REFUSED)


def _after_failure(rt: Runtime, ctx: JobContext, exc: Exception) -> str:
    permanent = isinstance(exc, PermanentJobError | LeaseLost)
    decision = decide_retry(
        job_id=ctx.job_id,
        attempt=ctx.max_attempts if permanent else ctx.attempt,
        max_attempts=ctx.max_attempts,
        policy=rt.retry_policy,
    )
    error = _error_text(exc)
    now = rt.now()
    if decision.retry:
        run_at = now + timedelta(seconds=decision.delay_s)
        done = retry_on_disconnect(
            rt.engine, lambda c: transitions.retry_later(c, ctx.job_id, ctx.fence, run_at, error)
        )
        outcome = RETRY_SCHEDULED
    else:
        done = retry_on_disconnect(
            rt.engine, lambda c: transitions.fail(c, ctx.job_id, ctx.fence, now, error)
        )
        outcome = DEAD_LETTERED
    return _logged(ctx, outcome if done else FINISH_REFUSED, error=str(exc))


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


@shared_task(name="fairbeat.run", bind=True, max_retries=START_RETRIES)
def run(self: Task, job_id: int, fence: int) -> str:  # type: ignore[type-arg]
    try:
        return execute(self.app, job_id, fence)
    except OperationalError as exc:
        # Only a failure before the job started gets here with nothing done;
        # a retry of this message is dropped by the fence if it had started.
        raise self.retry(exc=exc, countdown=min(60, 2**self.request.retries)) from exc
