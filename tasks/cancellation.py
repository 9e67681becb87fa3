"""``cancel()``: stop jobs, running ones too, recording who cancelled them and why.

A cancel takes the job's fence (fence + 1 and CANCELLED in one conditional
update), so nothing the attempt does afterwards lands: its heartbeat returns
False, ``job_context().cancelled`` turns True, its effects are refused and
its finish is dropped. The cancel frees the job's quota slot at once and
kicks the dispatcher. A handler that does not stop by itself within
``FAIRBEAT_CANCEL_GRACE_S`` is terminated by maintenance through Celery's
remote control (SIGTERM to its worker child, which the pool replaces); the
message is acked as revoked, and any redelivery is dropped by the fence.
"""

from __future__ import annotations

import getpass
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import Celery
from sqlalchemy.engine import Connection

from fairbeat.scheduling.dependencies import DependencyPolicy
from fairbeat.store import job_queries, operator
from fairbeat.store.db import autocommit
from fairbeat.store.models import OPERATOR_MAX
from fairbeat.tasks.kick import kick
from fairbeat.tasks.runtime import Runtime, runtime_of

log = logging.getLogger("fairbeat.cancel")

CANCELLABLE = job_queries.CANCELLABLE
# One transaction per this many jobs: a workspace's whole backlog never holds
# a long lock on the job table.
BATCH = 500
# Attempts terminated per maintenance run, in one remote-control broadcast.
TERMINATE_BATCH = 100
TERMINATE_SIGNAL = "SIGTERM"


class CancelError(ValueError):
    """A cancel was refused; ``field`` names the argument at fault. Nothing was cancelled."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Cancelled:
    cancelled: list[int]
    not_cancelled: list[int]  # already finished (SUCCEEDED, FAILED or CANCELLED)


def operator_name() -> str:
    """Who is cancelling, as the operator controls audit it: user@host."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def _app(app: Celery | None) -> Celery:
    if app is not None:
        return app
    from fairbeat.tasks.application import default_app

    return default_app()


def _check(why: object, who: object) -> tuple[str, str]:
    if not isinstance(why, str) or not why.strip():
        raise CancelError("why", "say why the jobs are cancelled (kept with each job)")
    if who is None:
        who = operator_name()
    if not isinstance(who, str) or not who.strip() or len(who) > OPERATOR_MAX:
        raise CancelError("who", f"must be a non-empty string of at most {OPERATOR_MAX} characters")
    return why.strip(), who


def _job_ids(job_ids: int | Iterable[int]) -> list[int]:
    ids = [job_ids] if isinstance(job_ids, int) else list(job_ids)
    if not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise CancelError("job_ids", "name one job id or more, as integers")
    return sorted(set(ids))


def cancel(
    job_ids: int | Iterable[int],
    *,
    why: str,
    who: str | None = None,
    app: Celery | None = None,
) -> Cancelled:
    """Cancel jobs that have not finished: WAITING, PENDING, CLAIMED and RUNNING ones.

    ``who`` defaults to user@host. An id that names no job refuses the whole
    call (``CancelError`` naming the ids) before anything is written.
    """
    why, who = _check(why, who)
    ids = _job_ids(job_ids)
    app = _app(app)
    rt = runtime_of(app)
    now = rt.now()
    with rt.engine.begin() as conn:
        unknown = sorted(set(ids) - job_queries.existing(conn, ids))
        if unknown:
            shown = ", ".join(map(str, unknown[:20])) + (", ..." if len(unknown) > 20 else "")
            raise CancelError("job_ids", f"no job with id {shown}; nothing was cancelled")
        done = job_queries.cancel(conn, ids, now, who=who, why=why, policy=_policy(rt))
        _audit(conn, now, who, why, done, target=None)
    _freed(app, done)
    return Cancelled(cancelled=done, not_cancelled=sorted(set(ids) - set(done)))


def cancel_workspace(
    workspace_id: str,
    *,
    why: str,
    statuses: Iterable[str] = CANCELLABLE,
    who: str | None = None,
    app: Celery | None = None,
) -> list[int]:
    """Cancel a workspace's whole backlog (its jobs in ``statuses``) in bounded batches.

    Jobs enqueued while it works are left alone; returns the cancelled ids.
    """
    why, who = _check(why, who)
    wanted = sorted({str(s).upper() for s in statuses})
    if not wanted or not set(wanted) <= set(CANCELLABLE):
        raise CancelError("statuses", f"choose among {', '.join(CANCELLABLE)}")
    app = _app(app)
    rt = runtime_of(app)
    with rt.engine.connect() as conn:
        through = job_queries.newest_id(conn)
    done: list[int] = []
    while True:
        now = rt.now()
        with rt.engine.begin() as conn:
            batch = job_queries.workspace_batch(conn, workspace_id, wanted, through, BATCH)
            if not batch:
                break
            done += job_queries.cancel(conn, batch, now, who=who, why=why, policy=_policy(rt))
    with rt.engine.begin() as conn:
        _audit(conn, rt.now(), who, why, done, target=workspace_id)
    _freed(app, done)
    return done


def _policy(rt: Runtime) -> DependencyPolicy:
    return rt.settings.dependency_failure


def _audit(
    conn: Connection, at: datetime, who: str, why: str, done: list[int], target: str | None
) -> None:
    if done:
        value = {"count": len(done), "job_ids": done[:100]}
        operator.record(
            conn,
            at=at,
            who=who,
            action="jobs.cancel",
            why=why,
            target=target,
            value=value,
        )


def _freed(app: Celery, done: list[int]) -> None:
    if done:
        log.info(
            "cancelled %d job(s)",
            len(done),
            extra={"action": "jobs.cancelled", "job_ids": done[:50]},
        )
        kick(app, "jobs cancelled")  # their quota slots are free now


def terminate_overdue(app: Celery, now: datetime) -> int:
    """Terminate the attempts of jobs cancelled over the grace period ago that
    have not ended; maintenance calls it. Returns how many were signalled."""
    rt = runtime_of(app)
    before = now - timedelta(seconds=rt.settings.cancel_grace_s)
    with rt.engine.connect() as conn:
        overdue = job_queries.cancelled_still_running(conn, before, TERMINATE_BATCH)
    if not overdue:
        return 0
    try:
        # A task id no worker runs any more costs nothing: a no-op on every worker.
        app.control.revoke([t for _, t in overdue], terminate=True, signal=TERMINATE_SIGNAL)
    except Exception as exc:  # the broker is down: the next maintenance run tries again
        log.warning("revoke failed: %s", exc, extra={"action": "cancel.revoke_failed"})
        return 0
    with autocommit(rt.engine) as conn:
        job_queries.forget_tasks(conn, overdue)
    log.warning(
        "terminated %d cancelled attempt(s) past their grace",
        len(overdue),
        extra={"action": "cancel.terminated", "job_ids": [j for j, _ in overdue][:50]},
    )
    return len(overdue)
