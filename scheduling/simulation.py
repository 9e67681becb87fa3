"""A deterministic discrete-time simulation that drives the real policies.

One tick every ``step_s``: arrivals join their workspace's due list, the
autoscaler (scheduling.autoscale) sets the global capacity, the fair plan
(scheduling.fair) claims jobs into one FIFO broker queue, and worker slots take
messages from it as soon as a slot frees. Every ``window_min`` the promotion
gate (scheduling.gate) judges each high-quota workspace on the sim's own
records, measured as tasks/gate.py measures them: waits of the jobs started in
the window, failures of those finished in it, peak running concurrency.

Pure: standard library and ``scheduling`` only. All randomness comes from one
``random.Random(seed)`` drawn in a fixed order, so a seed replays byte for byte.
"""

from __future__ import annotations

import heapq
import json
import random
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

from fairbeat.scheduling.autoscale import (
    AutoscaleInputs,
    AutoscalePolicy,
    Override,
    decide_capacity,
)
from fairbeat.scheduling.fair import FairState, WorkspaceDemand, plan_fair
from fairbeat.scheduling.gate import GatePolicy, GateState, WindowMetrics, decide_gate, quota_at
from fairbeat.scheduling.quota import DEFAULT_TIER, DEFAULT_TIER_QUOTAS, tier_base
from fairbeat.scheduling.stats import percentile

# Window labels are ISO timestamps, as the real gate writes them; any fixed
# date works because the gate only compares labels with each other.
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
# A capacity entry is kept at least this often, besides every change.
CAPACITY_EVERY_S = 60


@dataclass(frozen=True)
class WorkspaceLoad:
    workspace_id: str
    rate_per_min: float  # Poisson arrivals
    tier: str = DEFAULT_TIER
    high_quota_enabled: bool = False
    burst_every_min: int = 0  # 0: no bursts; else ``burst_size`` jobs at once, mid-period
    burst_size: int = 0


@dataclass(frozen=True)
class Incident:
    start_min: int
    end_min: int
    rate: float  # probability per job: of failing, or of being sent twice
    workspace_id: str | None = None  # None: every workspace

    def hits(self, t_s: float, workspace_id: str) -> bool:
        inside = self.start_min * 60 <= t_s < self.end_min * 60
        return inside and self.workspace_id in (None, workspace_id)


@dataclass(frozen=True)
class Pin:
    start_min: int
    end_min: int
    capacity: int


# One hot tenant near what base quota 16 serves (16 running / 10 s = 96 a
# minute), so its bursts queue; five small tenants with a few jobs a minute.
DEFAULT_LOADS = (
    WorkspaceLoad("hot", 75.0, high_quota_enabled=True, burst_every_min=10, burst_size=60),
    *(WorkspaceLoad(f"small-{n}", 3.0) for n in range(1, 6)),
)
FAILURE_INCIDENT = Incident(40, 50, 0.5)
DUPLICATE_INCIDENT = Incident(93, 98, 0.1, "hot")  # inside the 90-105 gate window
AUTOSCALE = AutoscalePolicy()
GATE = GatePolicy()


@dataclass(frozen=True)
class Scenario:
    minutes: int = 120
    step_s: int = 5
    seed: int = 7
    loads: tuple[WorkspaceLoad, ...] = DEFAULT_LOADS
    # 32 slots: quota 16 leaves the hot tenant short of slots that sit idle,
    # so a rung up the ladder visibly buys it throughput.
    workers: int = 4
    concurrency: int = 8
    service_s: tuple[float, float] = (5.0, 15.0)  # uniform
    failure_rate: float = 0.01
    failure_incident: Incident = FAILURE_INCIDENT
    duplicate_incident: Incident = DUPLICATE_INCIDENT
    pin: Pin | None = None
    initial_capacity: int = 32  # the settings' default global capacity
    batch: int = 20
    partition_cap: int = 10
    window_min: int = 15
    autoscale: AutoscalePolicy = AUTOSCALE
    gate: GatePolicy = GATE


