"""Child jobs and dependencies in-process, on both backends: waiting, release,
failure and cancel cascades, validation, children created with their parent's
success, and the family a job belongs to."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine, func, select

from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store import claiming, families, job_queries, retention, transitions
from fairbeat.store.db import autocommit
from fairbeat.store.models import job_dependency_table, job_table
from fairbeat.tasks import cancellation
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.errors import EnqueueError
from fairbeat.tasks.run import RETRY_SCHEDULED, SUCCEEDED, execute
from fairbeat.tasks.runtime import runtime_of
from tests.conftest import AppFactory


def status(engine: Engine, job_id: int) -> str:
    with engine.connect() as conn:
        found = job_queries.get_job(conn, job_id)
    assert found is not None
    return str(found["status"])


def row(engine: Engine, job_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        found = job_queries.get_job(conn, job_id)
    assert found is not None
    return found


def run_due(app: Celery, engine: Engine, *, far: bool = False) -> dict[int, str]:
    """Claim and run every due job once (``far``: as if the backoff had passed)."""
    now = runtime_of(app).now()
    if far:
        now = now.replace(year=now.year + 1)
    with engine.begin() as conn:
        claims = claiming.claim_oldest_due(conn, now, 100)
    return {c.job_id: execute(app, c.job_id, c.fence) for c in claims}


def job_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(job_table)).scalar_one())


def test_a_job_runs_only_after_all_its_parents_succeeded(app: Celery, engine: Engine) -> None:
    a = enqueue("acme", "test.send", {"tag": "a"}, app=app)
    b = enqueue("acme", "test.send", {"tag": "b"}, app=app)
    c = enqueue("acme", "test.send", {"tag": "c"}, after=[a.job_id, b.job_id], app=app)
    assert row(engine, c.job_id)["waiting_on"] == 2 and status(engine, c.job_id) == "WAITING"
    with engine.begin() as conn:  # only the parents are selectable
        (first,) = claiming.claim_oldest_due(conn, runtime_of(app).now(), 1)
    assert first.job_id == a.job_id
    assert execute(app, first.job_id, first.fence) == SUCCEEDED
    assert status(engine, c.job_id) == "WAITING" and row(engine, c.job_id)["waiting_on"] == 1
    assert run_due(app, engine) == {b.job_id: SUCCEEDED}
    assert status(engine, c.job_id) == "PENDING"
    assert run_due(app, engine) == {c.job_id: SUCCEEDED}


def test_a_parent_that_already_succeeded_does_not_hold_the_job(app: Celery, engine: Engine) -> None:
    a = enqueue("acme", "test.send", {"tag": "a"}, app=app)
    run_due(app, engine)
    c = enqueue("acme", "test.send", {"tag": "c"}, after=[a.job_id, a.job_id], app=app)
    assert status(engine, c.job_id) == "PENDING" and row(engine, c.job_id)["waiting_on"] == 0
    assert families.depends_on(engine.connect(), c.job_id) == [a.job_id]


@pytest.mark.parametrize(("policy", "ended"), [("fail", "FAILED"), ("cancel", "CANCELLED")])
def test_a_failed_parent_ends_its_dependents_and_theirs(
    make_app: AppFactory, engine: Engine, policy: str, ended: str
) -> None:
    app = make_app(dependency_failure=policy)
    bad = enqueue("acme", "test.always_fails", {"message": "no"}, max_attempts=1, app=app)
    ok = enqueue("acme", "test.send", {"tag": "ok"}, app=app)
    child = enqueue("acme", "test.send", {"tag": "x"}, after=[bad.job_id, ok.job_id], app=app)
    grandchild = enqueue("acme", "test.send", {"tag": "y"}, after=[child.job_id], app=app)
    bystander = enqueue("other", "test.send", {"tag": "z"}, app=app)
    outcomes = run_due(app, engine)
    assert outcomes[bystander.job_id] == SUCCEEDED and status(engine, bad.job_id) == "FAILED"
    assert status(engine, child.job_id) == ended and status(engine, grandchild.job_id) == ended
    assert f"job {bad.job_id}" in str(row(engine, child.job_id)["last_error"])
    assert f"job {child.job_id}" in str(row(engine, grandchild.job_id)["last_error"])
    assert row(engine, child.job_id)["finished_at"] is not None


def test_a_retried_parent_keeps_its_dependents_waiting(app: Celery, engine: Engine) -> None:
    parent = enqueue("acme", "test.flaky", {"tag": "p", "fail_times": 1}, app=app)
    after = enqueue("acme", "test.send", {"tag": "d"}, after=[parent.job_id], app=app)
    assert run_due(app, engine) == {parent.job_id: RETRY_SCHEDULED}
    assert status(engine, after.job_id) == "WAITING"
    assert run_due(app, engine, far=True) == {parent.job_id: SUCCEEDED}
    assert status(engine, after.job_id) == "PENDING"


def test_cancelling_a_waiting_or_a_running_job_reaches_its_dependents(
    make_app: AppFactory, engine: Engine
) -> None:
    app = make_app(dependency_failure="cancel")
    parent = enqueue("acme", "test.send", {"tag": "p"}, app=app)
    waiting = enqueue("acme", "test.send", {"tag": "w"}, after=[parent.job_id], app=app)
    last = enqueue("acme", "test.send", {"tag": "l"}, after=[waiting.job_id], app=app)
    done = cancellation.cancel(waiting.job_id, why="not needed", who="ops", app=app)
    assert done.cancelled == [waiting.job_id]
    assert status(engine, last.job_id) == "CANCELLED" and status(engine, parent.job_id) == "PENDING"
    assert f"job {waiting.job_id}" in str(row(engine, last.job_id)["last_error"])
    other = enqueue("acme", "test.send", {"tag": "o"}, after=[parent.job_id], app=app)
    now = runtime_of(app).now()
    with engine.begin() as conn:
        (claim,) = claiming.claim_oldest_due(conn, now, 1)
        assert transitions.start(conn, claim.job_id, claim.fence, now, "w") is not None
    cancellation.cancel(parent.job_id, why="stop", who="ops", app=app)
    assert (
        status(engine, parent.job_id) == "CANCELLED" and status(engine, other.job_id) == "CANCELLED"
    )


@pytest.mark.parametrize(
    ("after", "says"),
    [
        ("7", "must be a list"),
        ([True], "positive integer"),
        ([0], "positive integer"),
        (list(range(1, 200)), "over the limit"),
        ([999_999], "not found in workspace 'acme'"),
    ],
)
def test_bad_after_is_refused_naming_it(app: Celery, engine: Engine, after: Any, says: str) -> None:
    with pytest.raises(EnqueueError, match=f"^after: .*{says}"):
        enqueue("acme", "test.send", {"tag": "a"}, after=after, app=app)
    assert job_count(engine) == 0


def test_after_refuses_another_workspaces_and_finished_broken_jobs(
    app: Celery, engine: Engine
) -> None:
    theirs = enqueue("other", "test.send", {"tag": "t"}, app=app)
    with pytest.raises(EnqueueError, match=r"^after: .*not found in workspace 'acme'"):
        enqueue("acme", "test.send", {"tag": "a"}, after=[theirs.job_id], app=app)
    dead = enqueue("acme", "test.always_fails", {"message": "x"}, max_attempts=1, app=app)
    run_due(app, engine)
    with pytest.raises(EnqueueError, match=f"^after: job {dead.job_id} is already FAILED"):
        enqueue("acme", "test.send", {"tag": "a"}, after=[dead.job_id], app=app)
    assert job_count(engine) == 2


def test_two_parents_succeeding_at_once_release_their_dependent(
    app: Celery, engine: Engine
) -> None:
    a = enqueue("acme", "test.send", {"tag": "a"}, app=app)
    b = enqueue("acme", "test.send", {"tag": "b"}, app=app)
    c = enqueue("acme", "test.send", {"tag": "c"}, after=[a.job_id, b.job_id], app=app)
    now = runtime_of(app).now()
    with engine.begin() as conn:
        claims = {x.job_id: x for x in claiming.claim_oldest_due(conn, now, 2)}
    for claim in claims.values():
        with engine.begin() as conn:
            transitions.start(conn, claim.job_id, claim.fence, now, "w")

    def succeed(job_id: int) -> None:  # as the run does: one statement, committing alone
        with autocommit(engine) as conn:
            assert families.succeed(conn, job_id, claims[job_id].fence, now)

    with engine.begin() as conn:  # a's success stays open while b's runs
        assert transitions.succeed(conn, a.job_id, claims[a.job_id].fence, now)
        families.settle(conn, a.job_id, JobStatus.SUCCEEDED, "fail", now)
        other = threading.Thread(target=succeed, args=(b.job_id,))
        other.start()
        other.join(0.5)  # b's update waits on c's row (or SQLite's lock)
    other.join(30)
    assert not other.is_alive()
    assert status(engine, c.job_id) == "PENDING" and row(engine, c.job_id)["waiting_on"] == 0


def test_a_child_of_a_failed_attempt_is_not_created(app: Celery, engine: Engine) -> None:
    parent = enqueue("acme", "test.spawn", {"child_tag": "kid", "fail_times": 1}, app=app)
    assert run_due(app, engine) == {parent.job_id: RETRY_SCHEDULED}
    assert job_count(engine) == 1
    assert run_due(app, engine, far=True) == {parent.job_id: SUCCEEDED}
    with engine.connect() as conn:
        kids = conn.execute(select(job_table).where(job_table.c.parent_id == parent.job_id)).all()
    assert len(kids) == 1 and kids[0].payload == {"tag": "kid"}
    assert kids[0].workspace_id == "acme" and kids[0].status == "PENDING"


def test_an_immediate_child_exists_whatever_the_attempt_does(app: Celery, engine: Engine) -> None:
    parent = enqueue(
        "acme", "test.spawn", {"child_tag": "now", "fail_times": 1, "immediately": True}, app=app
    )
    assert run_due(app, engine) == {parent.job_id: RETRY_SCHEDULED}
    with engine.connect() as conn:
        kids = conn.execute(select(job_table).where(job_table.c.parent_id == parent.job_id)).all()
    assert [k.payload for k in kids] == [{"tag": "now:1"}]


def test_the_family_shows_ancestors_and_descendants(app: Celery, engine: Engine) -> None:
    parent = enqueue("acme", "test.spawn", {"child_tag": "kid"}, app=app)
    run_due(app, engine)
    with engine.connect() as conn:
        kid = int(
            conn.execute(
                select(job_table.c.id).where(job_table.c.parent_id == parent.job_id)
            ).scalar_one()
        )
    later = enqueue("acme", "test.send", {"tag": "later"}, after=[kid], app=app)
    with engine.connect() as conn:
        tree = families.family(conn, parent.job_id)
        from_kid = families.family(conn, kid)
        assert families.family(conn, 999_999) is None
    assert tree is not None and from_kid is not None
    (child,) = tree["job"]["children"]
    assert child["id"] == kid and child["link"] == "child"
    assert [n["id"] for n in child["children"]] == [later.job_id]
    assert child["children"][0]["link"] == "after" and child["children"][0]["status"] == "WAITING"
    assert [a["id"] for a in from_kid["ancestors"]] == [parent.job_id]
    assert not tree["truncated"]


def test_pruning_a_finished_dependent_takes_its_dependency_rows(
    app: Celery, engine: Engine
) -> None:
    a = enqueue("acme", "test.send", {"tag": "a"}, app=app)
    c = enqueue("acme", "test.send", {"tag": "c"}, after=[a.job_id], app=app)
    run_due(app, engine)
    run_due(app, engine)
    assert status(engine, c.job_id) == "SUCCEEDED"
    later = runtime_of(app).now().replace(year=3000)
    with engine.begin() as conn:
        assert retention.prune_batch(conn, "job_succeeded", later, 100) == 2
        left = conn.execute(select(func.count()).select_from(job_dependency_table)).scalar_one()
    assert left == 0


def test_the_cli_shows_as_many_jobs_as_the_store_returns() -> None:
    from fairbeat import family_cli

    assert family_cli.FAMILY_LIMIT == families.FAMILY_LIMIT


def test_the_status_report_lists_every_status() -> None:
    from fairbeat import cli_status
    from fairbeat.store import overview

    assert (*cli_status.LIVE, *cli_status.FINISHED) == overview.STATUSES
    assert set(overview.STATUSES) == {s.value for s in JobStatus}
