"""Partition-aware selection and planned claims, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from fairbeat.store import claiming, new_jobs, selection, transitions, workspaces
from tests.store.test_jobs import T0, insert, new_job


def with_priority(job: new_jobs.NewJob, priority: int) -> new_jobs.NewJob:
    from dataclasses import replace

    return replace(job, priority=priority)


def test_due_counts_stop_at_the_limit_and_skip_future_jobs(engine: Engine) -> None:
    insert(engine, *[new_job("hot") for _ in range(30)])
    insert(engine, new_job("small"), new_job("later", run_at=T0 + timedelta(hours=1)))
    with engine.connect() as conn:
        due = selection.due_by_workspace(conn, T0, limit=11)
    assert due == {"hot": 11, "small": 1}


def test_in_flight_counts_claimed_and_running(engine: Engine) -> None:
    insert(engine, new_job("a"), new_job("a"), new_job("b"))
    with engine.begin() as conn:
        a1, _, b1 = claiming.claim_oldest_due(conn, T0, 3)
        transitions.start(conn, a1.job_id, a1.fence, T0, "w")
        transitions.start(conn, b1.job_id, b1.fence, T0, "w")
        transitions.succeed(conn, b1.job_id, b1.fence, T0)
    with engine.connect() as conn:
        assert selection.in_flight_by_workspace(conn) == {"a": 2}


def test_planned_claims_take_each_workspace_in_its_own_order(engine: Engine) -> None:
    ids = insert(
        engine,
        new_job("a", run_at=T0 - timedelta(seconds=3)),
        with_priority(new_job("a", run_at=T0 - timedelta(seconds=1)), 5),
        new_job("a", run_at=T0 - timedelta(seconds=2)),
        new_job("b"),
        new_job("b"),
    )
    with engine.begin() as conn:
        claims = selection.claim_planned(conn, T0, {"a": 2, "b": 1, "c": 4})
    by_ws: dict[str, list[int]] = {}
    for claim in claims:
        by_ws.setdefault(claim.workspace_id, []).append(claim.job_id)
    # Priority first, then run_at: the priority-5 job, then the oldest.
    assert by_ws == {"a": [ids[1], ids[0]], "b": [ids[3]]}
    assert all(c.fence == 1 for c in claims)


def test_profiles_default_for_workspaces_without_a_row(engine: Engine) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        workspaces.update_settings(conn, "big", now, tier="enterprise", weight=2.0, paused=True)
    with engine.connect() as conn:
        got = selection.profiles(conn, ["big", "new"])
    assert got["big"] == selection.WorkspaceProfile("enterprise", 2.0, True, False)
    assert got["new"] == selection.WorkspaceProfile()


def test_pending_count_is_bounded(engine: Engine) -> None:
    insert(engine, *[new_job("a") for _ in range(7)])
    with engine.connect() as conn:
        assert selection.pending_count(conn, "a", limit=5) == 5
        assert selection.pending_count(conn, "a", limit=50) == 7
        assert selection.pending_count(conn, "b", limit=50) == 0


def test_finished_since_counts_every_outcome_from_the_given_time(engine: Engine) -> None:
    insert(engine, *[new_job("a") for _ in range(4)])
    with engine.begin() as conn:
        c1, c2, c3, _ = claiming.claim_oldest_due(conn, T0, 4)
        for claim in (c1, c2, c3):
            transitions.start(conn, claim.job_id, claim.fence, T0, "w")
        transitions.succeed(conn, c1.job_id, c1.fence, T0 - timedelta(seconds=5))
        transitions.succeed(conn, c2.job_id, c2.fence, T0)
        transitions.fail(conn, c3.job_id, c3.fence, T0 + timedelta(seconds=1), "boom")
    with engine.connect() as conn:
        assert selection.finished_since(conn, T0) == 2  # a running or pending job never counts
        assert selection.finished_since(conn, T0 - timedelta(seconds=10)) == 3


def test_concurrent_planned_claims_never_overlap(engine: Engine) -> None:
    insert(engine, *[new_job(f"ws{i % 5}") for i in range(200)])
    claimed: list[int] = []
    lock = threading.Lock()

    def dispatcher() -> None:
        for _ in range(15):
            with engine.begin() as conn:
                got = selection.claim_planned(conn, T0, {f"ws{i}": 2 for i in range(5)})
            with lock:
                claimed.extend(c.job_id for c in got)

    threads = [threading.Thread(target=dispatcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == len(set(claimed)) == 200
