"""Cancelling jobs on both backends: the fence taken, who and why kept, the late finish dropped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import redis
from celery import Celery
from sqlalchemy import Engine, select

from fairbeat.store import claiming, job_queries, operator, transitions
from fairbeat.store.db import autocommit
from fairbeat.store.models import job_effect_table
from fairbeat.tasks import cancellation
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.cancellation import CancelError, cancel, cancel_workspace, terminate_overdue
from fairbeat.tasks.run import DROPPED_CANCELLED, execute
from fairbeat.tasks.runtime import runtime_of
from tests.handlers import LEDGER_KEY


def row(engine: Engine, job_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        found = job_queries.get_job(conn, job_id)
    assert found is not None
    return found


def claim(app: Celery, engine: Engine, n: int = 1) -> list[claiming.Claim]:
    with engine.begin() as conn:
        return claiming.claim_oldest_due(conn, runtime_of(app).now(), n)


def started(app: Celery, engine: Engine, workspace: str, task_id: str) -> tuple[int, int]:
    """A job RUNNING under ``task_id``, as a worker leaves it: (job id, fence)."""
    job = enqueue(workspace, "test.noop", {}, app=app)
    (c,) = claim(app, engine)
    assert c.job_id == job.job_id
    with autocommit(engine) as conn:
        assert transitions.start(conn, c.job_id, c.fence, runtime_of(app).now(), "w:1", task_id)
    return c.job_id, c.fence


def test_a_cancel_takes_the_fence_of_pending_claimed_and_running_jobs(
    app: Celery, engine: Engine
) -> None:
    # Given a running job, a claimed one, a pending one and a finished one
    finished, finished_fence = started(app, engine, "other", "task-2")
    with autocommit(engine) as conn:
        assert transitions.succeed(conn, finished, finished_fence, runtime_of(app).now())
    running, fence = started(app, engine, "acme", "task-1")
    claimed_job = enqueue("acme", "test.noop", {}, app=app).job_id
    (c,) = claim(app, engine)
    pending = enqueue("acme", "test.noop", {}, app=app).job_id
    # When an operator cancels all four
    result = cancel(
        [running, claimed_job, pending, finished], why="runaway", who="ops@host", app=app
    )
    # Then the unfinished three are CANCELLED with the fence moved on, who and why kept
    assert result.cancelled == sorted([running, claimed_job, pending])
    assert result.not_cancelled == [finished]
    for job_id, old_fence in [(running, fence), (claimed_job, c.fence), (pending, 0)]:
        after = row(engine, job_id)
        assert (after["status"], after["fence"]) == ("CANCELLED", old_fence + 1)
        assert (after["cancelled_by"], after["last_error"]) == ("ops@host", "CANCELLED: runaway")
        assert after["locked_at"] is None and after["finished_at"] is not None
    # And only the running attempt's task id is kept, for its termination
    assert row(engine, running)["task_id"] == "task-1"
    assert row(engine, claimed_job)["task_id"] is None
    assert row(engine, finished)["status"] == "SUCCEEDED"
    # And the attempt can change nothing: no heartbeat, no finish, the fence is taken
    now = runtime_of(app).now()
    with autocommit(engine) as conn:
        assert not transitions.heartbeat(conn, running, fence, now)
        assert not transitions.succeed(conn, running, fence, now)
        assert not transitions.fail(conn, running, fence, now, "late")
        assert transitions.fence_taken(conn, running, fence)
        assert transitions.start(conn, claimed_job, c.fence, now, "w:2") is None
    assert row(engine, running)["status"] == "CANCELLED"
    # And the audit trail has it
    with engine.connect() as conn:
        (audit,) = operator.recent(conn)
    assert (audit["action"], audit["who"], audit["why"]) == ("jobs.cancel", "ops@host", "runaway")


def test_unknown_ids_or_no_why_refuse_the_whole_cancel(app: Celery, engine: Engine) -> None:
    job = enqueue("acme", "test.noop", {}, app=app).job_id
    with pytest.raises(CancelError, match=f"job_ids: no job with id {job + 7}, {job + 9};"):
        cancel([job, job + 9, job + 7], why="x", app=app)
    with pytest.raises(CancelError, match=r"^why: say why"):
        cancel(job, why="  ", app=app)
    assert row(engine, job)["status"] == "PENDING"


@pytest.mark.parametrize("fail", [False, True])
def test_a_handler_cancelled_while_it_runs_finishes_nothing(
    app: Celery, engine: Engine, redis_client: redis.Redis, fail: bool
) -> None:
    # Given a handler whose job is cancelled while it runs, which then returns (or fails)
    job = enqueue("acme", "test.cancelled_midway", {"tag": "mid", "fail": fail}, app=app)
    (c,) = claim(app, engine)
    # When its run ends, the late finish is dropped, not recorded as a retry or an error
    assert execute(app, c.job_id, c.fence, task_id="task-mid") == DROPPED_CANCELLED
    after = row(engine, job.job_id)
    assert (after["status"], after["last_error"]) == ("CANCELLED", "CANCELLED: midway")
    assert after["attempts"] == 1
    # And the handler saw it: cancelled True, heartbeat False
    assert redis_client.lrange(LEDGER_KEY, 0, -1) == [b"mid:cancelled=True:heartbeat=False"]
    # And its attempt ended, so there is nothing left to terminate
    assert after["task_id"] is None
    assert terminate_overdue(app, runtime_of(app).now() + timedelta(days=1)) == 0


def test_an_attempt_still_running_past_the_grace_is_terminated_once(
    app: Celery, engine: Engine
) -> None:
    running, _ = started(app, engine, "acme", "task-slow")
    cancel(running, why="stop", app=app)
    now = runtime_of(app).now()
    grace = runtime_of(app).settings.cancel_grace_s
    # Within the grace the handler may still stop by itself
    assert terminate_overdue(app, now + timedelta(seconds=grace / 2)) == 0
    # Past it, its task is revoked (terminate) once, and forgotten
    assert terminate_overdue(app, now + timedelta(seconds=grace + 1)) == 1
    assert row(engine, running)["task_id"] is None
    assert terminate_overdue(app, now + timedelta(seconds=grace + 2)) == 0
    assert row(engine, running)["status"] == "CANCELLED"


def test_a_workspace_backlog_is_cancelled_in_batches(
    app: Celery, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cancellation, "BATCH", 2)
    noisy = [enqueue("noisy", "test.noop", {}, app=app).job_id for _ in range(5)]
    innocent = enqueue("innocent", "test.noop", {}, app=app).job_id
    assert cancel_workspace("noisy", why="flood", statuses=["pending"], app=app) == noisy
    assert {row(engine, j)["status"] for j in noisy} == {"CANCELLED"}
    assert row(engine, innocent)["status"] == "PENDING"
    with pytest.raises(CancelError, match=r"^statuses: choose among"):
        cancel_workspace("noisy", why="flood", statuses=["succeeded"], app=app)
    with engine.connect() as conn:
        effects = conn.execute(select(job_effect_table.c.id)).all()
    assert effects == []
