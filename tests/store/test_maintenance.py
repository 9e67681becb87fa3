"""Maintenance on both databases: recovery, stale runs, health, alerts to a real webhook."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import cast

import pytest
from celery import Celery
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine, select, update

from fairbeat.exporter import FairbeatCollector
from fairbeat.store import claiming, job_queries, runs, selection, transitions
from fairbeat.store.models import alert_table, function_run_table, health_snapshot_table, job_table
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.dispatch import Dispatcher
from fairbeat.tasks.maintenance import run_maintenance
from fairbeat.tasks.runtime import runtime_of
from tests.conftest import REPO_ROOT, AppFactory
from tests.webhook import Recorder, webhook_server

STALE_S = 60.0


@pytest.fixture
def webhook() -> Iterator[Recorder]:
    with webhook_server() as recorder:
        yield recorder


@pytest.fixture
def mapp(make_app: AppFactory, webhook: Recorder) -> Celery:
    return make_app(
        stale_after_s=STALE_S,
        delivery_timeout_s=30,
        queue_age_alert_s=300,
        slack_webhook_url=webhook.url,
    )


_runs = iter(range(10**6))


def maintain(app: Celery) -> dict[str, object]:
    return run_maintenance(app, window_key=f"test:{next(_runs)}")


def claimed_and_started(app: Celery, engine: Engine, n: int) -> list[claiming.Claim]:
    rt = runtime_of(app)
    for i in range(n):
        enqueue("acme", "test.send", {"tag": f"t{i}"}, app=app, max_attempts=2)
    with engine.begin() as conn:
        claims = claiming.claim_oldest_due(conn, rt.now(), n)
        for c in claims:
            transitions.start(conn, c.job_id, c.fence, rt.now(), "worker-that-died:123")
    return claims


def age_locks(engine: Engine, seconds: float) -> None:
    """Make every job's lock and claim look ``seconds`` old."""
    then = datetime.now().astimezone() - timedelta(seconds=seconds)
    with engine.begin() as conn:
        conn.execute(update(job_table).values(locked_at=then, claimed_at=then))


def status_of(engine: Engine, job_id: int) -> str:
    with engine.connect() as conn:
        return str(job_queries.get_job(conn, job_id)["status"])  # type: ignore[index]


def test_silent_running_jobs_are_recovered_and_a_last_attempt_fails(
    mapp: Celery, engine: Engine
) -> None:
    # Given two jobs whose worker died, one of them on its last attempt
    first, last = claimed_and_started(mapp, engine, 2)
    with engine.begin() as conn:
        conn.execute(update(job_table).where(job_table.c.id == last.job_id).values(attempts=2))
    # When maintenance runs before the cutoff, nothing moves
    assert maintain(mapp)["recovered"] == {}
    # And after the cutoff
    age_locks(engine, STALE_S + 5)
    report = maintain(mapp)
    # Then the first goes back to PENDING, the last attempt is dead-lettered
    assert report["recovered"] == {"RECOVERED_TO_PENDING": 1, "RECOVERED_TO_FAILED": 1}
    assert status_of(engine, first.job_id) == "PENDING"
    assert status_of(engine, last.job_id) == "FAILED"
    with engine.connect() as conn:
        assert "worker-that-died:123" in str(job_queries.get_job(conn, first.job_id)["last_error"])  # type: ignore[index]


def test_a_recovered_job_runs_under_a_new_fence_and_the_old_finish_is_refused(
    mapp: Celery, engine: Engine
) -> None:
    (old,) = claimed_and_started(mapp, engine, 1)
    age_locks(engine, STALE_S + 5)
    maintain(mapp)
    with engine.begin() as conn:
        (new,) = claiming.claim_oldest_due(conn, datetime.now().astimezone(), 1)
        assert new.fence == old.fence + 1
        assert not transitions.succeed(conn, old.job_id, old.fence, datetime.now().astimezone())


