"""``fairbeat canary``: a real burst against the running deployment, and a go/no-go packet.

It enqueues ``canary.probe`` jobs for a few hot and many small workspaces,
samples queue age, quota rungs and capacity once a second until they are done
(or a deadline), then judges the run against the locked thresholds and writes
``canary.md``, ``canary.json`` and PNG plots into the output folder.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from celery import Celery

from fairbeat.scheduling.canary import CanaryMeasures, Thresholds, Verdict, verdict
from fairbeat.scheduling.jobstate import TERMINAL, JobStatus
from fairbeat.scheduling.stats import percentile
from fairbeat.store import canary_metrics
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.canary_jobs import CANARY_KIND, sends_key
from fairbeat.tasks.runtime import Runtime, runtime_of

SAMPLE_EVERY_S = 1.0


@dataclass(frozen=True)
class CanaryPlan:
    workspaces: int = 10
    jobs: int = 20
    hot: int = 1
    hot_factor: int = 10  # a hot workspace enqueues this many times more
    job_ms: float = 50.0
    deadline_s: float = 900.0


@dataclass
class Samples:
    t_s: list[float] = field(default_factory=list)
    oldest_wait_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    capacity: list[float | None] = field(default_factory=list)
    quotas: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))


def _load(plan: CanaryPlan, run: str) -> dict[str, int]:
    names = {f"canary-{run}-hot-{i}": plan.jobs * plan.hot_factor for i in range(plan.hot)}
    names |= {f"canary-{run}-small-{i}": plan.jobs for i in range(plan.workspaces - plan.hot)}
    return names


def _enqueue(app: Celery, plan: CanaryPlan, run: str, load: dict[str, int]) -> list[int]:
    ids = []
    # Round robin over workspaces, as many tenants would: no one is simply first.
    for n in range(max(load.values())):
        for workspace, count in load.items():
            if n < count:
                payload = {"run": run, "n": n, "ms": plan.job_ms}
                ids.append(enqueue(workspace, CANARY_KIND, payload, app=app).job_id)
    return ids


def _sample(rt: Runtime, samples: Samples, started: float, workspaces: list[str]) -> int:
    """Record one sample; returns how many canary jobs are not finished yet."""
    now = rt.now()
    with rt.engine.connect() as conn:
        counts = canary_metrics.status_counts(conn, workspaces)
    oldest: dict[str, float] = dict.fromkeys(workspaces, 0.0)
    open_jobs = 0
    for c in counts:
        if c.status not in TERMINAL:
            open_jobs += c.jobs
        if c.status == JobStatus.PENDING.value and c.first_run_at is not None:
            oldest[c.workspace_id] = max(0.0, (now - c.first_run_at).total_seconds())
    samples.t_s.append(round(time.monotonic() - started, 2))
    for workspace, wait in oldest.items():
        samples.oldest_wait_s[workspace].append(round(wait, 2))
    _sample_controls(rt, samples, workspaces)
    return open_jobs


def _sample_controls(rt: Runtime, samples: Samples, workspaces: list[str]) -> None:
    try:
        state = rt.control.autoscale_state()
        ladder, pins = rt.live.quotas(workspaces)
    except redis.RedisError:
        state, ladder, pins = {}, {}, {}
    samples.capacity.append(state.get("capacity"))
    base = rt.settings.tier_quotas.get("default", 16)
    for workspace in workspaces:
        samples.quotas[workspace].append(pins.get(workspace, ladder.get(workspace, base)))


def _measure(rt: Runtime, run: str, load: dict[str, int], since: datetime) -> CanaryMeasures:
    workspaces = list(load)
    with rt.engine.connect() as conn:
        measured = canary_metrics.measured(conn, workspaces, since)
    waits: dict[str, list[float]] = defaultdict(list)
    done: dict[str, int] = defaultdict(int)
    for r in measured.jobs:
        if r.started_at is not None:
            waits[r.workspace_id].append((r.started_at - r.run_at).total_seconds())
        if r.status in TERMINAL:
            done[r.workspace_id] += 1
    sends = redis.Redis.from_url(rt.settings.redis_url).hvals(sends_key(run))
    repeated = sum(int(v) - 1 for v in sends if int(v) > 1)
    all_waits = [w for ws in waits.values() for w in ws]
    return CanaryMeasures(
        queue_age_p95_s=percentile(all_waits, 0.95),
        duplicate_sends=repeated + measured.effect_races,
        stale_runs=measured.stale_runs,
        jobs_by_workspace=load,
        done_by_workspace=dict(done),
        max_wait_by_workspace={w: round(max(v), 3) for w, v in waits.items()},
    )


def run_canary(app: Celery, plan: CanaryPlan, out: Path) -> tuple[Verdict, dict[str, Any]]:
    rt = runtime_of(app)
    run = uuid.uuid4().hex[:8]
    load = _load(plan, run)
    since = rt.now() - timedelta(seconds=1)
    started = time.monotonic()
    ids = _enqueue(app, plan, run, load)
    samples = Samples()
    while (
        _sample(rt, samples, started, list(load)) and time.monotonic() - started < plan.deadline_s
    ):
        time.sleep(SAMPLE_EVERY_S)
    measures = _measure(rt, run, load, since)
    result = verdict(measures, Thresholds(queue_age_p95_s=rt.settings.queue_age_alert_s))
    report = {
        "run": run,
        "plan": asdict(plan),
        "jobs": len(ids),
        "elapsed_s": round(time.monotonic() - started, 2),
        "decision": result.decision,
        "checks": [asdict(c) for c in result.checks],
        "starved": list(result.starved),
        "measures": asdict(measures),
        "samples": {
            "t_s": samples.t_s,
            "oldest_wait_s": dict(samples.oldest_wait_s),
            "capacity": samples.capacity,
            "quotas": dict(samples.quotas),
        },
    }
    write_packet(out, report, samples)
    return result, report


def write_packet(out: Path, report: dict[str, Any], samples: Samples) -> None:
    from fairbeat.canary_plots import plot_packet

    out.mkdir(parents=True, exist_ok=True)
    (out / "canary.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    plot_packet(out, samples)
    lines = [
        f"# Canary {report['run']}: {report['decision']}",
        "",
        f"{report['jobs']} jobs over {report['plan']['workspaces']} workspaces "
        f"({report['plan']['hot']} hot), {report['elapsed_s']} s.",
        "",
        "| check | measured | limit | result |",
        "|---|---|---|---|",
        *[
            f"| {c['name']} | {c['measured']} | {c['limit']} | "
            f"{'pass' if c['passed'] else 'FAIL'} |"
            for c in report["checks"]
        ],
        "",
        f"Starved workspaces: {', '.join(report['starved']) or 'none'}.",
        "",
        "![queue age](queue_age.png)",
        "![quota rungs](quota_rungs.png)",
        "![capacity](capacity.png)",
        "",
    ]
    (out / "canary.md").write_text("\n".join(lines))
