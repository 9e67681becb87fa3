"""What bench.profile reads from the running fleet, and the report it makes of two readings.

A reading is every process's bench.probe counters, each process's CPU
seconds from /proc, fairbeat's Redis server's commandstats and PostgreSQL's
per-database statistics, taken at one moment.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import budget, harness
from bench.metrics import Event, makespan

TICKS = os.sysconf("SC_CLK_TCK")
DETAIL = {
    "sql": "sql_by_statement",
    "redis_commands": "redis_by_command",
    "broker": "broker_by_kind",
}
TOP = 20  # rows of each breakdown
OWN_COMMANDS = {"INFO"}  # the readings' own, on fairbeat's Redis server
PG_STATS = (
    "xact_commit",
    "xact_rollback",
    "tup_returned",
    "tup_fetched",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
)


def proc_cpu_s(pid: int, children: bool = False) -> float:
    """CPU seconds (user + system) of ``pid``; with ``children``, of its reaped children."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # the process has gone
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    first = 13 if children else 11  # utime, stime; cutime, cstime after them
    return (int(fields[first]) + int(fields[first + 1])) / TICKS


def only_child(pid: int, timeout_s: float = 30.0) -> int:
    """The one child process of ``pid`` (the worker py-spy started), once it exists."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids = (task / "children").read_text().split()
            if kids:
                return int(kids[0])
        time.sleep(0.05)
    raise RuntimeError(f"process {pid} started no child within {timeout_s} s")


@dataclass
class Reading:
    at: float
    snapshots: list[dict[str, Any]]
    cpu: dict[str, dict[str, float]]  # group -> {pid: seconds}
    redis_calls: dict[str, float]
    pg: dict[str, float]


@dataclass
class Source:
    """Where the readings come from: the probe files, the worker, Redis, the database."""

    probe_dir: Path
    worker_pid: int
    redis_url: str
    database_url: str
    driver_pid: int = field(default_factory=os.getpid)

    def __post_init__(self) -> None:
        # Opened once, before the first reading, so that their set-up is not counted.
        self.redis = redis.Redis.from_url(self.redis_url)
        self.admin = create_engine(harness.PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self._pg()
        self._redis()

    def _snapshots(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.probe_dir.glob("*.json"))]

    def _redis(self) -> tuple[dict[str, float], int]:
        client = self.redis
        stats = client.info("commandstats")
        calls = {
            key.removeprefix("cmdstat_").upper(): float(v["calls"]) for key, v in stats.items()
        }
        return calls, int(client.info("server")["process_id"])

    def _pg(self) -> tuple[dict[str, float], list[int]]:
        name = make_url(self.database_url).database
        with self.admin.connect() as conn:
            cols = ", ".join(PG_STATS)
            query = f"SELECT {cols} FROM pg_stat_database WHERE datname = :n"
            row = conn.execute(text(query), {"n": name}).one()
            pids = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            ).scalars()
            return dict(zip(PG_STATS, map(float, row), strict=True)), list(pids)

    def _cpu(
        self, snapshots: list[dict[str, Any]], redis_pid: int, pg_pids: list[int]
    ) -> dict[str, dict[str, float]]:
        groups: dict[str, list[int]] = {role: [] for role in budget.ROLES}
        for snapshot in snapshots:
            role = budget.role_of(snapshot, self.driver_pid)
            if role in groups and snapshot["pid"] != self.worker_pid:
                groups[role].append(int(snapshot["pid"]))
        groups["worker_main"] = [self.worker_pid]
        cpu = {role: {str(p): proc_cpu_s(p) for p in pids} for role, pids in groups.items()}
        # Children that exited were reaped by the worker's main process.
        cpu["worker_children"]["reaped"] = proc_cpu_s(self.worker_pid, children=True)
        cpu["redis_server"] = {str(redis_pid): proc_cpu_s(redis_pid)}
        cpu["postgres_backends"] = {str(p): proc_cpu_s(p) for p in pg_pids}
        return cpu

    def read(self, settle_s: float) -> Reading:
        time.sleep(settle_s)
        snapshots = self._snapshots()
        calls, redis_pid = self._redis()
        pg, pg_pids = self._pg()
        cpu = self._cpu(snapshots, redis_pid, pg_pids)
        return Reading(time.monotonic(), snapshots, cpu, calls, pg)


def _without_own_reads(counts: Mapping[str, float]) -> dict[str, float]:
    """The readings' INFO commands belong to the profile, not to fairbeat."""
    return {k: v for k, v in counts.items() if k.split("|")[-1] not in OWN_COMMANDS}


@dataclass(frozen=True)
class Window:
    """Two readings and what the report divides by: jobs, or seconds when idle."""

    before: Reading
    after: Reading
    driver_pid: int
    redis_port: str

    def family(self, family: str) -> dict[str, dict[str, float]]:
        """Per role, the ``task|key`` counters of ``family`` gained in the window."""
        deltas = budget.family_delta(
            self.before.snapshots, self.after.snapshots, self.driver_pid, family
        )
        out = {}
        for role, counts in deltas.items():
            kept = _without_own_reads(counts)
            if family.startswith("redis"):  # fairbeat's server only, key without the port
                kept = {
                    f"{k.split('|')[0]}|{k.split('|', 2)[-1]}": v
                    for k, v in kept.items()
                    if k.split("|")[1] == self.redis_port
                }
            out[role] = kept
        return out


def _sql_round_trips(counts: Mapping[str, float]) -> float:
    return sum(v for k, v in counts.items() if not k.endswith("(new connection)"))