def test_succeeded_jobs_are_never_touched(mapp: Celery, engine: Engine) -> None:
    (claim,) = claimed_and_started(mapp, engine, 1)
    with engine.begin() as conn:
        transitions.succeed(conn, claim.job_id, claim.fence, datetime.now().astimezone())
    age_locks(engine, 10 * STALE_S)
    assert maintain(mapp)["recovered"] == {}
    assert status_of(engine, claim.job_id) == "SUCCEEDED"


def test_claims_never_started_are_requeued(mapp: Celery, engine: Engine) -> None:
    enqueue("acme", "test.send", {"tag": "lost"}, app=mapp)
    with engine.begin() as conn:
        (claim,) = claiming.claim_oldest_due(conn, datetime.now().astimezone(), 1)
    age_locks(engine, 31)
    assert maintain(mapp)["recovered"] == {"REQUEUED_UNDELIVERED": 1}
    assert status_of(engine, claim.job_id) == "PENDING"


def test_a_stale_run_is_marked_and_fires_one_alert_then_resolves(
    mapp: Celery, engine: Engine, webhook: Recorder
) -> None:
    now = datetime.now().astimezone()
    with engine.begin() as conn:
        silent = runs.begin(conn, "dispatch", "stuck", 7, now - timedelta(seconds=STALE_S + 5))
        assert silent is not None
    first = maintain(mapp)
    assert first["stale_runs_marked"] == [{"id": silent, "function": "dispatch"}]
    assert first["alerts"] == ["FIRE STALE_RUN"]
    assert len(webhook.posts) == 1 and "FIRING STALE_RUN" in webhook.posts[0]["text"]
    # The stale run's own writes are refused from now on.
    with engine.begin() as conn:
        assert not runs.heartbeat(conn, silent, 7, now)
        assert not runs.finish(conn, silent, 7, now, {})
    second = maintain(mapp)
    assert second["alerts"] == ["RESOLVE STALE_RUN"]
    assert len(webhook.posts) == 2 and "RESOLVED STALE_RUN" in webhook.posts[1]["text"]
    with engine.connect() as conn:
        (episode,) = conn.execute(select(alert_table)).all()
    assert episode.kind == "STALE_RUN" and episode.resolved_at is not None


def test_a_queue_age_breach_fires_once_per_episode(
    mapp: Celery, engine: Engine, webhook: Recorder
) -> None:
    # Given a due job that has waited ten minutes (enqueued, and due, that long ago)
    job = enqueue("acme", "test.send", {"tag": "old"}, app=mapp)
    ago = datetime.now().astimezone() - timedelta(minutes=10)
    with engine.begin() as conn:
        conn.execute(update(job_table).values(run_at=ago, created_at=ago))
    assert maintain(mapp)["alerts"] == ["FIRE QUEUE_AGE_BREACH"]
    assert maintain(mapp)["alerts"] == []  # the same episode: no second post
    with engine.begin() as conn:
        conn.execute(
            update(job_table).where(job_table.c.id == job.job_id).values(status="CANCELLED")
        )
    assert maintain(mapp)["alerts"] == ["RESOLVE QUEUE_AGE_BREACH"]
    assert [p["text"].split()[1] for p in webhook.posts] == ["FIRING", "RESOLVED"]


def test_a_failing_webhook_never_breaks_maintenance(
    mapp: Celery, engine: Engine, webhook: Recorder
) -> None:
    webhook.status = 500
    with engine.begin() as conn:
        runs.begin(conn, "gate", "stuck", 1, datetime.now().astimezone() - timedelta(hours=1))
    report = maintain(mapp)
    (alert,) = cast(list[str], report["alerts"])
    assert alert.startswith("FIRE STALE_RUN (delivery failed")
    assert report["health"] is not None
    with engine.connect() as conn:
        assert conn.execute(select(alert_table.c.kind)).scalars().all() == ["STALE_RUN"]
        assert len(conn.execute(select(health_snapshot_table)).all()) == 1


