"""The run task's logic in-process, on both backends: outcomes, fences, effects ledger."""

from __future__ import annotations

import redis
from celery import Celery
from sqlalchemy import Engine, select

from fairbeat.store import claiming, job_queries, jobs
from fairbeat.store.models import duplicate_event_table, job_effect_table
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.run import DEAD_LETTERED, RETRY_SCHEDULED, SUCCEEDED, execute
from fairbeat.tasks.runtime import runtime_of
from tests.handlers import LEDGER_KEY


def claim_one(app: Celery, engine: Engine) -> claiming.Claim:
    """Claim the single due job, as the dispatcher would."""
    with engine.begin() as conn:
        (claim,) = claiming.claim_oldest_due(conn, runtime_of(app).now(), 1)
    return claim


def row(engine: Engine, job_id: int) -> dict[str, object]:
    with engine.connect() as conn:
        found = job_queries.get_job(conn, job_id)
    assert found is not None
    return found


def reasons(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(duplicate_event_table.c.reason)).scalars())


def test_a_job_runs_and_succeeds(app: Celery, engine: Engine, redis_client: redis.Redis) -> None:
    job = enqueue("acme", "test.send", {"tag": "hello"}, app=app)
    claim = claim_one(app, engine)
    assert execute(app, claim.job_id, claim.fence) == SUCCEEDED
    assert row(engine, job.job_id)["status"] == "SUCCEEDED"
    assert redis_client.lrange(LEDGER_KEY, 0, -1) == [b"hello"]


def test_a_message_delivered_twice_executes_once(
    app: Celery, engine: Engine, redis_client: redis.Redis
) -> None:
    enqueue("acme", "test.send", {"tag": "twice"}, app=app)
    claim = claim_one(app, engine)
    assert execute(app, claim.job_id, claim.fence) == SUCCEEDED
    assert execute(app, claim.job_id, claim.fence) == "DROPPED_REPEATED_DELIVERY"
    assert redis_client.llen(LEDGER_KEY) == 1
    assert reasons(engine) == ["REPEATED_DELIVERY"]


def test_a_failure_retries_then_succeeds(app: Celery, engine: Engine) -> None:
    job = enqueue("acme", "test.flaky", {"tag": "f", "fail_times": 1}, app=app)
    first = claim_one(app, engine)
    assert execute(app, first.job_id, first.fence) == RETRY_SCHEDULED
    failed_once = row(engine, job.job_id)
    assert failed_once["status"] == "PENDING" and "flaky failure" in str(failed_once["last_error"])
    second = _claim_when_due(app, engine)
    assert second.fence == first.fence + 1
    assert execute(app, second.job_id, second.fence) == SUCCEEDED
    assert row(engine, job.job_id)["attempts"] == 2


def _claim_when_due(app: Celery, engine: Engine) -> claiming.Claim:
    """Claim the one retrying job at its backoff time, stepping the clock, not sleeping."""
    with engine.begin() as conn:
        run_at = conn.execute(
            select(jobs.job.c.run_at).where(jobs.job.c.status == "PENDING")
        ).scalar_one()
        (claim,) = claiming.claim_oldest_due(conn, run_at, 1)
    return claim


def test_a_job_is_dead_lettered_after_max_attempts(app: Celery, engine: Engine) -> None:
    job = enqueue("acme", "test.always_fails", {"message": "smtp down"}, max_attempts=2, app=app)
    first = claim_one(app, engine)
    assert execute(app, first.job_id, first.fence) == RETRY_SCHEDULED
    second = _claim_when_due(app, engine)
    assert execute(app, second.job_id, second.fence) == DEAD_LETTERED
    dead = row(engine, job.job_id)
    assert dead["status"] == "FAILED" and dead["attempts"] == 2
    assert "smtp down" in str(dead["last_error"])


def test_once_returns_the_recorded_effect_on_a_later_attempt(
    app: Celery, engine: Engine, redis_client: redis.Redis
) -> None:
    # Given a job whose send was recorded, but whose finish was lost (recovered)
    enqueue("acme", "test.send", {"tag": "once"}, app=app)
    first = claim_one(app, engine)
    assert execute(app, first.job_id, first.fence) == SUCCEEDED
    with engine.begin() as conn:
        conn.execute(
            jobs.job.update().values(status="PENDING").where(jobs.job.c.id == first.job_id)
        )
    # When it runs again
    again = claim_one(app, engine)
    assert execute(app, again.job_id, again.fence) == SUCCEEDED
    # Then the customer got one message, and the suppressed repeat is counted
    assert redis_client.llen(LEDGER_KEY) == 1
    assert reasons(engine) == ["EFFECT_SUPPRESSED"]
    with engine.connect() as conn:
        effects = conn.execute(select(job_effect_table.c.effect_key)).scalars().all()
    assert effects == ["send:once"]


def test_a_payload_that_no_longer_fits_fails_at_once(app: Celery, engine: Engine) -> None:
    # A row written by plain SQL, bypassing enqueue()'s checks.
    with engine.begin() as conn:
        conn.execute(
            jobs.job.insert().values(
                workspace_id="acme", kind="test.send", payload={"wrong": 1}, max_attempts=5
            )
        )
    claim = claim_one(app, engine)
    assert execute(app, claim.job_id, claim.fence) == DEAD_LETTERED
    dead = row(engine, claim.job_id)
    assert dead["attempts"] == 1 and "payload does not fit" in str(dead["last_error"])


def test_an_unknown_kind_inserted_by_sql_is_dead_lettered(app: Celery, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(jobs.job.insert().values(workspace_id="acme", kind="gone.task"))
    claim = claim_one(app, engine)
    assert execute(app, claim.job_id, claim.fence) == DEAD_LETTERED
    assert "no handler task named 'gone.task'" in str(row(engine, claim.job_id)["last_error"])
