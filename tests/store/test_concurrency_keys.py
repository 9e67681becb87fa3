"""Concurrency keys in the claim, and enqueue's on_conflict modes, on both databases."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import redis
from celery import Celery
from sqlalchemy import Engine, select

from fairbeat.scheduling.reasons import KEY_LIMIT
from fairbeat.store import concurrency, new_jobs, retention, selection, transitions
from fairbeat.store.models import job_table
from fairbeat.tasks.api import Enqueued, enqueue
from fairbeat.tasks.dispatch import Dispatcher
from fairbeat.tasks.errors import EnqueueError
from fairbeat.tasks.runtime import runtime_of
from tests.conftest import AppFactory
from tests.store.test_jobs import T0, new_job


def keyed(engine: Engine, workspace: str, keys: dict[str, int], n: int = 1) -> list[int]:
    ids = []
    with engine.begin() as conn:
        for _ in range(n):
            job_id, _ = new_jobs.insert_job(conn, new_job(workspace))
            concurrency.add_keys(conn, job_id, workspace, keys)
            ids.append(job_id)
    return ids


def claim(
    engine: Engine, plan: dict[str, int], named: dict[str, int] | None = None
) -> tuple[list[int], dict[str, int]]:
    held: dict[str, int] = {}
    with engine.begin() as conn:
        claims = selection.claim_planned(conn, T0, plan, None, named, held)
    return [c.job_id for c in claims], held


def test_a_key_at_its_limit_leaves_its_jobs_waiting_as_key_limit(engine: Engine) -> None:
    first, second, _third = keyed(engine, "acme", {"user:7": 1}, 3)
    (plain,) = keyed(engine, "acme", {})
    got, held = claim(engine, {"acme": 4})
    assert sorted(got) == [first, plain] and held == {"acme": 2}
    with engine.begin() as conn:
        transitions.start(conn, first, 1, T0, "w")
        transitions.succeed(conn, first, 1, T0)
    assert claim(engine, {"acme": 4})[0] == [second]
    assert claim(engine, {"acme": 4})[0] == []


def test_a_key_counts_per_workspace_unless_it_is_global(engine: Engine) -> None:
    a = keyed(engine, "a", {"user:7": 1}, 2)
    b = keyed(engine, "b", {"user:7": 1}, 2)
    got, _ = claim(engine, {"a": 2, "b": 2})
    assert sorted(got) == [a[0], b[0]]
    ga = keyed(engine, "a", {"global:provider-x": 1})
    gb = keyed(engine, "b", {"global:provider-x": 1})
    got, held = claim(engine, {"a": 1, "b": 1})
    assert len(got) == 1 and got[0] in ga + gb and sum(held.values()) == 1


def test_a_job_with_several_keys_needs_room_in_each(engine: Engine) -> None:
    keyed(engine, "acme", {"user:7": 1})
    (both,) = keyed(engine, "acme", {"user:8": 5, "user:7": 1})
    (other,) = keyed(engine, "acme", {"user:8": 5})
    got, _ = claim(engine, {"acme": 1})
    assert len(got) == 1
    got, held = claim(engine, {"acme": 2})
    assert both not in got and other in got and held == {"acme": 1}


def test_a_named_limit_wins_over_the_enqueued_one(engine: Engine) -> None:
    ids = keyed(engine, "acme", {"global:provider-x": 1}, 4)
    got, _ = claim(engine, {"acme": 4}, {"global:provider-x": 3})
    assert sorted(got) == ids[:3]


def test_jobs_behind_a_full_key_are_not_hidden_by_it(engine: Engine) -> None:
    keyed(engine, "acme", {"user:7": 1})
    claim(engine, {"acme": 1})  # the key is now full
    keyed(engine, "acme", {"user:7": 1}, 20)
    (plain,) = keyed(engine, "acme", {})
    got, _ = claim(engine, {"acme": 1})
    assert got == [plain]


def test_concurrent_claimers_never_exceed_a_key(engine: Engine) -> None:
    for w in ("a", "b", "c", "d"):
        keyed(engine, w, {"global:provider-x": 2}, 5)
    got: list[int] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        got.extend(claim(engine, {"a": 3, "b": 3, "c": 3, "d": 3})[0])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 2 and len(set(got)) == 2


def row(engine: Engine, job_id: int) -> tuple[str, dict[str, object], object]:
    with engine.connect() as conn:
        r = conn.execute(select(job_table).where(job_table.c.id == job_id)).one()
    return r.status, r.payload, r.run_at


def test_keep_leaves_the_existing_job_as_it_is(app: Celery, engine: Engine) -> None:
    first = enqueue("acme", "test.send", {"tag": "a"}, dedupe_key="k", app=app)
    again = enqueue("acme", "test.send", {"tag": "b"}, dedupe_key="k", on_conflict="keep", app=app)
    assert again.job_id == first.job_id and not again.replaced
    assert row(engine, first.job_id)[1] == {"tag": "a"}


def test_replace_pending_replaces_payload_and_run_at(app: Celery, engine: Engine) -> None:
    first = enqueue("acme", "test.send", {"tag": "a"}, dedupe_key="k", app=app)
    later = runtime_of(app).now() + timedelta(hours=1)
    again = enqueue(
        "acme",
        "test.send",
        {"tag": "b"},
        dedupe_key="k",
        run_at=later,
        on_conflict="replace_pending",
        app=app,
    )
    assert again.job_id == first.job_id and again.replaced and not again.created
    assert row(engine, first.job_id)[1:] == ({"tag": "b"}, later)


def test_debounce_pushes_run_at_to_a_window_after_the_last_enqueue(
    app: Celery, engine: Engine
) -> None:
    first = enqueue(
        "acme",
        "test.send",
        {"tag": "a"},
        dedupe_key="k",
        on_conflict="debounce",
        debounce_s=30,
        app=app,
    )
    assert first.created and first.run_at > runtime_of(app).now() + timedelta(seconds=29)
    again = enqueue(
        "acme",
        "test.send",
        {"tag": "b"},
        dedupe_key="k",
        on_conflict="debounce",
        debounce_s=30,
        app=app,
    )
    _, payload, run_at = row(engine, first.job_id)
    assert again.replaced and payload == {"tag": "b"} and run_at == again.run_at >= first.run_at


@pytest.mark.parametrize("mode", ["replace_pending", "debounce"])
def test_nothing_changes_once_the_job_was_claimed(app: Celery, engine: Engine, mode: str) -> None:
    """The claim holds the row while an enqueue tries to replace it: the claim
    wins, and the enqueue returns the claimed job untouched."""
    window = 5.0 if mode == "debounce" else None
    first = enqueue("acme", "test.send", {"tag": "a"}, dedupe_key="k", app=app)
    results: list[Enqueued] = []
    with engine.begin() as conn:
        assert selection.claim_planned(conn, runtime_of(app).now(), {"acme": 1})
        thread = threading.Thread(
            target=lambda: results.append(
                enqueue(
                    "acme",
                    "test.send",
                    {"tag": "b"},
                    dedupe_key="k",
                    on_conflict=mode,  # type: ignore[arg-type]  # one of the modes, parametrised
                    debounce_s=window,
                    app=app,
                )
            )
        )
        thread.start()
    thread.join()
    assert results[0].job_id == first.job_id and not results[0].replaced
    assert row(engine, first.job_id)[:2] == ("CLAIMED", {"tag": "a"})


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"on_conflict": "merge", "dedupe_key": "k"}, "on_conflict"),
        ({"on_conflict": "debounce"}, "on_conflict"),
        ({"on_conflict": "debounce", "dedupe_key": "k"}, "debounce_s"),
        ({"debounce_s": 5, "dedupe_key": "k"}, "debounce_s"),
        ({"concurrency_key": "user:7"}, "concurrency_limit"),
        ({"concurrency_key": "user:7", "concurrency_limit": 0}, "concurrency_limit"),
        ({"concurrency_key": ""}, "concurrency_key"),
        ({"concurrency_keys": "user:7", "concurrency_limit": 1}, "concurrency_keys"),
    ],
)
def test_bad_options_are_refused_naming_the_argument(
    app: Celery, engine: Engine, options: dict[str, object], field: str
) -> None:
    with pytest.raises(EnqueueError) as raised:
        enqueue("acme", "test.send", {"tag": "a"}, app=app, **options)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_a_named_limit_needs_no_limit_at_enqueue(make_app: AppFactory, engine: Engine) -> None:
    app = make_app(concurrency_limits={"global:provider-x": 2})
    job = enqueue("acme", "test.send", {"tag": "a"}, concurrency_key="global:provider-x", app=app)
    with engine.connect() as conn:
        counts = conn.execute(select(concurrency.jck)).all()
    assert [(r.job_id, r.scope, r.key, r.max_in_flight) for r in counts] == [
        (job.job_id, "", "global:provider-x", 2)
    ]


def test_pruning_a_finished_job_takes_its_keys_with_it(engine: Engine) -> None:
    done, waiting = keyed(engine, "acme", {"user:7": 1}, 2)
    claim(engine, {"acme": 1})
    with engine.begin() as conn:
        transitions.start(conn, done, 1, T0, "w")
        transitions.succeed(conn, done, 1, T0)
        assert retention.prune_batch(conn, "job_succeeded", T0 + timedelta(days=1), 10) == 1
        left = conn.execute(select(concurrency.jck.c.job_id)).scalars().all()
    assert left == [waiting]


def test_a_tick_explains_jobs_held_by_a_key_as_key_limit(
    make_app: AppFactory, engine: Engine, redis_client: redis.Redis
) -> None:
    app = make_app(
        autoscale_enabled=False,
        global_capacity=8,
        claim_batch=8,
        partition_cap=6,
        concurrency_limits={"global:provider-x": 2},
    )
    for workspace in ("a", "b"):
        for _ in range(3):
            enqueue(workspace, "test.noop", {}, concurrency_key="global:provider-x", app=app)
    enqueue("innocent", "test.noop", {}, app=app)
    report = Dispatcher(app).tick(fence=0, redis_ok=True)
    # Two of the key's six jobs and the innocent one are claimed; the rest wait on the key.
    assert report.claimed == 3 and report.unclaimed == {KEY_LIMIT: 4}
    assert report.claimed + sum(report.unclaimed.values()) == report.selected
    with engine.connect() as conn:
        assert concurrency.in_flight_by_key(conn)[0] == {("", "global:provider-x"): 2}
    assert Dispatcher(app).tick(fence=0, redis_ok=True).claimed == 0
