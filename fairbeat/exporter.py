"""``fairbeat exporter``: Prometheus metrics from SQL and Redis.

Gauges are read at scrape time (the health snapshot, quotas). Counters come
from the run ledger: each scrape reads the dispatch and maintenance reports
finished since the last one and adds them up, so they only ever grow while the
exporter runs. Per-workspace series name the top N workspaces by jobs waiting
and in flight; the rest are summed under ``workspace="other"``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import RedisError

from fairbeat.scheduling.tick import RunReport
from fairbeat.store import runs, selection
from fairbeat.tasks import quotas
from fairbeat.tasks.health import snapshot
from fairbeat.tasks.runtime import Runtime

OTHER = "other"
# The capacity guidance: about two in-flight jobs per worker slot.
IN_FLIGHT_PER_SLOT = 2


class LedgerCounters:
    """Running totals from finished dispatch and maintenance runs."""

    def __init__(self) -> None:
        self.last_id = 0
        self.totals: Counter[str] = Counter()
        self.unclaimed: Counter[str] = Counter()
        self.recovered: Counter[str] = Counter()

    def update(self, rt: Runtime) -> None:
        with rt.engine.connect() as conn:
            finished = runs.finished_after(conn, self.last_id, limit=10_000)
        for run in finished:
            self.last_id = max(self.last_id, run.id)
            self._add(run.function, run.report)

    def _add(self, function: str, report: dict[str, Any]) -> None:
        if function == "dispatch":
            run = RunReport.from_dict(report)
            self.totals["dispatch_runs"] += 1
            self.totals["dispatch_ticks"] += run.ticks
            self.totals["claimed"] += run.claimed
            self.totals["lost_claims"] += run.lost_claims
            for tick in run.last_ticks:
                self.unclaimed.update(tick.unclaimed)
        elif function == "maintenance":
            self.totals["maintenance_runs"] += 1
            self.totals["stale_runs_marked"] += len(report.get("stale_runs_marked", []))
            self.recovered.update(report.get("recovered", {}))


def _autoscale_state(rt: Runtime) -> dict[str, Any]:
    try:
        return rt.control.autoscale_state()
    except RedisError:
        return {}


def _gauge(name: str, doc: str, value: float | None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=math.nan if value is None else value)


def _top(workspaces: dict[str, dict[str, int]], n: int) -> list[str]:
    def load(w: str) -> int:
        c = workspaces[w]
        return c.get("PENDING", 0) + c.get("CLAIMED", 0) + c.get("RUNNING", 0)

    return sorted((w for w in workspaces if load(w)), key=lambda w: (-load(w), w))[:n]


class FairbeatCollector(Collector):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.ledger = LedgerCounters()

    def collect(self) -> Iterator[Metric]:
        rt = self.rt
        snap = snapshot(rt, rt.now())
        self.ledger.update(rt)
        jobs = GaugeMetricFamily("fairbeat_jobs", "Jobs by status.", labels=["status"])
        for status, n in snap["by_status"].items():
            jobs.add_metric([status], n)
        yield jobs
        yield _gauge("fairbeat_due_pending", "Due jobs waiting to be claimed.", snap["due_pending"])
        yield _gauge(
            "fairbeat_oldest_due_age_seconds",
            "Age of the oldest due job.",
            snap["oldest_due_age_s"],
        )
        yield _gauge(
            "fairbeat_queue_age_p95_seconds",
            "Queue-age p95 over the health window.",
            snap["queue_age_p95_s"],
        )
        yield _gauge("fairbeat_running", "Jobs running.", snap["running"])
        yield _gauge("fairbeat_in_flight", "Jobs claimed or running.", snap["in_flight"])
        yield _gauge(
            "fairbeat_stale_runs", "Runs silent past the stale cutoff.", snap["stale_runs"]
        )
        yield _gauge(
            "fairbeat_stale_locks", "Running jobs silent past the cutoff.", snap["stale_locks"]
        )
        yield _gauge(
            "fairbeat_failure_rate",
            "Dead letters per finished job in the window.",
            snap["failure_rate"],
        )
        yield _gauge(
            "fairbeat_duplicate_signal",
            "Duplicate deliveries and effects in the window.",
            snap["duplicate_signal"],
        )
        state = _autoscale_state(rt)
        capacity = state.get("capacity") or rt.settings.global_capacity
        slots = IN_FLIGHT_PER_SLOT * rt.settings.worker_concurrency
        yield _gauge("fairbeat_capacity", "Global in-flight capacity.", capacity)
        yield _gauge(
            "fairbeat_desired_workers",
            "Worker processes the capacity calls for.",
            state.get("desired_workers") or math.ceil(capacity / slots),
        )
        yield from self._per_workspace(snap)
        yield from self._counters()

    def _per_workspace(self, snap: dict[str, Any]) -> Iterator[Metric]:
        workspaces: dict[str, dict[str, int]] = snap["workspaces"]
        top = _top(workspaces, self.rt.settings.top_workspaces)
        with self.rt.engine.connect() as conn:
            profiles = selection.profiles(conn, top)
        resolved = quotas.resolve(self.rt, profiles, top)
        waiting = GaugeMetricFamily(
            "fairbeat_workspace_pending", "Pending jobs per workspace.", labels=["workspace"]
        )
        flight = GaugeMetricFamily(
            "fairbeat_workspace_in_flight", "In-flight jobs per workspace.", labels=["workspace"]
        )
        quota = GaugeMetricFamily(
            "fairbeat_workspace_quota",
            "In-flight quota per workspace.",
            labels=["workspace", "source"],
        )
        rung = GaugeMetricFamily(
            "fairbeat_workspace_rung",
            "Quota-ladder rung per workspace (-1: tier base).",
            labels=["workspace"],
        )
        try:
            rungs = {w: s.rung for w, s in self.rt.control.gate_states(top).items()}
        except RedisError:
            rungs = {}
        rest = Counter[str]()
        for workspace, counts in workspaces.items():
            pending = counts.get("PENDING", 0)
            in_flight = counts.get("CLAIMED", 0) + counts.get("RUNNING", 0)
            if workspace in top:
                waiting.add_metric([workspace], pending)
                flight.add_metric([workspace], in_flight)
                decision = resolved.quotas[workspace]
                quota.add_metric([workspace, decision.reason_code], decision.quota)
                if workspace in rungs:
                    rung.add_metric([workspace], rungs[workspace])
            else:
                rest.update({"pending": pending, "in_flight": in_flight})
        waiting.add_metric([OTHER], rest["pending"])
        flight.add_metric([OTHER], rest["in_flight"])
        yield from (waiting, flight, quota, rung)

    def _counters(self) -> Iterator[Metric]:
        totals = self.ledger.totals
        for key, doc in (
            ("dispatch_runs", "Dispatch runs finished."),
            ("dispatch_ticks", "Dispatch ticks."),
            ("claimed", "Jobs claimed by the dispatcher."),
            ("lost_claims", "Planned claims another claimer took first."),
            ("maintenance_runs", "Maintenance runs finished."),
            ("stale_runs_marked", "Runs declared stale."),
        ):
            yield CounterMetricFamily(f"fairbeat_{key}", doc, value=totals[key])
        unclaimed = CounterMetricFamily(
            "fairbeat_unclaimed", "Due jobs left unclaimed in a tick, by reason.", labels=["reason"]
        )
        for reason, n in sorted(self.ledger.unclaimed.items()):
            unclaimed.add_metric([reason], n)
        yield unclaimed
        recovered = CounterMetricFamily(
            "fairbeat_recovered", "Jobs recovered, by outcome.", labels=["reason"]
        )
        for reason, n in sorted(self.ledger.recovered.items()):
            recovered.add_metric([reason], n)
        yield recovered