CapacityPoint = tuple[int, int, str]  # (t_s, capacity, reason_code)
AgePoint = tuple[int, float]  # (t_s, p95 wait of the jobs started in the minute before)


@dataclass(frozen=True)
class SimulationResult:
    scenario: Scenario
    capacity: tuple[CapacityPoint, ...]
    ladder: tuple[Mapping[str, Any], ...]
    queue_age: Mapping[str, tuple[AgePoint, ...]]
    summary: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        # The round trip turns tuples into lists: exactly what a JSON reader gets back.
        plain: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return plain


@dataclass
class _Minute:
    """One workspace's records for one simulated minute."""

    waits: list[float] = field(default_factory=list)
    finished: int = 0
    failed: int = 0
    duplicates: int = 0
    peak_running: int = 0


@dataclass(frozen=True)
class _Message:
    workspace_id: str
    arrived_s: float
    duplicate: bool = False  # a second send of a job: runs, but is not a job of its own


class _World:
    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.rng = random.Random(sc.seed)
        self.loads = {
            load.workspace_id: load for load in sorted(sc.loads, key=attrgetter("workspace_id"))
        }
        self.arrivals = {w: deque(_arrivals(load, sc, self.rng)) for w, load in self.loads.items()}
        self.arrived = {w: len(times) for w, times in self.arrivals.items()}
        self.due: dict[str, deque[float]] = {w: deque() for w in self.loads}
        self.minutes = {w: [_Minute() for _ in range(sc.minutes + 1)] for w in self.loads}
        self.broker: deque[_Message] = deque()
        self.running: list[tuple[float, int, _Message]] = []  # heap by end time
        self.started = 0  # tie-breaker in the heap
        self.in_flight: Counter[str] = Counter()  # claimed, not finished
        self.running_now: Counter[str] = Counter()
        self.busy_s: dict[str, float] = {}
        self.recent: deque[tuple[float, bool]] = deque()  # finished in the last minute
        self.capacity = sc.initial_capacity
        self.last_step_down: float | None = None
        self.fair = FairState()
        self.gates = {w: GateState() for w, load in self.loads.items() if load.high_quota_enabled}
        self.capacity_log: list[CapacityPoint] = []
        self.capacity_reasons: Counter[str] = Counter()
        self.ladder: list[dict[str, Any]] = []
        self.queue_age: dict[str, list[AgePoint]] = {w: [] for w in self.loads}

    def quota(self, workspace_id: str) -> int:
        base = tier_base(self.loads[workspace_id].tier, DEFAULT_TIER_QUOTAS)
        state = self.gates.get(workspace_id)
        return base if state is None else quota_at(state.rung, base, self.sc.gate)

    def minute(self, workspace_id: str, t_s: float) -> _Minute:
        return self.minutes[workspace_id][min(int(t_s // 60), self.sc.minutes)]


def _arrivals(load: WorkspaceLoad, sc: Scenario, rng: random.Random) -> list[float]:
    end = sc.minutes * 60.0
    times: list[float] = []
    t = rng.expovariate(load.rate_per_min / 60) if load.rate_per_min > 0 else end
    while t < end:
        times.append(t)
        t += rng.expovariate(load.rate_per_min / 60)
    if load.burst_every_min > 0:
        for m in range(load.burst_every_min // 2, sc.minutes, load.burst_every_min):
            times.extend([m * 60.0] * load.burst_size)
    return sorted(times)


def simulate(scenario: Scenario) -> SimulationResult:
    """Run the scenario tick by tick; the same scenario always gives the same result."""
    world = _World(scenario)
    for t in range(0, scenario.minutes * 60, scenario.step_s):
        _tick(world, t)
    return SimulationResult(
        scenario=scenario,
        capacity=tuple(world.capacity_log),
        ladder=tuple(world.ladder),
        queue_age={w: tuple(points) for w, points in world.queue_age.items()},
        summary=_summary(world),
    )


def _tick(w: _World, t: int) -> None:
    for ws, arrivals in w.arrivals.items():
        while arrivals and arrivals[0] <= t:
            w.due[ws].append(arrivals.popleft())
    _decide_capacity(w, t)
    _dispatch(w, t)
    end = t + w.sc.step_s
    _work(w, t, end)
    # Boundaries crossed in this tick, so any step_s samples every minute.
    if end // 60 > t // 60:
        _sample_queue_age(w, end // 60 * 60)
    window_s = w.sc.window_min * 60
    if end // window_s > t // window_s:
        close = end // window_s * window_s
        for ws in w.gates:
            _judge(w, ws, close - window_s, close)


def _decide_capacity(w: _World, t: int) -> None:
    pin = w.sc.pin
    pinned = pin.capacity if pin and pin.start_min * 60 <= t < pin.end_min * 60 else None
    inputs = AutoscaleInputs(
        now_s=t,
        previous=w.capacity,
        active_workspaces=_active(w, t),
        due_backlog=sum(len(d) for d in w.due.values()),
        in_flight=sum(w.in_flight.values()),
        error_rate=_error_rate(w, t),
        contention=0.0,
        last_step_down_s=w.last_step_down,
        override=Override(pin=pinned),
    )
    decision = decide_capacity(inputs, w.sc.autoscale, w.sc.concurrency)
    if decision.starts_cooldown:
        w.last_step_down = t
    last = w.capacity_log[-1] if w.capacity_log else None
    point = (t, decision.capacity, decision.reason_code)
    if last is None or last[1:] != point[1:] or t % CAPACITY_EVERY_S == 0:
        w.capacity_log.append(point)
    w.capacity_reasons[decision.reason_code] += 1
    w.capacity = decision.capacity


def _active(w: _World, t: int) -> int:
    """Workspaces with jobs due or in flight within the last minute."""
    for ws in w.loads:
        if w.due[ws] or w.in_flight[ws]:
            w.busy_s[ws] = t
    return sum(1 for busy in w.busy_s.values() if t - busy < 60)


def _error_rate(w: _World, t: int) -> float | None:
    while w.recent and w.recent[0][0] <= t - 60:
        w.recent.popleft()
    return sum(failed for _, failed in w.recent) / len(w.recent) if w.recent else None


def _dispatch(w: _World, t: int) -> None:
    demands = [
        WorkspaceDemand(ws, len(due), w.in_flight[ws], w.quota(ws))
        for ws, due in w.due.items()
        if due
    ]
    plan = plan_fair(
        demands,
        capacity=w.capacity,
        in_flight_total=sum(w.in_flight.values()),
        batch=w.sc.batch,
        partition_cap=w.sc.partition_cap,
        state=w.fair,
    )
    w.fair = plan.state
    for ws in plan.order:
        _send(w, _Message(ws, w.due[ws].popleft()), t)


def _send(w: _World, message: _Message, t: int) -> None:
    w.broker.append(message)
    w.in_flight[message.workspace_id] += 1
    incident = w.sc.duplicate_incident
    if incident.hits(t, message.workspace_id) and w.rng.random() < incident.rate:
        w.minute(message.workspace_id, t).duplicates += 1
        w.broker.append(_Message(message.workspace_id, message.arrived_s, duplicate=True))
        w.in_flight[message.workspace_id] += 1


def _work(w: _World, start: float, end: float) -> None:
    """Slots take broker messages FIFO the moment they free, until ``end``."""
    _fill(w, start)
    while w.running and w.running[0][0] < end:
        done_s, _, message = heapq.heappop(w.running)
        _finish(w, message, done_s)
        _fill(w, done_s)


def _fill(w: _World, now: float) -> None:
    while w.broker and len(w.running) < w.sc.workers * w.sc.concurrency:
        message = w.broker.popleft()
        ws = message.workspace_id
        w.running_now[ws] += 1
        record = w.minute(ws, now)
        record.peak_running = max(record.peak_running, w.running_now[ws])
        if not message.duplicate:
            record.waits.append(now - message.arrived_s)
        w.started += 1
        heapq.heappush(w.running, (now + w.rng.uniform(*w.sc.service_s), w.started, message))


def _finish(w: _World, message: _Message, now: float) -> None:
    ws = message.workspace_id
    w.in_flight[ws] -= 1
    w.running_now[ws] -= 1
    rate = w.sc.failure_incident.rate if w.sc.failure_incident.hits(now, ws) else w.sc.failure_rate
    failed = w.rng.random() < rate
    if message.duplicate:
        return
    record = w.minute(ws, now)
    record.finished += 1
    record.failed += failed
    w.recent.append((now, failed))


def _sample_queue_age(w: _World, now: int) -> None:
    for ws, points in w.queue_age.items():
        record = w.minutes[ws][now // 60 - 1]
        p95 = percentile(record.waits, 0.95)
        if p95 is not None:
            points.append((now, round(p95, 2)))
        # The next minute starts with whatever is still running.
        record = w.minutes[ws][now // 60]
        record.peak_running = max(record.peak_running, w.running_now[ws])


def _window_metrics(w: _World, ws: str, start: int, end: int) -> WindowMetrics:
    records = w.minutes[ws][start // 60 : end // 60]
    waits = [x for r in records for x in r.waits]
    finished = sum(r.finished for r in records)
    return WindowMetrics(
        jobs=len(waits) + finished,
        queue_age_p95_s=percentile(waits, 0.95),
        failure_rate=sum(r.failed for r in records) / finished if finished else None,
        contention=0.0,
        duplicates=sum(r.duplicates for r in records),
        peak_in_flight=max((r.peak_running for r in records), default=0),
    )


def _judge(w: _World, ws: str, start: int, end: int) -> None:
    load = w.loads[ws]
    verdict = decide_gate(
        workspace_id=ws,
        window=(EPOCH + timedelta(seconds=start)).isoformat(),
        high_quota_enabled=load.high_quota_enabled,
        promotion_enabled=True,
        base_quota=tier_base(load.tier, DEFAULT_TIER_QUOTAS),
        metrics=_window_metrics(w, ws, start, end),
        state=w.gates[ws],
        policy=w.sc.gate,
    )
    w.gates[ws] = verdict.state
    fields = ("window", "from_quota", "to_quota", "reason_code")
    w.ladder.append({"t_s": end, "workspace": ws, **{f: getattr(verdict, f) for f in fields}})


def _summary(w: _World) -> dict[str, Any]:
    waits = {ws: [x for r in records for x in r.waits] for ws, records in w.minutes.items()}
    small = [x for ws, xs in waits.items() if not w.loads[ws].high_quota_enabled for x in xs]
    return {
        "jobs_done": {ws: sum(r.finished - r.failed for r in rs) for ws, rs in w.minutes.items()},
        "jobs_failed": {ws: sum(r.failed for r in rs) for ws, rs in w.minutes.items()},
        "jobs_arrived": w.arrived,
        "jobs_waiting_at_end": {ws: len(w.due[ws]) + len(w.arrivals[ws]) for ws in w.loads},
        "jobs_in_flight_at_end": _unfinished(w),
        "duplicates": {ws: sum(r.duplicates for r in rs) for ws, rs in w.minutes.items()},
        "p95_wait_s": {ws: _round(percentile(xs, 0.95)) for ws, xs in waits.items()},
        "small_p95_wait_s": _round(percentile(small, 0.95)),
        "capacity_reasons": dict(sorted(w.capacity_reasons.items())),
        "ladder_reasons": dict(sorted(Counter(e["reason_code"] for e in w.ladder).items())),
        "worker_slots": w.sc.workers * w.sc.concurrency,
    }


def _unfinished(w: _World) -> dict[str, int]:
    """Claimed jobs not finished yet, second sends left out."""
    messages = [*w.broker, *(m for _, _, m in w.running)]
    return {ws: sum(m.workspace_id == ws and not m.duplicate for m in messages) for ws in w.loads}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
