"""``fairbeat.dispatch``: one fair, bounded, explained dispatch run.

A run holds the dispatch lease (Redis, fenced) and a function_run row (its
window key makes a beat tick fired twice run once). It ticks while there is
work: each tick reads the signals, plans fairly (scheduling.fair), claims
the plan atomically, sends each claim to its routed queue and reports.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import Celery, Task, shared_task
from redis import RedisError

from fairbeat.scheduling.autoscale import CapacityDecision
from fairbeat.scheduling.fair import FairPlan, FairState, WorkspaceDemand, plan_fair
from fairbeat.scheduling.reasons import LOST_CLAIM
from fairbeat.scheduling.routing import route
from fairbeat.store import claiming, runs, selection
from fairbeat.store.db import autocommit
from fairbeat.tasks import capacity, limits, pool, quotas
from fairbeat.tasks.kick import KICK
from fairbeat.tasks.runtime import Runtime, runtime_of

log = logging.getLogger("fairbeat.dispatch")

BEAT = "beat"
REDIS_UNAVAILABLE = "REDIS_UNAVAILABLE"
# The function_run row keeps the last ticks of a run in its report.
REPORT_TICKS = 20


def fan_out(app: Celery, claims: list[claiming.Claim]) -> tuple[int, int]:
    """Send run(job_id, fence) for each claim; give back the claims that could not be sent."""
    rt = runtime_of(app)
    settings = rt.settings
    sent = 0
    for index, claim in enumerate(claims):
        queue = route(claim.kind, settings.routes, settings.default_queue)
        try:
            app.send_task(
                "fairbeat.run",
                args=(claim.job_id, claim.fence),
                queue=queue,
                **limits.send_options(app, claim.kind),
            )
        except Exception:
            log.exception("send failed", extra={"action": "dispatch.send_failed"})
            with rt.engine.begin() as conn:
                released = sum(claiming.release_claim(conn, c) for c in claims[index:])
            return sent, released
        sent += 1
    return sent, 0


def fair_order(claims: list[claiming.Claim], order: tuple[str, ...]) -> list[claiming.Claim]:
    """Interleave the claims as the plan ordered their workspaces."""
    queues: dict[str, list[claiming.Claim]] = defaultdict(list)
    for claim in sorted(claims, key=lambda c: c.order_key):
        queues[claim.workspace_id].append(claim)
    out = []
    for workspace in order:
        if queues[workspace]:
            out.append(queues[workspace].pop(0))
    return out


@dataclass(frozen=True)
class PlannedTick:
    now: datetime
    selected: int  # due jobs seen
    plan: FairPlan
    ladder_ok: bool
    started: float  # monotonic
    capacity: CapacityDecision
    autoscale_state: dict[str, Any]
    rate_limits: dict[str, float]


class Dispatcher:
    def __init__(self, app: Celery) -> None:
        self.app = app
        self.rt: Runtime = runtime_of(app)
        self.settings = self.rt.settings

    @property
    def lease_ms(self) -> int:
        return int(self.settings.dispatch_lease_s * 1000)

    def run(self, trigger: str) -> dict[str, Any]:
        """Take the lease and tick while there is work; a busy lease means skip."""
        with self.rt.engine.connect() as conn:
            floor = runs.max_fence(conn, "dispatch")
        redis_ok = True
        try:
            fence = self.rt.live.acquire_dispatch(self.lease_ms, floor)
            if fence is None:
                return {"skipped": "BUSY"}  # the holder will see this kick's sequence
            if trigger == KICK and not self.rt.live.unseen_kicks():
                self.rt.live.release_dispatch(fence)
                return {"skipped": "NOTHING_NEW"}
        except RedisError as exc:
            # Without Redis: no lease, so only beat ticks run, single-flighted
            # by their window key; quotas fall back to base.
            log.warning("dispatch without Redis: %s", exc, extra={"action": "dispatch.no_redis"})
            if trigger != BEAT:
                return {"skipped": REDIS_UNAVAILABLE}
            redis_ok, fence = False, floor + 1
        try:
            return self._run_held(trigger, fence, redis_ok)
        finally:
            if redis_ok:
                self._release(fence)

    def _window(self, trigger: str, fence: int) -> str:
        if trigger == BEAT:
            return f"beat:{math.floor(time.time() / self.settings.dispatch_interval_s)}"
        return f"{trigger}:{fence}"

    def _run_held(self, trigger: str, fence: int, redis_ok: bool) -> dict[str, Any]:
        with self.rt.engine.begin() as conn:
            run_id = runs.begin(
                conn, "dispatch", self._window(trigger, fence), fence, self.rt.now()
            )
        if run_id is None:
            return {"skipped": "WINDOW_ALREADY_RAN"}
        deadline = time.monotonic() + self.settings.dispatch_run_budget_s
        ticks: list[dict[str, Any]] = []
        status = runs.FAILED
        try:
            while True:
                seq = self.rt.live.kick_seq() if redis_ok else 0
                report = self.tick(fence, redis_ok, run_id)
                ticks.append(report)
                with autocommit(self.rt.engine) as conn:
                    if not runs.heartbeat(conn, run_id, fence, self.rt.now()):
                        break  # declared stale, or superseded: stop
                if redis_ok:
                    self.rt.live.mark_kicks_seen(seq)
                filled_batch = report["claimed"] == self.settings.claim_batch
                kicked = redis_ok and self.rt.live.kick_seq() > seq
                if not (filled_batch or kicked) or time.monotonic() > deadline:
                    break
                if redis_ok and not self.rt.live.renew_dispatch(fence, self.lease_ms):
                    break  # superseded: stop writing
                if not filled_batch:
                    # Let finishing jobs gather: one tick per burst of kicks.
                    time.sleep(self.settings.kick_debounce_ms / 1000)
            status = runs.SUCCEEDED
        finally:
            summary = _summary(trigger, fence, ticks)
            with self.rt.engine.begin() as conn:
                runs.finish(conn, run_id, fence, self.rt.now(), summary, status)
        return summary

    def _release(self, fence: int) -> None:
        try:
            self.rt.live.release_dispatch(fence)
            # A kick that landed after our last look would otherwise wait for beat.
            if self.rt.live.unseen_kicks():
                self.app.send_task(
                    "fairbeat.dispatch",
                    kwargs={"trigger": KICK},
                    queue=self.settings.control_queue,
                )
        except RedisError:
            pass  # the lease expires by itself

    def tick(self, fence: int, redis_ok: bool, run_id: int | None = None) -> dict[str, Any]:
        """One tick. With ``run_id`` its claims are fenced by that run (see runs.still_current)."""
        return self.carry_out(self.plan_tick(redis_ok), fence, redis_ok, run_id)

    def plan_tick(self, redis_ok: bool, now: datetime | None = None) -> PlannedTick:
        """Read the signals and decide; nothing is written yet."""
        started = time.monotonic()
        now = now or self.rt.now()
        cap = self.settings.partition_cap
        with self.rt.engine.connect() as conn:
            due = selection.due_by_workspace(conn, now, cap + 1)
            in_flight = selection.in_flight_by_workspace(conn)
            profiles = selection.profiles(conn, due)
        total_in_flight = sum(in_flight.values())
        decision, state = capacity.decide(
            self.rt, now.timestamp(), len(due), sum(due.values()), total_in_flight, redis_ok
        )
        limits = {w: r for w in due if (r := capacity.rate_limit_of(self.rt, profiles[w]))}
        rates = capacity.rate_allowances(self.rt, limits, now.timestamp())
        demands, ladder_ok = self._demands(due, in_flight, profiles, rates, redis_ok)
        plan = plan_fair(
            demands,
            capacity=decision.capacity,
            in_flight_total=total_in_flight,
            batch=self.settings.claim_batch,
            partition_cap=cap,
            state=self._fair_state(redis_ok),
            borrow_limit=self.settings.borrow_limit,
            capacity_reason=capacity.held_by(decision, state),
        )
        return PlannedTick(
            now, sum(due.values()), plan, ladder_ok, started, decision, state, limits
        )

    def carry_out(
        self, planned: PlannedTick, fence: int, redis_ok: bool, run_id: int | None
    ) -> dict[str, Any]:
        """Claim the plan (fenced by the run), send the claims, keep the carried state."""
        plan = planned.plan
        with self.rt.engine.begin() as conn:
            run = (run_id, fence) if run_id is not None else None
            claims = selection.claim_planned(conn, planned.now, plan.allocations, run)
        sent, released = fan_out(self.app, fair_order(claims, plan.order))
        claimed: dict[str, int] = defaultdict(int)
        for claim in claims:
            claimed[claim.workspace_id] += 1
        now_s = planned.now.timestamp()
        planned_n = sum(plan.allocations.values())
        if redis_ok:  # both writes are fenced by the lease in Redis itself
            self._save_fair_state(fence, plan.state)
            capacity.save(
                self.rt,
                planned.capacity,
                planned.autoscale_state,
                now_s,
                planned_n,
                planned_n - len(claims),
                fence,
            )
        capacity.consume_rates(self.rt, planned.rate_limits, claimed, now_s)
        changed = planned.capacity.capacity != planned.autoscale_state.get("capacity")
        if self.settings.autoscale_apply_pool and changed:
            pool.apply_capacity(self.app, planned.capacity.capacity)
        report = _tick_report(plan, claims, sent, released, planned.ladder_ok, redis_ok)
        report["selected"] = planned.selected
        report["capacity"] = planned.capacity.capacity
        report["capacity_reason"] = planned.capacity.reason_code
        report["desired_workers"] = planned.capacity.desired_workers
        report["borrowed"] = dict(plan.borrowed)
        report["duration_s"] = round(time.monotonic() - planned.started, 4)
        log.info("dispatch tick", extra={"action": "dispatch.tick", **report})
        return report

    def _demands(
        self,
        due: dict[str, int],
        in_flight: dict[str, int],
        profiles: dict[str, selection.WorkspaceProfile],
        rates: dict[str, int],
        redis_ok: bool,
    ) -> tuple[list[WorkspaceDemand], bool]:
        resolved = quotas.resolve(self.rt, profiles, due, redis_ok)
        demands = [
            WorkspaceDemand(
                workspace_id=workspace,
                due=n,
                in_flight=in_flight.get(workspace, 0),
                quota=resolved.quotas[workspace].quota,
                weight=resolved.weights[workspace],
                paused=profiles[workspace].paused,
                ladder_fallback=resolved.quotas[workspace].ladder_fallback,
                rate_allowance=rates.get(workspace),
            )
            for workspace, n in due.items()
        ]
        return demands, resolved.ladder_available

    def _fair_state(self, redis_ok: bool) -> FairState:
        if not redis_ok:
            return FairState()
        try:
            return self.rt.live.load_fair_state()
        except RedisError:
            return FairState()  # safe to lose: fairness restarts from even

    def _save_fair_state(self, fence: int, state: FairState) -> None:
        try:
            self.rt.live.save_fair_state(fence, state)
        except RedisError:
            log.warning("fair state not saved", extra={"action": "dispatch.state_not_saved"})


def _tick_report(
    plan: FairPlan,
    claims: list[claiming.Claim],
    sent: int,
    released: int,
    ladder_ok: bool,
    redis_ok: bool,
) -> dict[str, Any]:
    planned = sum(plan.allocations.values())
    unclaimed = dict(plan.unclaimed)
    if planned > len(claims):
        unclaimed[LOST_CLAIM] = planned - len(claims)
    per_workspace: dict[str, int] = defaultdict(int)
    for claim in claims:
        per_workspace[claim.workspace_id] += 1
    top = max(per_workspace.items(), key=lambda item: (item[1], item[0]), default=(None, 0))
    return {
        "reason_code": plan.reason_code if redis_ok else REDIS_UNAVAILABLE,
        "planned": planned,
        "claimed": len(claims),
        "lost_claims": planned - len(claims),
        "sent": sent,
        "released": released,
        "unclaimed": unclaimed,
        "capacity": plan.evidence["capacity"],
        "in_flight": plan.evidence["in_flight"],
        "workspaces_due": plan.evidence["workspaces_due"],
        "workspaces_served": plan.evidence["workspaces_served"],
        "top_workspace": top[0],
        "top_workspace_share": round(top[1] / len(claims), 4) if claims else 0.0,
        "ladder_available": ladder_ok,
    }


def _summary(trigger: str, fence: int, ticks: list[dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, int] = defaultdict(int)
    for tick in ticks:
        for field in ("claimed", "sent", "released", "lost_claims"):
            totals[field] += tick[field]
    return {
        "trigger": trigger,
        "fence": fence,
        "ticks": len(ticks),
        **totals,
        "last_ticks": ticks[-REPORT_TICKS:],
    }


@shared_task(name="fairbeat.dispatch", bind=True)
def dispatch(self: Task, trigger: str = BEAT) -> dict[str, Any]:  # type: ignore[type-arg]
    return Dispatcher(self.app).run(trigger)