def test_an_unreachable_webhook_never_breaks_maintenance(
    make_app: AppFactory, engine: Engine
) -> None:
    app = make_app(slack_webhook_url="http://127.0.0.1:1/nothing-listens-here")
    with engine.begin() as conn:
        runs.begin(conn, "gate", "stuck", 1, datetime.now().astimezone() - timedelta(hours=1))
    (alert,) = cast(list[str], maintain(app)["alerts"])
    assert "delivery failed" in alert


def test_a_maintenance_window_runs_once(mapp: Celery, engine: Engine) -> None:
    assert "health" in run_maintenance(mapp, window_key="same")
    assert run_maintenance(mapp, window_key="same") == {"skipped": "WINDOW_ALREADY_RAN"}
    with engine.connect() as conn:
        statuses = conn.execute(select(function_run_table.c.status)).scalars().all()
    assert statuses == ["SUCCEEDED"]


def test_a_stale_or_superseded_dispatch_claims_nothing(mapp: Celery, engine: Engine) -> None:
    enqueue("acme", "test.send", {"tag": "fenced"}, app=mapp)
    now = datetime.now().astimezone()
    with engine.begin() as conn:
        mine = runs.begin(conn, "dispatch", "mine", 5, now)
        assert mine is not None
        successor = runs.begin(conn, "dispatch", "successor", 6, now)
        assert successor is not None
        # A successor with a higher fence has begun: the old run's claim is refused.
        assert selection.claim_planned(conn, now, {"acme": 1}, (mine, 5)) == []
        runs.mark_stale(conn, now + timedelta(seconds=1), now)
        # Declared stale: refused too, even without a successor in the way.
        assert selection.claim_planned(conn, now, {"acme": 1}, (successor, 6)) == []
        fresh = runs.begin(conn, "dispatch", "fresh", 7, now)
        assert fresh is not None
        assert len(selection.claim_planned(conn, now, {"acme": 1}, (fresh, 7))) == 1


def test_status_snapshot_carries_the_health_figures(mapp: Celery) -> None:
    from fairbeat.tasks.health import snapshot

    enqueue("acme", "test.send", {"tag": "x"}, app=mapp)
    rt = runtime_of(mapp)
    snap = snapshot(rt, rt.now())
    for key in (
        "due_pending",
        "oldest_due_age_s",
        "queue_age_p95_s",
        "running",
        "stale_runs",
        "stale_locks",
        "failure_rate",
        "duplicate_signal",
        "top_workspace_share",
    ):
        assert key in snap
    assert snap["due_pending"] == 1 and snap["stale_runs"] == 0


def test_the_exporter_bounds_workspace_labels(make_app: AppFactory) -> None:
    app = make_app(top_workspaces=3)
    for w in range(8):
        for _ in range(w + 1):
            enqueue(f"ws{w}", "test.noop", {}, app=app)
    Dispatcher(app).run("beat")
    registry = CollectorRegistry()
    registry.register(FairbeatCollector(runtime_of(app)))
    text = generate_latest(registry).decode()
    pending = [line for line in text.splitlines() if line.startswith("fairbeat_workspace_pending{")]
    assert len(pending) == 4  # the top 3 plus "other"
    assert 'fairbeat_workspace_pending{workspace="other"}' in text
    assert "fairbeat_claimed_total" in text and "fairbeat_due_pending" in text


def test_the_grafana_dashboard_queries_only_exported_metrics(app: Celery) -> None:
    registry = CollectorRegistry()
    registry.register(FairbeatCollector(runtime_of(app)))
    exposed = set()
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith("# TYPE fairbeat_"):
            exposed.add(line.split()[2])
    dashboard = json.loads(
        (REPO_ROOT / "compose" / "grafana" / "fairbeat-dashboard.json").read_text()
    )
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used = set(re.findall(r"fairbeat_[a-z0-9_]+", target["expr"]))
            assert used and used <= exposed, (panel["title"], used - exposed)
