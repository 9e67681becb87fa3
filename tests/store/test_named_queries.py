"""The queries the gate, the exporter and the canary once built themselves, on both databases."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store import (
    canary_metrics,
    claiming,
    effects,
    gate_decisions,
    runs,
    transitions,
    workspaces,
)
from tests.store.test_jobs import T0, insert, new_job


def test_high_quota_ids_are_the_opted_in_workspaces_sorted(engine: Engine) -> None:
    with engine.begin() as conn:
        workspaces.update_settings(conn, "zeta", T0, high_quota_enabled=True)
        workspaces.update_settings(conn, "alpha", T0, high_quota_enabled=True)
        workspaces.update_settings(conn, "plain", T0, tier="pro")
        assert workspaces.high_quota_ids(conn) == ["alpha", "zeta"]


def decision(workspace_id: str, to_quota: int) -> gate_decisions.GateDecision:
    return gate_decisions.GateDecision(
        window="2026-01-01T12:00:00+00:00",
        workspace_id=workspace_id,
        from_quota=16,
        to_quota=to_quota,
        reason_code="PROMOTED",
        evidence={"p95_s": 1.5},
        decided_at=T0,
    )


def test_a_window_keeps_its_first_gate_decision_per_workspace(engine: Engine) -> None:
    with engine.begin() as conn:
        assert gate_decisions.record(conn, decision("acme", 32))
        assert gate_decisions.record(conn, decision("beta", 24))
        # Evaluated again: the first decision stands.
        assert not gate_decisions.record(conn, decision("acme", 64))
    with engine.connect() as conn:
        stored = gate_decisions.for_window(conn, "2026-01-01T12:00:00+00:00")
        assert stored == [decision("acme", 32), decision("beta", 24)]
        assert gate_decisions.for_window(conn, "another window") == []


def test_finished_runs_are_read_once_each_oldest_first(engine: Engine) -> None:
    with engine.begin() as conn:
        done = runs.begin(conn, "dispatch", "w1", 1, T0)
        open_run = runs.begin(conn, "maintenance", "w1", 1, T0)
        later = runs.begin(conn, "maintenance", "w2", 2, T0)
        assert done is not None and open_run is not None and later is not None
        runs.finish(conn, done, 1, T0, {"claimed": 3})
        runs.finish(conn, later, 2, T0, {}, runs.FAILED)
    with engine.connect() as conn:
        first = runs.finished_after(conn, 0, limit=1)
        assert first == [runs.FinishedRun(done, "dispatch", {"claimed": 3})]
        # The still-running row is skipped, and a run is never read twice.
        assert runs.finished_after(conn, done, limit=10) == [
            runs.FinishedRun(later, "maintenance", {})
        ]
        assert runs.finished_after(conn, later, limit=10) == []


def test_canary_reads_only_its_own_workspaces(engine: Engine) -> None:
    early, late = T0 - timedelta(seconds=30), T0
    canary = ["canary-a", "canary-b"]
    insert(engine, new_job("canary-a", run_at=early), new_job("canary-a", run_at=late))
    insert(engine, new_job("canary-b", run_at=late), new_job("bystander", run_at=early))
    with engine.begin() as conn:
        claims = claiming.claim_oldest_due(conn, T0, 10)
        started = next(c for c in claims if c.workspace_id == "canary-b")
        for c in claims:
            if c is not started:
                claiming.release_claim(conn, c)
        transitions.start(conn, started.job_id, started.fence, T0, "w")
        transitions.succeed(conn, started.job_id, started.fence, T0)
        effects.record_duplicate(
            conn,
            workspace_id="canary-a",
            effect_key="mail",
            job_id=started.job_id,
            fence=started.fence,
            reason=effects.EFFECT_RACED,
            now=T0,
        )
        stale_run = runs.begin(conn, "dispatch", "w", 1, T0)
        runs.mark_stale(conn, T0 + timedelta(seconds=1), T0)
        assert stale_run is not None
    with engine.connect() as conn:
        counts = canary_metrics.status_counts(conn, canary)
        measured = canary_metrics.measured(conn, canary, since=T0 - timedelta(minutes=1))
        later = canary_metrics.measured(conn, canary, since=T0 + timedelta(minutes=1))
    assert sorted(counts, key=lambda c: c.workspace_id) == [
        canary_metrics.StatusCount("canary-a", JobStatus.PENDING.value, 2, early),
        canary_metrics.StatusCount("canary-b", JobStatus.SUCCEEDED.value, 1, late),
    ]
    assert sorted((j.workspace_id, j.status, j.started_at) for j in measured.jobs) == [
        ("canary-a", "PENDING", None),
        ("canary-a", "PENDING", None),
        ("canary-b", "SUCCEEDED", T0),
    ]
    assert (measured.effect_races, measured.stale_runs) == (1, 1)
    assert later.stale_runs == 0  # a stale run from before the canary began is not its own
