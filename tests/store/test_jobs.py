"""The job queries on both backends: dedupe, claims, fenced start and finish."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import Engine, func, select

from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store import claiming, job_queries, new_jobs, transitions
from fairbeat.store.models import duplicate_event_table, job_table

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def new_job(
    workspace: str = "ws", *, run_at: datetime = T0, dedupe: str | None = None
) -> new_jobs.NewJob:
    return new_jobs.NewJob(
        workspace_id=workspace,
        kind="test.noop",
        payload={"n": 1},
        run_at=run_at,
        priority=0,
        max_attempts=3,
        dedupe_key=dedupe,
        created_at=run_at,
    )


def insert(engine: Engine, *items: new_jobs.NewJob) -> list[int]:
    with engine.begin() as conn:
        return [new_jobs.insert_job(conn, item)[0] for item in items]


def claim(engine: Engine, now: datetime = T0, limit: int = 10) -> list[claiming.Claim]:
    with engine.begin() as conn:
        return claiming.claim_oldest_due(conn, now, limit)


def test_a_dedupe_key_gives_one_job_per_workspace(engine: Engine) -> None:
    with engine.begin() as conn:
        first = new_jobs.insert_job(conn, new_job(dedupe="order-1"))
        again = new_jobs.insert_job(conn, new_job(dedupe="order-1"))
        other_ws = new_jobs.insert_job(conn, new_job("other", dedupe="order-1"))
        no_key = [new_jobs.insert_job(conn, new_job()) for _ in range(2)]
    assert first[1] is True and again == (first[0], False)
    assert other_ws[1] is True and other_ws[0] != first[0]
    assert no_key[0][0] != no_key[1][0]


def test_times_come_back_aware_and_in_utc(engine: Engine) -> None:
    (job_id,) = insert(engine, new_job(run_at=T0.astimezone(timezone(timedelta(hours=2)))))
    with engine.connect() as conn:
        row = job_queries.get_job(conn, job_id)
    assert row is not None and row["run_at"] == T0 and row["run_at"].tzinfo is not None


def test_claims_take_due_jobs_oldest_first_and_fence_them(engine: Engine) -> None:
    late, early, future = insert(
        engine,
        new_job(run_at=T0 - timedelta(seconds=1)),
        new_job(run_at=T0 - timedelta(seconds=5)),
        new_job(run_at=T0 + timedelta(seconds=5)),
    )
    claims = claim(engine, limit=1)
    assert [c.job_id for c in claims] == [early]
    assert claims[0].fence == 1
    assert [c.job_id for c in claim(engine)] == [late]
    assert claim(engine) == []  # the future job is not due
    assert [c.job_id for c in claim(engine, now=T0 + timedelta(seconds=6))] == [future]


def test_start_is_conditional_on_the_fence_and_the_claim(engine: Engine) -> None:
    insert(engine, new_job())
    (c,) = claim(engine)
    with engine.begin() as conn:
        assert transitions.start(conn, c.job_id, c.fence - 1, T0, "w") is None
        started = transitions.start(conn, c.job_id, c.fence, T0, "w")
        assert transitions.start(conn, c.job_id, c.fence, T0, "w") is None  # delivered twice
    assert started is not None and started.attempt == 1 and started.payload == {"n": 1}


def test_a_refused_delivery_is_counted_with_its_reason(engine: Engine) -> None:
    insert(engine, new_job())
    (c,) = claim(engine)
    with engine.begin() as conn:
        transitions.start(conn, c.job_id, c.fence, T0, "w")
        repeated = transitions.record_dropped_delivery(conn, c.job_id, c.fence, T0)
        stale = transitions.record_dropped_delivery(conn, c.job_id, c.fence - 1, T0)
        unknown = transitions.record_dropped_delivery(conn, 999_999, 1, T0)
        reasons = conn.execute(select(duplicate_event_table.c.reason)).scalars().all()
    assert (repeated, stale, unknown) == (
        transitions.REPEATED_DELIVERY,
        transitions.STALE_FENCE,
        transitions.UNKNOWN_JOB,
    )
    assert sorted(reasons) == sorted([transitions.REPEATED_DELIVERY, transitions.STALE_FENCE])


def test_finishing_needs_the_current_fence(engine: Engine) -> None:
    insert(engine, new_job(), new_job(), new_job())
    a, b, c = claim(engine)
    with engine.begin() as conn:
        for item in (a, b, c):
            transitions.start(conn, item.job_id, item.fence, T0, "w")
        assert not transitions.succeed(conn, a.job_id, a.fence + 1, T0)
        assert transitions.succeed(conn, a.job_id, a.fence, T0)
        assert not transitions.succeed(conn, a.job_id, a.fence, T0)  # already finished
        assert transitions.retry_later(conn, b.job_id, b.fence, T0 + timedelta(seconds=30), "boom")
        assert transitions.fail(conn, c.job_id, c.fence, T0, "dead")
        rows = {i.job_id: job_queries.get_job(conn, i.job_id) for i in (a, b, c)}
    assert rows[a.job_id]["status"] == JobStatus.SUCCEEDED  # type: ignore[index]
    retried = rows[b.job_id]
    assert retried is not None and retried["status"] == JobStatus.PENDING
    assert retried["run_at"] == T0 + timedelta(seconds=30) and retried["last_error"] == "boom"
    assert rows[c.job_id]["status"] == JobStatus.FAILED  # type: ignore[index]


def test_a_retried_job_is_claimed_again_with_a_higher_fence(engine: Engine) -> None:
    insert(engine, new_job())
    (c,) = claim(engine)
    with engine.begin() as conn:
        transitions.start(conn, c.job_id, c.fence, T0, "w")
        transitions.retry_later(conn, c.job_id, c.fence, T0, "boom")
    (again,) = claim(engine)
    assert again.job_id == c.job_id and again.fence == c.fence + 1


def test_heartbeat_and_release_follow_the_fence(engine: Engine) -> None:
    insert(engine, new_job(), new_job())
    a, b = claim(engine)
    with engine.begin() as conn:
        assert not transitions.heartbeat(conn, a.job_id, a.fence, T0)  # not started yet
        transitions.start(conn, a.job_id, a.fence, T0, "w")
        assert transitions.heartbeat(conn, a.job_id, a.fence, T0 + timedelta(seconds=9))
        assert claiming.release_claim(conn, b)
        assert not claiming.release_claim(conn, b)
        assert job_queries.get_job(conn, a.job_id)["locked_at"] == T0 + timedelta(seconds=9)  # type: ignore[index]
    assert [c.job_id for c in claim(engine)] == [b.job_id]


def test_counts_by_status_and_workspace(engine: Engine) -> None:
    insert(engine, new_job("a"), new_job("a"), new_job("b", run_at=T0 - timedelta(minutes=2)))
    claim(engine, limit=1)
    with engine.connect() as conn:
        assert job_queries.count_by_status(conn) == {"PENDING": 2, "CLAIMED": 1}
        assert job_queries.count_by_workspace(conn) == {"a": {"PENDING": 2}, "b": {"CLAIMED": 1}}
        assert job_queries.oldest_due_run_at(conn, T0) == T0


def test_concurrent_claimers_never_claim_a_job_twice(engine: Engine) -> None:
    # PostgreSQL: row locks with SKIP LOCKED; SQLite: writers serialised by BEGIN IMMEDIATE.
    insert(engine, *[new_job(f"ws{i % 7}") for i in range(300)])
    results: list[list[claiming.Claim]] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(20):
            got = claim(engine, limit=7)
            with lock:
                results.append(got)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [c.job_id for batch in results for c in batch]
    assert len(claimed) == len(set(claimed)) == 300
    with engine.connect() as conn:
        fences = conn.execute(select(func.max(job_table.c.fence))).scalar()
    assert fences == 1
