"""Time limits in-process, on both backends: the lock stops being refreshed past
the limit, and a job killed at its limit ends its attempt naming the limit."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
import redis
from celery import Celery
from sqlalchemy import Engine

from fairbeat.store import transitions
from fairbeat.store.models import job_table
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.context import JobContext
from fairbeat.tasks.heartbeat import keep_alive
from fairbeat.tasks.limits import PastTimeLimit
from fairbeat.tasks.maintenance import recover_jobs
from fairbeat.tasks.run import DEAD_LETTERED, FINISH_REFUSED, RETRY_SCHEDULED, end_killed_attempt
from fairbeat.tasks.runtime import runtime_of
from tests.conftest import AppFactory
from tests.e2e.conftest import wait_for
from tests.store.test_execute import claim_one, row


def started(app: Celery, engine: Engine, max_attempts: int = 2) -> transitions.StartedJob:
    enqueue("acme", "test.noop", {}, max_attempts=max_attempts, app=app)
    claim = claim_one(app, engine)
    rt = runtime_of(app)
    with engine.begin() as conn:
        job = transitions.start(conn, claim.job_id, claim.fence, rt.now(), "test")
    assert job is not None
    return job


def context(app: Celery, job: transitions.StartedJob, deadline: float | None) -> JobContext:
    return JobContext(
        job_id=job.job_id,
        workspace_id=job.workspace_id,
        kind=job.kind,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        fence=job.fence,
        runtime=runtime_of(app),
        deadline=deadline,
    )


def test_the_heartbeat_stops_at_the_time_limit(make_app: AppFactory, engine: Engine) -> None:
    app = make_app(stale_after_s=1.5)  # beats every 0.5 s
    job = started(app, engine)
    first = row(engine, job.job_id)["locked_at"]
    # Within its limit the lock is refreshed
    with keep_alive(runtime_of(app), job.job_id, job.fence, time.monotonic() + 60):
        wait_for(lambda: row(engine, job.job_id)["locked_at"] != first, "a heartbeat", 10)
    refreshed = row(engine, job.job_id)["locked_at"]
    # Past it, never again, however long the handler goes on
    with keep_alive(runtime_of(app), job.job_id, job.fence, time.monotonic()):
        time.sleep(1.2)  # two beat periods: asserting an absence needs a wait
    assert row(engine, job.job_id)["locked_at"] == refreshed
    # Nor can the handler refresh it itself, or start an effect
    late = context(app, job, time.monotonic())
    assert late.heartbeat() is False
    with pytest.raises(PastTimeLimit):
        late.once("send:late", lambda: pytest.fail("a late attempt started its effect"))


def test_one_heartbeat_statement_refreshes_only_claims_still_held(
    app: Celery, engine: Engine
) -> None:
    kept, lost = started(app, engine), started(app, engine)
    later = runtime_of(app).now() + timedelta(seconds=30)
    claims = [(kept.job_id, kept.fence), (lost.job_id, lost.fence + 1), (10**9, 1)]
    with engine.begin() as conn:
        assert transitions.heartbeat_many(conn, claims, later) == {kept.job_id}
    assert row(engine, kept.job_id)["locked_at"] != row(engine, lost.job_id)["locked_at"]


@pytest.mark.parametrize(("max_attempts", "outcome"), [(2, RETRY_SCHEDULED), (1, DEAD_LETTERED)])
def test_a_job_killed_at_its_limit_ends_its_attempt_naming_it(
    app: Celery, engine: Engine, redis_client: redis.Redis, max_attempts: int, outcome: str
) -> None:
    job = started(app, engine, max_attempts)
    assert end_killed_attempt(app, job.job_id, job.fence, 2.0) == outcome
    ended = row(engine, job.job_id)
    assert ended["status"] == ("PENDING" if outcome == RETRY_SCHEDULED else "FAILED")
    assert str(ended["last_error"]).startswith("TIME_LIMIT: the job ran past its hard time limit")
    # A second report of the same kill, or one for an older fence, changes nothing
    assert end_killed_attempt(app, job.job_id, job.fence, 2.0) == FINISH_REFUSED
    assert end_killed_attempt(app, job.job_id, job.fence - 1, 2.0) == FINISH_REFUSED


def test_a_kill_after_the_job_was_taken_over_changes_nothing(app: Celery, engine: Engine) -> None:
    job = started(app, engine)
    rt = runtime_of(app)
    with engine.begin() as conn:
        assert transitions.retry_later(
            conn, job.job_id, job.fence, rt.now() - timedelta(seconds=1), "x"
        )
    again = claim_one(app, engine)
    assert end_killed_attempt(app, job.job_id, job.fence, 2.0) == FINISH_REFUSED
    assert row(engine, again.job_id)["status"] == "CLAIMED"


def silent_job(engine: Engine, kind: str, ran_s: float, now: datetime) -> int:
    """A RUNNING job whose last heartbeat came ``ran_s`` after its start, an hour ago."""
    started = now - timedelta(hours=1)
    with engine.begin() as conn:
        return int(
            conn.execute(
                job_table.insert()
                .values(
                    workspace_id="acme",
                    kind=kind,
                    payload={},
                    status="RUNNING",
                    run_at=started,
                    attempts=1,
                    max_attempts=2,
                    fence=1,
                    started_at=started,
                    locked_at=started + timedelta(seconds=ran_s),
                    locked_by="host:1",
                    created_at=started,
                )
                .returning(job_table.c.id)
            ).scalar_one()
        )


def test_recovery_names_the_time_limit_when_the_lock_stopped_at_it(
    app: Celery, engine: Engine
) -> None:
    now = runtime_of(app).now()
    # test.hang has a 2 s limit: its lock went quiet at it; test.noop's was lost early
    at_limit = silent_job(engine, "test.hang", 2.0, now)
    lost = silent_job(engine, "test.noop", 2.0, now)
    assert recover_jobs(runtime_of(app), now, app) == {"RECOVERED_TO_PENDING": 2}
    assert str(row(engine, at_limit)["last_error"]).startswith(
        "TIME_LIMIT: no heartbeat since the job reached its hard time limit of 2 s"
    )
    assert "worker lost" in str(row(engine, lost)["last_error"])
