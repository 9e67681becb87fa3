"""``fairbeat.dispatch``: one fair, bounded, explained dispatch run.

A run holds the dispatch lease (Redis, fenced) and a function_run row (its
window key makes a beat tick fired twice run once). It ticks while there is
work. Each tick reads the clock once and is two steps:

- ``plan_tick`` reads the signals (SQL and Redis) and decides (scheduling/);
  it writes nothing;
- ``commit`` carries the plan out: the claim, fenced by the run in SQL, the
  fan-out of the claims, the carried state, fenced by the lease in Redis,
  and the tick's report.

A run that fails does not continue itself: kicks wait out a back-off and
beat's next tick tries again.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import Celery, Task, shared_task
from redis import RedisError

from fairbeat.scheduling.autoscale import held_by
from fairbeat.scheduling.cost import CostPlan
from fairbeat.scheduling.fair import FairPlan, FairState, WorkspaceDemand, plan_fair
from fairbeat.scheduling.fleet import FleetCap
from fairbeat.scheduling.priority import class_of, plan_classes
from fairbeat.scheduling.quota import WorkspaceProfile, rate_limit_of
from fairbeat.scheduling.reasons import FLEET_SLOTS, KEY_LIMIT, LOST_CLAIM
from fairbeat.scheduling.tick import RunReport, TickReport, more_room
from fairbeat.store import class_selection, runs, selection
from fairbeat.tasks import (
    capacity,
    classes,
    fairness,
    ledger,
    pool,
    quarantine,
    quotas,
)
from fairbeat.tasks.capacity import CapacityReading
from fairbeat.tasks.fanout import fair_order, fan_out
from fairbeat.tasks.kick import KICK
from fairbeat.tasks.runtime import Runtime, runtime_of

log = logging.getLogger("fairbeat.dispatch")

BEAT = "beat"
REDIS_UNAVAILABLE = "REDIS_UNAVAILABLE"
BACKING_OFF = "BACKING_OFF"
# After a failed run, kicks wait this many dispatch intervals (at least a second).
BACKOFF_INTERVALS = 5
# The fleet's finish rate, which sizes the claims ahead, is read over this window.
FINISH_RATE_WINDOW_S = 2.0


@dataclass(frozen=True)
class PlannedTick:
    """Everything a tick read and decided; ``commit`` needs nothing else."""

    now: datetime
    started: float  # monotonic, for the tick's duration
    selected: int  # due jobs seen
    plan: FairPlan
    ladder_ok: bool
    capacity: CapacityReading
    fleet: FleetCap
    rate_limits: Mapping[str, float]
    rate_tats: Mapping[str, float] | None  # None: Redis could not say
    costs: CostPlan | None = None  # what one job of each workspace cost the plan
    # Several priority classes due: (workspace, stored class) -> jobs to claim,
    # and each class's budget; None: a one-class tick, claimed per workspace.
    slots: Mapping[class_selection.Slot, int] | None = None
    class_budgets: Mapping[str, int] | None = None


class Dispatcher:
    def __init__(self, app: Celery) -> None:
        self.app = app
        self.rt: Runtime = runtime_of(app)
        self.settings = self.rt.settings

    @property
    def lease_ms(self) -> int:
        return int(self.settings.dispatch_lease_s * 1000)

    def run(self, trigger: str) -> RunReport:
        """Take the lease and tick while there is work; a busy lease means skip."""
        with self.rt.engine.connect() as conn:
            floor = runs.max_fence(conn, "dispatch")
        redis_ok = True
        try:
            if trigger != BEAT and self.rt.live.backing_off():
                return RunReport.skip(BACKING_OFF)
            fence = self.rt.live.acquire_dispatch(self.lease_ms, floor)
            if fence is None:
                return RunReport.skip("BUSY")  # the holder will see this kick's sequence
            if trigger == KICK and not self.rt.live.unseen_kicks():
                self.rt.live.release_dispatch(fence)
                return RunReport.skip("NOTHING_NEW")
        except RedisError as exc:
            # Without Redis: no lease, so only beat ticks run, single-flighted
            # by their window key; quotas fall back to base.
            log.warning("dispatch without Redis: %s", exc, extra={"action": "dispatch.no_redis"})
            if trigger != BEAT:
                return RunReport.skip(REDIS_UNAVAILABLE)
            redis_ok, fence = False, floor + 1
        succeeded = False
        try:
            report = self._run_held(trigger, fence, redis_ok)
            succeeded = True
            return report
        finally:
            if redis_ok:
                self._release(fence, succeeded)

    def _window(self, trigger: str, fence: int, now: datetime) -> str:
        if trigger == BEAT:
            return f"beat:{math.floor(now.timestamp() / self.settings.dispatch_interval_s)}"
        return f"{trigger}:{fence}"

    def _run_held(self, trigger: str, fence: int, redis_ok: bool) -> RunReport:
        now = self.rt.now()
        window = self._window(trigger, fence, now)
        deadline = time.monotonic() + self.settings.dispatch_run_budget_s
        ticks: list[TickReport] = []
        with ledger.entry(self.rt, "dispatch", window, now, fence) as run:
            if run is None:
                return RunReport.skip("WINDOW_ALREADY_RAN")
            try:
                while self._tick_on(ticks, run, redis_ok, now, deadline):
                    now = self.rt.now()
            finally:
                run.report = RunReport.of(trigger, fence, ticks).to_dict()
        return RunReport.of(trigger, fence, ticks)

    def _tick_on(
        self,
        ticks: list[TickReport],
        run: ledger.LedgerRun,
        redis_ok: bool,
        now: datetime,
        deadline: float,
    ) -> bool:
        """One tick of a run; True when the run should tick again."""
        seq = self.rt.live.kick_seq() if redis_ok else 0
        report = self.tick(run.fence, redis_ok, run.run_id, now)
        ticks.append(report)
        if not run.heartbeat():
            return False  # declared stale, or superseded: stop
        if redis_ok:
            self.rt.live.mark_kicks_seen(seq)
        again_now = more_room(report, self.settings.claim_batch)
        kicked = redis_ok and self.rt.live.kick_seq() > seq
        if not (again_now or kicked) or time.monotonic() > deadline:
            return False
        if redis_ok and not self.rt.live.renew_dispatch(run.fence, self.lease_ms):
            return False  # superseded: stop writing
        if not again_now:
            # Let finishing jobs gather: one tick per burst of kicks.
            time.sleep(self.settings.kick_debounce_ms / 1000)
        return True

    def _release(self, fence: int, succeeded: bool) -> None:
        try:
            self.rt.live.release_dispatch(fence)
            if not succeeded:
                # A failing run that re-sent itself would fail again at once, in a
                # loop; beat's next tick is the retry.
                interval_ms = self.settings.dispatch_interval_s * 1000
                self.rt.live.back_off(int(max(1000, BACKOFF_INTERVALS * interval_ms)))
                return
            self.rt.live.clear_backoff()
            # A kick that landed after our last look would otherwise wait for beat.
            if self.rt.live.unseen_kicks():
                self.app.send_task(
                    "fairbeat.dispatch",
                    kwargs={"trigger": KICK},
                    queue=self.settings.control_queue,
                )
        except RedisError:
            pass  # the lease expires by itself

    def tick(
        self, fence: int, redis_ok: bool, run_id: int | None = None, now: datetime | None = None
    ) -> TickReport:
        """One tick at ``now``. With ``run_id`` its claims are fenced by that run
        (see runs.still_current)."""
        return self.commit(self.plan_tick(redis_ok, now or self.rt.now()), fence, redis_ok, run_id)

    def plan_tick(self, redis_ok: bool, now: datetime) -> PlannedTick:
        """Read the signals and decide; nothing is written."""
        started = time.monotonic()
        cap = self.settings.partition_cap
        names = self.settings.priority_classes
        with self.rt.engine.connect() as conn:
            read = classes.read_due(conn, now, cap + 1, names)
            due = read.due
            in_flight = selection.in_flight_by_workspace(conn)
            profiles = selection.profiles(conn, due)
            since = now - timedelta(seconds=FINISH_RATE_WINDOW_S)
            finish_rate = selection.finished_since(conn, since) / FINISH_RATE_WINDOW_S
        total_in_flight = sum(in_flight.values())
        reading = capacity.decide(
            self.rt, now.timestamp(), len(due), sum(due.values()), total_in_flight, redis_ok
        )
        fleet = capacity.fleet(self.rt, redis_ok, finish_rate)
        tier_limits = self.settings.tier_rate_limits
        limits = {w: r for w in due if (r := rate_limit_of(profiles[w], tier_limits))}
        tats = capacity.rate_tats(self.rt, limits) if redis_ok else None
        rates = capacity.rate_allowances(limits, tats, now.timestamp())
        demands, ladder_ok = self._demands(due, in_flight, profiles, rates, redis_ok)
        costs = fairness.costs(self.rt, sorted(due), redis_ok)
        demands = fairness.with_costs(demands, costs)
        bound = min(reading.decision.capacity, fleet.capacity)
        fleet_binds = fleet.capacity < reading.decision.capacity
        state = self._fair_state(redis_ok)
        options: dict[str, Any] = {
            "capacity": bound,
            "in_flight_total": total_in_flight,
            "batch": self.settings.claim_batch,
            "partition_cap": cap,
            "state": state,
            "borrow_limit": self.settings.borrow_limit,
            "capacity_reason": FLEET_SLOTS
            if fleet_binds
            else held_by(reading.decision, reading.state),
        }
        slots = budgets = None
        if read.by_class is None:
            plan = classes.keep_class_state(plan_fair(demands, **options), state)
        else:
            if not redis_ok:  # each tick starts over: at least turn through the classes
                options["state"] = dataclasses.replace(state, turn=int(now.timestamp()))
            by_class = plan_classes(
                names,
                demands,
                read.by_class,
                min_share=self.settings.priority_min_share,
                **options,
            )
            plan, budgets = by_class.plan, by_class.budgets.budgets
            slots = classes.slots(by_class.allocations, read.stored, names)
        return PlannedTick(
            now,
            started,
            sum(due.values()),
            plan,
            ladder_ok,
            reading,
            fleet,
            limits,
            tats,
            costs,
            slots,
            budgets,
        )

    def commit(
        self, planned: PlannedTick, fence: int, redis_ok: bool, run_id: int | None
    ) -> TickReport:
        """The tick's one write step: claim the plan (fenced by the run), send the
        claims, keep the carried state (fenced by the lease), report."""
        plan = planned.plan
        with self.rt.engine.begin() as conn:
            quarantine.sweep(conn, planned.now)  # dead-letter rows no claim could load
            run = (run_id, fence) if run_id is not None else None
            key_held: dict[str, int] = {}
            named = self.settings.concurrency_limits
            if planned.slots is None:
                claims = selection.claim_planned(
                    conn, planned.now, plan.allocations, run, named, key_held
                )
            else:
                claims = class_selection.claim_by_class(
                    conn, planned.now, planned.slots, run, named, key_held
                )
        names = self.settings.priority_classes
        sent, released = fan_out(self.app, fair_order(claims, plan.order, names))
        claimed = Counter(claim.workspace_id for claim in claims)
        now_s = planned.now.timestamp()
        planned_n = sum(plan.allocations.values())
        if redis_ok:  # both writes are fenced by the lease in Redis itself
            state = plan.state
            if planned.costs is not None:
                per_class = None if planned.slots is None else self._class_of
                state = fairness.settled(self.rt, state, planned.costs, claims, per_class)
            self._save_fair_state(fence, state)
            capacity.save(
                self.rt, planned.capacity, now_s, planned_n, planned_n - len(claims), fence
            )
        capacity.consume_rates(self.rt, planned.rate_limits, planned.rate_tats, claimed, now_s)
        decision = planned.capacity.decision
        if self.settings.autoscale_apply_pool and decision.capacity != planned.capacity.state.get(
            "capacity"
        ):
            pool.apply_capacity(self.app, decision.capacity)
        report = tick_report(planned, claimed, sent, released, redis_ok, sum(key_held.values()))
        if planned.class_budgets is not None:
            by_class = Counter(self._class_of(c.priority_class) for c in claims)
            report = dataclasses.replace(
                report, class_budgets=dict(planned.class_budgets), class_claimed=dict(by_class)
            )
        log.info("dispatch tick", extra={"action": "dispatch.tick", **report.to_dict()})
        return report

    def _demands(
        self,
        due: dict[str, int],
        in_flight: dict[str, int],
        profiles: dict[str, WorkspaceProfile],
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
                misconfigured=profiles[workspace].misconfigured is not None,
                ladder_fallback=resolved.quotas[workspace].ladder_fallback,
                rate_allowance=rates.get(workspace),
            )
            for workspace, n in due.items()
        ]
        return demands, resolved.ladder_available

    def _class_of(self, stored: str) -> str:
        return class_of(stored, self.settings.priority_classes)

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


def tick_report(
    planned: PlannedTick,
    claimed: Mapping[str, int],
    sent: int,
    released: int,
    redis_ok: bool,
    key_held: int = 0,
) -> TickReport:
    plan = planned.plan
    n_planned = sum(plan.allocations.values())
    n_claimed = sum(claimed.values())
    unclaimed = dict(plan.unclaimed)
    if key_held:
        unclaimed[KEY_LIMIT] = key_held
    if n_planned - key_held > n_claimed:
        unclaimed[LOST_CLAIM] = n_planned - key_held - n_claimed
    top = max(claimed.items(), key=lambda item: (item[1], item[0]), default=(None, 0))
    decision = planned.capacity.decision
    return TickReport(
        reason_code=plan.reason_code if redis_ok else REDIS_UNAVAILABLE,
        selected=planned.selected,
        planned=n_planned,
        claimed=n_claimed,
        lost_claims=n_planned - key_held - n_claimed,
        sent=sent,
        released=released,
        unclaimed=unclaimed,
        capacity=decision.capacity,
        capacity_reason=decision.reason_code,
        desired_workers=decision.desired_workers,
        fleet_capacity=planned.fleet.capacity,
        fleet_reason=planned.fleet.reason_code,
        fleet_slots=planned.fleet.slots,
        in_flight=int(plan.evidence["in_flight"]),
        workspaces_due=int(plan.evidence["workspaces_due"]),
        workspaces_served=int(plan.evidence["workspaces_served"]),
        top_workspace=top[0],
        top_workspace_share=round(top[1] / n_claimed, 4) if n_claimed else 0.0,
        ladder_available=planned.ladder_ok,
        borrowed=dict(plan.borrowed),
        cost_reason=planned.costs.reason_code if planned.costs else "",
        duration_s=round(time.monotonic() - planned.started, 4),
    )


@shared_task(name="fairbeat.dispatch", bind=True)
def dispatch(self: Task, trigger: str = BEAT) -> dict[str, object]:  # type: ignore[type-arg]
    return Dispatcher(self.app).run(trigger).to_dict()