def _totals(window: Window, role: str, jobs: float) -> dict[str, float]:
    sql = window.family("sql").get(role, {})
    transactions = window.family("sql_transactions").get(role, {})
    trips = window.family("redis_round_trips").get(role, {})
    commands = window.family("redis_commands").get(role, {})
    broker = window.family("broker").get(role, {})
    return {
        "sql_round_trips": round(_sql_round_trips(sql) / jobs, 3),
        "sql_transactions": round(budget.total(transactions) / jobs, 3),
        "redis_round_trips": round(budget.total(trips) / jobs, 3),
        "redis_commands": round(budget.total(commands) / jobs, 3),
        "broker_messages": round(budget.total(broker) / jobs, 3),
    }


def _per_role(window: Window, jobs: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    cpu = budget.cpu_ms_per_job(_cpu_totals(window.before), _cpu_totals(window.after), jobs)
    for role in budget.ROLES:
        detail = {
            name: dict(list(budget.per_job(budget.regroup(counts, 1), jobs).items())[:TOP])
            for family, name in DETAIL.items()
            if (counts := window.family(family).get(role))
        }
        out[role] = {**_totals(window, role, jobs), "cpu_ms": cpu.get(role, 0.0), **detail}
    return out


def _by_task(window: Window, jobs: int) -> dict[str, dict[str, float]]:
    """The worker children's counts split by the task that was running."""
    out: dict[str, dict[str, float]] = {}
    runs = budget.count_delta(
        _children_sum(window.before, "tasks"), _children_sum(window.after, "tasks")
    )
    families = {f: window.family(f).get("worker_children", {}) for f in ("sql", "broker")}
    trips = window.family("redis_round_trips").get("worker_children", {})
    for task in sorted({k.split("|")[0] for f in (*families.values(), trips) for k in f}):
        sql = {k: v for k, v in families["sql"].items() if k.startswith(f"{task}|")}
        out[task] = {
            "runs": round(runs.get(task, 0.0) / jobs, 3),
            "sql_round_trips": round(_sql_round_trips(sql) / jobs, 3),
            "redis_round_trips": round(
                sum(v for k, v in trips.items() if k.startswith(f"{task}|")) / jobs, 3
            ),
            "broker_messages": round(
                sum(v for k, v in families["broker"].items() if k.startswith(f"{task}|")) / jobs, 3
            ),
        }
    return out


def _children_sum(reading: Reading, family: str) -> dict[str, float]:
    out: Counter[str] = Counter()
    for snapshot in reading.snapshots:
        if snapshot["forked"]:
            out.update(snapshot["counts"].get(family, {}))
    return dict(out)


def _cpu_totals(reading: Reading) -> dict[str, float]:
    return {group: sum(pids.values()) for group, pids in reading.cpu.items()}


def _client_transactions(window: Window) -> float:
    return sum(budget.total(c) for c in window.family("sql_transactions").values())


def _server(burst: Window, tail: Window, jobs: int) -> dict[str, Any]:
    """The servers' own counts over the burst: Redis's at once, PostgreSQL's once settled.

    PostgreSQL publishes a backend's statistics up to 10 s late, so its
    counts are read after the tail and the tail's transactions (as counted
    by the probes) taken off.
    """
    calls = budget.count_delta(burst.before.redis_calls, burst.after.redis_calls)
    calls = {k: v for k, v in calls.items() if k not in OWN_COMMANDS}
    pg = budget.count_delta(burst.before.pg, tail.after.pg)
    transactions = pg["xact_commit"] + pg["xact_rollback"] - _client_transactions(tail)
    return {
        "redis_commands_per_job": round(budget.total(calls) / jobs, 3),
        "redis_commands": dict(list(budget.per_job(calls, jobs).items())[:TOP]),
        "pg_transactions_per_job": round(transactions / jobs, 3),
        "probes_transactions_per_job": round(_client_transactions(burst) / jobs, 3),
        "pg_rows_per_job_with_tail": budget.per_job(
            {k: v for k, v in pg.items() if "tup" in k}, jobs
        ),
    }


def report(
    jobs: int,
    taken: Sequence[Reading],
    events: Sequence[Event],
    context: tuple[int, str, int, str],
) -> dict[str, Any]:
    """The budget: per job over the burst (first enqueue to last finish), per second when
    idle, and the worker children's slot time."""
    idle_start, burst_start, burst_end, settled = taken
    driver_pid, redis_port, slots, run_task = context
    burst = Window(burst_start, burst_end, driver_pid, redis_port)
    idle = Window(idle_start, burst_start, driver_pid, redis_port)
    tail = Window(burst_end, settled, driver_pid, redis_port)
    idle_s = burst_start.at - idle_start.at
    task_s = budget.count_delta(
        _children_sum(burst.before, "task_s"), _children_sum(burst.after, "task_s")
    )
    handler_s = sum(float(e["end"]) - float(e["start"]) for e in events)
    return {
        "burst_makespan_s": round(makespan(events), 3),
        "window_s": round(burst_end.at - burst_start.at, 3),
        "per_job": _per_role(burst, jobs),
        "worker_children_by_task": _by_task(burst, jobs),
        "server": _server(burst, tail, jobs),
        # Also Redis's server process and the database's backends (those alive at a reading).
        "cpu_ms_per_job": budget.cpu_ms_per_job(
            _cpu_totals(burst.before), _cpu_totals(burst.after), jobs
        ),
        "idle_per_s": {role: _totals(idle, role, idle_s) for role in budget.ROLES},
        "slot_time": budget.slot_time(slots, makespan(events), handler_s, task_s, run_task),
    }
