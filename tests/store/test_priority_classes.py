"""Priority classes in the store and the dispatcher, on SQLite and PostgreSQL:
the class column, selection per class, claims per (workspace, class), the
one-class tick unchanged, and a class no longer configured."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
import redis
from celery import Celery
from sqlalchemy import Engine, select, text

from fairbeat.scheduling.reasons import CLASS_BUDGET
from fairbeat.store import class_selection, new_jobs
from fairbeat.store.models import job_table
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.bulk import enqueue_many
from fairbeat.tasks.dispatch import Dispatcher
from fairbeat.tasks.errors import EnqueueError
from tests.conftest import AppFactory
from tests.store.test_jobs import T0, insert, new_job


def classed(workspace: str, name: str, **kw: object) -> new_jobs.NewJob:
    return replace(new_job(workspace, **kw), priority_class=name)  # type: ignore[arg-type]


def claimed_by(engine: Engine) -> Counter[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(job_table.c.workspace_id, job_table.c.priority_class).where(
                job_table.c.status == "CLAIMED"
            )
        ).all()
    return Counter((r.workspace_id, r.priority_class) for r in rows)


def test_a_row_inserted_without_a_class_is_default(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO job (workspace_id, kind, payload) VALUES ('plain', 'test.noop', '{}')"
            )
        )
        assert conn.execute(select(job_table.c.priority_class)).scalar_one() == "default"


def test_classes_and_due_counts_per_class_skip_future_and_stop_at_the_limit(
    engine: Engine,
) -> None:
    insert(engine, *[classed("hot", "bulk") for _ in range(30)])
    insert(engine, classed("hot", "critical"), classed("small", "critical"))
    insert(engine, classed("later", "default", run_at=T0 + timedelta(hours=1)))
    with engine.connect() as conn:
        names = class_selection.pending_classes(conn)
        due = class_selection.due_by_class(conn, T0, 11, names)
    assert names == ["bulk", "critical", "default"]
    # The default class waits (PENDING) but is not due: no count for it.
    assert due == {"bulk": {"hot": 11}, "critical": {"hot": 1, "small": 1}}


def test_claims_per_workspace_and_class_take_only_that_class_in_its_own_order(
    engine: Engine,
) -> None:
    ids = insert(
        engine,
        classed("a", "bulk"),
        replace(classed("a", "bulk"), priority=9),
        classed("a", "critical", run_at=T0 - timedelta(seconds=1)),
        classed("a", "critical"),
        classed("b", "bulk"),
    )
    with engine.begin() as conn:
        claims = class_selection.claim_by_class(
            conn, T0, {("a", "critical"): 1, ("a", "bulk"): 1, ("b", "critical"): 3}
        )
    # a's older critical job, and a's priority-9 bulk job; b has no critical job.
    assert sorted(c.job_id for c in claims) == sorted([ids[2], ids[1]])
    assert {c.job_id: c.priority_class for c in claims} == {ids[2]: "critical", ids[1]: "bulk"}


def test_keyed_claims_per_class_keep_each_key_within_its_limit(app: Celery, engine: Engine) -> None:
    for name in ("bulk", "critical", "critical"):
        enqueue(
            "a",
            "test.noop",
            {},
            priority_class=name,
            concurrency_key="k",
            concurrency_limit=1,
            app=app,
        )
    enqueue("b", "test.noop", {}, priority_class="bulk", app=app)
    held: dict[str, int] = {}
    with engine.begin() as conn:
        later = T0 + timedelta(days=3650)
        plan = {("a", "critical"): 2, ("b", "bulk"): 1}
        claims = class_selection.claim_by_class(conn, later, plan, None, {}, held)
    assert Counter((c.workspace_id, c.priority_class) for c in claims) == {
        ("a", "critical"): 1,
        ("b", "bulk"): 1,
    }
    assert held == {"a": 1}


def test_enqueue_refuses_an_unknown_class_naming_it_and_writes_nothing(
    app: Celery, engine: Engine
) -> None:
    with pytest.raises(EnqueueError, match=r"^priority_class: must be one of critical, default"):
        enqueue("acme", "test.noop", {}, priority_class="urgent", app=app)
    with pytest.raises(EnqueueError, match=r"^jobs\[1\]\.priority_class: must be one of"):
        enqueue_many(
            [
                {"workspace_id": "acme", "kind": "test.noop", "payload": {}},
                {"workspace_id": "acme", "kind": "test.noop", "payload": {}, "priority_class": 3},
            ],
            app=app,
        )
    with engine.connect() as conn:
        assert conn.execute(select(job_table.c.id)).first() is None
    enqueue_many(
        [{"workspace_id": "acme", "kind": "test.noop", "payload": {}, "priority_class": "bulk"}],
        app=app,
    )
    enqueue("acme", "test.noop", {}, priority_class="critical", app=app)
    with engine.connect() as conn:
        names = sorted(conn.execute(select(job_table.c.priority_class)).scalars())
    assert names == ["bulk", "critical"]


def test_a_tick_serves_critical_first_across_workspaces_and_keeps_bulk_its_share(
    make_app: AppFactory, engine: Engine, redis_client: redis.Redis
) -> None:
    app = make_app(autoscale_enabled=False, global_capacity=10, claim_batch=10, partition_cap=50)
    for _ in range(30):
        enqueue("flood", "test.noop", {}, priority_class="bulk", app=app)
    for _ in range(12):
        enqueue("urgent", "test.noop", {}, priority_class="critical", app=app)
    report = Dispatcher(app).tick(fence=0, redis_ok=True)
    assert claimed_by(engine) == {("urgent", "critical"): 9, ("flood", "bulk"): 1}
    assert report.class_budgets == {"critical": 9, "default": 0, "bulk": 1}
    assert report.class_claimed == {"critical": 9, "bulk": 1}
    assert report.unclaimed[CLASS_BUDGET] == 3  # critical jobs past its budget
    assert report.claimed + sum(report.unclaimed.values()) == report.selected


def test_a_workspace_quota_holds_across_its_classes(
    make_app: AppFactory, engine: Engine, redis_client: redis.Redis
) -> None:
    app = make_app(
        autoscale_enabled=False,
        global_capacity=100,
        claim_batch=100,
        tier_quotas={"default": 4},
    )
    for name in ("critical", "default", "bulk") * 4:
        enqueue("acme", "test.noop", {}, priority_class=name, app=app)
    Dispatcher(app).tick(fence=0, redis_ok=True)
    got = claimed_by(engine)
    assert sum(got.values()) == 4
    # The reserves are of the tick's room: within one workspace's quota its
    # higher class goes first.
    assert got[("acme", "critical")] == 4
    Dispatcher(app).tick(fence=0, redis_ok=True)
    assert sum(claimed_by(engine).values()) == 4  # nothing finished: still at quota


def test_one_class_ticks_do_not_read_per_class(
    make_app: AppFactory, engine: Engine, redis_client: redis.Redis
) -> None:
    from sqlalchemy import event

    app = make_app(autoscale_enabled=False, global_capacity=8, claim_batch=8)
    for w in ("a", "b"):
        for _ in range(3):
            enqueue(w, "test.noop", {}, priority_class="bulk", app=app)
    seen: list[str] = []
    rt_engine = Dispatcher(app).rt.engine
    event.listen(rt_engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    report = Dispatcher(app).tick(fence=0, redis_ok=True)
    assert report.claimed == 6 and report.class_budgets == {}
    assert not any("priority_class = :cls" in s or "plan.cls" in s for s in seen)


def test_a_class_no_longer_configured_is_dispatched_as_default_with_a_bystander(
    make_app: AppFactory, engine: Engine, redis_client: redis.Redis
) -> None:
    old = make_app(priority_classes="urgent,default", autoscale_enabled=False)
    enqueue("legacy", "test.noop", {}, priority_class="urgent", app=old)
    app = make_app(autoscale_enabled=False, global_capacity=100, claim_batch=10)
    enqueue("bystander", "test.noop", {}, app=app)
    for _ in range(20):
        enqueue("flood", "test.noop", {}, priority_class="critical", app=app)
    Dispatcher(app).tick(fence=0, redis_ok=True)
    got = claimed_by(engine)
    # 'urgent' counts as default: with the bystander it shares default's reserve.
    assert got[("flood", "critical")] >= 8
    Dispatcher(app).tick(fence=0, redis_ok=True)
    got = claimed_by(engine)
    assert got[("legacy", "urgent")] == 1 and got[("bystander", "default")] == 1
