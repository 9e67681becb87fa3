"""The job lifecycle as a state machine, on a real database, with a stepped clock.

Hypothesis drives enqueue, claim, deliver (fresh, stale, forged and repeated
messages), worker crashes and zombies, finishes that mirror ``tasks.run``,
``once(key)`` effects through the product's own ``JobContext``, maintenance
recovery (also as a stale scan applied later, as ``tasks.maintenance`` reads
and then writes), operator cancel and retry, and the clock. After every step
the whole job table is read back and checked against
``scheduling.jobstate.TRANSITIONS`` and the fencing rules.

Each example gets a fresh SQLite file, migrated with ``store.migrate``. The
regression tests below drive the same machine by hand, on both databases.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, func, select

from fairbeat.scheduling.jobstate import TERMINAL, JobStatus, can_move
from fairbeat.scheduling.recovery import recover_running
from fairbeat.scheduling.retry import RetryPolicy, decide_retry
from fairbeat.store import claiming, effects, job_queries, migrate, new_jobs, recovery, transitions
from fairbeat.store.db import autocommit, make_engine
from fairbeat.store.models import job_effect_table, job_table
from fairbeat.tasks.context import JobContext
from fairbeat.tasks.errors import LeaseLost
from fairbeat.tasks.runtime import Runtime
from fairbeat.tasks.settings import Settings

PENDING, CLAIMED, RUNNING = JobStatus.PENDING, JobStatus.CLAIMED, JobStatus.RUNNING
SUCCEEDED, FAILED, CANCELLED = JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
WORKSPACES = ("a", "b")
DEDUPE_KEYS = ("order-1", "order-2")
EFFECT_KEYS = ("send:1", "send:2")
POLICY = RetryPolicy(base_s=1.0, cap_s=30.0)
# As in tasks.maintenance: RUNNING silent this long, CLAIMED unstarted this long.
STALE_AFTER = timedelta(seconds=900)
DELIVERY_TIMEOUT = timedelta(seconds=300)
ANY = st.integers(min_value=0, max_value=10_000)  # an index, taken modulo the choices

# Which status changes each step may cause; each must also be in TRANSITIONS.
MAY_MOVE: dict[str, frozenset[tuple[JobStatus, JobStatus]]] = {
    "claim": frozenset({(PENDING, CLAIMED)}),
    "release": frozenset({(CLAIMED, PENDING)}),
    "deliver": frozenset({(CLAIMED, RUNNING)}),
    "finish": frozenset({(RUNNING, SUCCEEDED), (RUNNING, PENDING), (RUNNING, FAILED)}),
    "recover": frozenset({(RUNNING, PENDING), (RUNNING, FAILED), (CLAIMED, PENDING)}),
    "cancel": frozenset({(PENDING, CANCELLED), (CLAIMED, CANCELLED), (RUNNING, CANCELLED)}),
    "retry_dead": frozenset({(FAILED, PENDING)}),
}


class WorkerCrashed(Exception):
    """The worker process died right after the effect, before its record committed."""


@dataclass(frozen=True)
class Row:
    """What the machine last read of one job."""

    status: JobStatus
    fence: int
    attempts: int
    max_attempts: int
    workspace_id: str
    run_at: datetime
    claimed_at: datetime | None
    locked_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Worker:
    """A worker process that started (job_id, fence); it may since have lost the job."""

    name: str
    job_id: int
    fence: int
    attempt: int
    max_attempts: int
    workspace_id: str


@dataclass(frozen=True)
class Scan:
    """A maintenance run's read of the silent jobs, not yet acted on."""

    silent: list[recovery.SilentJob]
    locked_before: datetime
    now: datetime


class SteppedRuntime(Runtime):
    """The product's runtime on the machine's engine and clock, for ``JobContext.once``."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        super().__init__(Settings.model_construct(database_url=str(engine.url)))
        self._stepped_engine = engine
        self._clock = clock

    @property
    def engine(self) -> Engine:
        return self._stepped_engine

    def now(self) -> datetime:  # type: ignore[override]  # the stepped clock, not the wall
        return self._clock()


def migrated_sqlite(directory: Path) -> Engine:
    engine = make_engine(f"sqlite:///{directory / f'machine-{uuid.uuid4().hex}.db'}")
    migrate.upgrade(engine)
    return engine


class JobLifecycle(RuleBasedStateMachine):
    """Rules are bundle-free (indices into the machine's own lists), so tests can drive it."""

    # Set before Hypothesis builds machines: where each example's database goes.
    directory: Path | None = None

    def __init__(self, engine: Engine | None = None) -> None:
        super().__init__()
        self.owns_engine = engine is None
        if engine is None:
            assert self.directory is not None
            engine = migrated_sqlite(self.directory)
        self.engine = engine
        self.now = T0
        self.runtime = SteppedRuntime(engine, lambda: self.now)
        self.rows: dict[int, Row] = {}
        self.succeeded: dict[int, Row] = {}  # the row as first seen SUCCEEDED
        self.dedupe: dict[tuple[str, str], int] = {}
        self.outbox: list[tuple[int, int]] = []  # (job_id, fence) sent, not delivered yet
        self.delivered: list[tuple[int, int]] = []  # messages a worker received at least once
        self.started: set[tuple[int, int]] = set()
        self.claims: list[claiming.Claim] = []
        self.workers: list[Worker] = []  # alive, holding a run they started (maybe lost since)
        self.scan: Scan | None = None
        self.executions: Counter[tuple[str, str]] = Counter()  # the test's own effect ledger
        self.crash_windows: Counter[tuple[str, str]] = Counter()
        self.spawned = 0
        self.action = "start"

    def teardown(self) -> None:
        if self.owns_engine:
            path = self.engine.url.database
            self.engine.dispose()
            if path:
                for suffix in ("", "-wal", "-shm"):
                    Path(path + suffix).unlink(missing_ok=True)

    # -- what happened, for the invariant ------------------------------------------------

    def _done(self, action: str) -> None:
        """Every step, also each part of a compound rule, is checked as it ends."""
        self.action = action
        self.table_follows_the_rules()

    def _holds(self, worker: Worker) -> bool:
        row = self.rows[worker.job_id]
        return row.status == RUNNING and row.fence == worker.fence

    # -- producers and the dispatcher -----------------------------------------------------

    def add_job(
        self, workspace: str, max_attempts: int = 3, delay_s: int = 0, dedupe_key: str | None = None
    ) -> int:
        new = new_jobs.NewJob(
            workspace_id=workspace,
            kind="test.noop",
            payload={},
            run_at=self.now + timedelta(seconds=delay_s),
            priority=0,
            max_attempts=max_attempts,
            dedupe_key=dedupe_key,
            created_at=self.now,
        )
        with self.engine.begin() as conn:
            job_id, created = new_jobs.insert_job(conn, new)
        known = self.dedupe.get((workspace, dedupe_key)) if dedupe_key else None
        # The same dedupe key in a workspace names the one job it made; nothing else does.
        assert created == (known is None)
        assert created or job_id == known
        if created:
            assert job_id not in self.rows
            if dedupe_key:
                self.dedupe[(workspace, dedupe_key)] = job_id
        self._done("enqueue")
        return job_id

    @initialize(
        backlog=st.lists(
            st.tuples(st.sampled_from(WORKSPACES), st.integers(min_value=1, max_value=3)),
            min_size=1,
            max_size=4,
        )
    )
    def some_jobs(self, backlog: list[tuple[str, int]]) -> None:
        for workspace, max_attempts in backlog:
            self.add_job(workspace, max_attempts)

    @rule(
        workspace=st.sampled_from(WORKSPACES),
        max_attempts=st.integers(min_value=1, max_value=3),
        delay_s=st.sampled_from([0, 0, 30, 600]),
        dedupe_key=st.none() | st.sampled_from(DEDUPE_KEYS),
    )
    def enqueue(
        self, workspace: str, max_attempts: int, delay_s: int, dedupe_key: str | None
    ) -> None:
        self.add_job(workspace, max_attempts, delay_s, dedupe_key)

    def claim_due(self, limit: int = 10) -> list[claiming.Claim]:
        due = sorted(
            (row.run_at, job_id)
            for job_id, row in self.rows.items()
            if row.status == PENDING and row.run_at <= self.now
        )
        with self.engine.begin() as conn:
            claims = claiming.claim_oldest_due(conn, self.now, limit)
        # Exactly the oldest due jobs, each fenced one higher than before.
        assert sorted(c.job_id for c in claims) == sorted(job_id for _, job_id in due[:limit])
        for claim in claims:
            assert claim.fence == self.rows[claim.job_id].fence + 1
            self.outbox.append((claim.job_id, claim.fence))
        self.claims.extend(claims)
        self._done("claim")
        return claims

    @rule(limit=st.integers(min_value=1, max_value=3), delivered_at_once=st.booleans())
    def claim(self, limit: int, delivered_at_once: bool) -> None:
        """A dispatch tick; on the happy path the broker hands its messages out at once."""
        self.claim_due(limit)
        if delivered_at_once:
            while self.outbox:
                self.deliver_message(*self.outbox.pop(0))

    @precondition(lambda self: self.claims)
    @rule(i=ANY)
    def release(self, i: int) -> None:
        """The dispatcher could not send a claim's message and gives it back."""
        claim = self.claims[-1 - i % len(self.claims)]
        row = self.rows[claim.job_id]
        expected = row.status == CLAIMED and row.fence == claim.fence
        with self.engine.begin() as conn:
            assert claiming.release_claim(conn, claim) == expected
        self._done("release")

    # -- deliveries -------------------------------------------------------------------------

    def deliver_message(self, job_id: int, fence: int) -> Worker | None:
        """What ``tasks.run`` does with a (job_id, fence) message: start it, or count the drop."""
        before = self.rows[job_id]
        name = f"worker-{self.spawned}"
        self.spawned += 1
        with autocommit(self.engine) as conn:
            started = transitions.start(conn, job_id, fence, self.now, name)
            dropped = (
                None
                if started
                else transitions.record_dropped_delivery(conn, job_id, fence, self.now)
            )
        if (job_id, fence) not in self.delivered:
            self.delivered.append((job_id, fence))
        if before.status == CLAIMED and before.fence == fence:
            assert started is not None, f"the current claim {job_id}/{fence} did not start"
            assert (job_id, fence) not in self.started
            assert started.attempt == before.attempts + 1
            self.started.add((job_id, fence))
            worker = Worker(
                name, job_id, fence, started.attempt, started.max_attempts, started.workspace_id
            )
            self.workers.append(worker)
            self._done("deliver")
            return worker
        # A stale, forged or repeated message never starts anything, and says why.
        assert started is None, f"message {job_id}/{fence} started job at {before}"
        if fence != before.fence:
            assert dropped == transitions.STALE_FENCE
        elif (job_id, fence) in self.started:
            assert dropped in (transitions.REPEATED_DELIVERY, transitions.NOT_CLAIMED)
        else:  # the current fence, never started: the claim was given back or cancelled
            assert before.status in (PENDING, CANCELLED)
            assert dropped == transitions.NOT_CLAIMED
        self._done("deliver")
        return None

    @precondition(lambda self: self.outbox)
    @rule(i=ANY)
    def deliver(self, i: int) -> None:
        """The broker hands a worker a message it has not delivered yet, in any order."""
        self.deliver_message(*self.outbox.pop(i % len(self.outbox)))

    @precondition(lambda self: self.delivered)
    @rule(i=ANY)
    def redeliver(self, i: int) -> None:
        """The broker delivers a message again (acks late: a worker died holding it)."""
        self.deliver_message(*self.delivered[i % len(self.delivered)])

    @precondition(lambda self: self.rows)
    @rule(i=ANY, offset=st.integers(min_value=-2, max_value=1))
    def deliver_any_fence(self, i: int, offset: int) -> None:
        """A message with a fence near the job's current one: old, current or never issued."""
        job_id = sorted(self.rows)[i % len(self.rows)]
        self.deliver_message(job_id, self.rows[job_id].fence + offset)

    # -- workers ------------------------------------------------------------------------------

    def finish_worker(self, worker: Worker, outcome: str) -> bool:
        """How ``tasks.run`` finishes: succeed, or retry/dead-letter as ``decide_retry`` says."""
        self.workers.remove(worker)
        expected = self._holds(worker)
        with autocommit(self.engine) as conn:
            if outcome == "ok":
                done = transitions.succeed(conn, worker.job_id, worker.fence, self.now)
            else:
                decision = decide_retry(
                    job_id=worker.job_id,
                    attempt=worker.max_attempts if outcome == "permanent" else worker.attempt,
                    max_attempts=worker.max_attempts,
                    policy=POLICY,
                )
                if decision.retry:
                    run_at = self.now + timedelta(seconds=decision.delay_s)
                    done = transitions.retry_later(
                        conn, worker.job_id, worker.fence, run_at, "boom"
                    )
                else:
                    done = transitions.fail(conn, worker.job_id, worker.fence, self.now, "boom")
        # A worker that lost its job (recovered, re-claimed, cancelled) finishes nothing.
        assert done == expected
        self._done("finish")
        return done

    @precondition(lambda self: self.workers)
    @rule(i=ANY, outcome=st.sampled_from(["ok", "error", "permanent"]))
    def finish(self, i: int, outcome: str) -> None:
        self.finish_worker(self.workers[i % len(self.workers)], outcome)

    @precondition(lambda self: self.workers)
    @rule(i=ANY)
    def heartbeat(self, i: int) -> None:
        worker = self.workers[i % len(self.workers)]
        expected = self._holds(worker)
        with autocommit(self.engine) as conn:
            assert transitions.heartbeat(conn, worker.job_id, worker.fence, self.now) == expected
        self._done("heartbeat")

    def crash_worker(self, worker: Worker) -> None:
        """The process dies: nothing happens to the row; its message may come again."""
        self.workers.remove(worker)
        self._done("crash")

    @precondition(lambda self: self.workers)
    @rule(i=ANY)
    def crash(self, i: int) -> None:
        self.crash_worker(self.workers[i % len(self.workers)])

    def run_once(self, worker: Worker, key: str, crash_after_effect: bool = False) -> str:
        """``once(key)`` in the worker's job; the effect counts itself in the test's ledger."""
        ledger_key = (worker.workspace_id, key)
        with self.engine.connect() as conn:
            prior = effects.recorded(conn, worker.workspace_id, key)
        expected_lease = self._holds(worker)
        ctx = JobContext(
            job_id=worker.job_id,
            workspace_id=worker.workspace_id,
            kind="test.noop",
            attempt=worker.attempt,
            max_attempts=worker.max_attempts,
            fence=worker.fence,
            runtime=self.runtime,
        )

        def effect() -> str:
            self.executions[ledger_key] += 1
            if crash_after_effect:
                raise WorkerCrashed(worker.name)
            return worker.name

        executed_before = self.executions[ledger_key]
        value: Any = None
        try:
            value = ctx.once(key, effect)
            outcome = "done"
        except LeaseLost:
            outcome = "lease_lost"
        except WorkerCrashed:
            outcome = "crashed"
            self.crash_windows[ledger_key] += 1
            self.workers.remove(worker)
        ran = self.executions[ledger_key] - executed_before
        if not effects.is_missing(prior):
            # Done before: the recorded result comes back and the effect does not run.
            assert (outcome, ran, value) == ("done", 0, prior)
        elif not expected_lease:
            # A run that lost its job never starts the effect.
            assert (outcome, ran) == ("lease_lost", 0)
        else:
            assert ran == 1
            assert outcome == ("crashed" if crash_after_effect else "done")
        self._done("effect")
        return outcome

    @precondition(lambda self: self.workers)
    @rule(i=ANY, key=st.sampled_from(EFFECT_KEYS), crash_after_effect=st.booleans())
    def once_effect(self, i: int, key: str, crash_after_effect: bool) -> None:
        self.run_once(self.workers[i % len(self.workers)], key, crash_after_effect)

    # -- maintenance and operators ------------------------------------------------------

    def _cutoff(self, everything: bool, after: timedelta) -> datetime:
        return self.now + timedelta(seconds=1) if everything else self.now - after

    def scan_silent(self, everything: bool = True) -> Scan:
        locked_before = self._cutoff(everything, STALE_AFTER)
        with self.engine.connect() as conn:
            silent = recovery.silent_running(conn, locked_before)
        expected = {
            job_id
            for job_id, row in self.rows.items()
            if row.status == RUNNING and row.locked_at is not None and row.locked_at < locked_before
        }
        assert {s.job_id for s in silent} == expected
        self.scan = Scan(silent, locked_before, self.now)
        self._done("scan")
        return self.scan

    def apply_scan(self) -> None:
        """Act on the scan, as maintenance does, even if the jobs moved on since."""
        assert self.scan is not None
        scan, self.scan = self.scan, None
        for silent in scan.silent:
            row = self.rows[silent.job_id]
            still_silent = (
                row.status == RUNNING
                and row.fence == silent.fence
                and row.locked_at is not None
                and row.locked_at < scan.locked_before
            )
            decision = recover_running(attempts=silent.attempts, max_attempts=silent.max_attempts)
            with autocommit(self.engine) as conn:
                moved = recovery.recover(
                    conn, silent, decision.to_status, scan.locked_before, scan.now, "lost"
                )
            # A job that finished, heartbeated or was claimed again since is left alone.
            assert moved == still_silent
            if moved:
                assert silent.attempts == row.attempts
        self._done("recover")

    def requeue(self, everything: bool = True) -> list[int]:
        claimed_before = self._cutoff(everything, DELIVERY_TIMEOUT)
        expected = sorted(
            job_id
            for job_id, row in self.rows.items()
            if row.status == CLAIMED
            and row.claimed_at is not None
            and row.claimed_at < claimed_before
        )
        with self.engine.begin() as conn:
            requeued = recovery.requeue_undelivered(conn, claimed_before)
        assert sorted(requeued) == expected
        self._done("recover")
        return requeued

    def maintain(self, everything: bool = True) -> None:
        """One maintenance run: silent RUNNING jobs recovered, unstarted claims requeued."""
        self.scan_silent(everything)
        self.apply_scan()
        self.requeue(everything)

    @rule(everything=st.booleans())
    def recover(self, everything: bool) -> None:
        self.maintain(everything)

    @rule(everything=st.booleans())
    def slow_maintenance(self, everything: bool) -> None:
        """Maintenance reads the silent jobs in one step and acts on them in a later one."""
        if self.scan is None:
            self.scan_silent(everything)
        else:
            self.apply_scan()

    def cancel(self, job_id: int) -> None:
        expected = [job_id] if self.rows[job_id].status in (PENDING, CLAIMED, RUNNING) else []
        with self.engine.begin() as conn:
            cancelled = job_queries.cancel(conn, [job_id], self.now, who="chaos", why="test")
            assert cancelled == expected
        self._done("cancel")

    def retry_dead(self, job_id: int) -> None:
        expected = [job_id] if self.rows[job_id].status == FAILED else []
        with self.engine.begin() as conn:
            assert job_queries.retry_dead(conn, self.now, [job_id], None) == expected
        self._done("retry_dead")

    @precondition(lambda self: self.rows)
    @rule(i=ANY, retry=st.booleans())
    def operator(self, i: int, retry: bool) -> None:
        """``fairbeat jobs cancel`` or ``fairbeat jobs retry`` on any job."""
        job_id = sorted(self.rows)[i % len(self.rows)]
        (self.retry_dead if retry else self.cancel)(job_id)

    @rule(seconds=st.sampled_from([1, 30, 301, 901]) | st.integers(min_value=1, max_value=2000))
    def advance_clock(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)
        self._done("clock")

    # -- the invariant ---------------------------------------------------------------------

    def _read(self) -> tuple[dict[int, Row], dict[tuple[str, str], int], int]:
        with self.engine.connect() as conn:
            rows = {
                int(r.id): Row(
                    JobStatus(r.status),
                    r.fence,
                    r.attempts,
                    r.max_attempts,
                    r.workspace_id,
                    r.run_at,
                    r.claimed_at,
                    r.locked_at,
                    r.finished_at,
                )
                for r in conn.execute(select(job_table))
            }
            recorded = {
                (r.workspace_id, r.effect_key): int(r.n)
                for r in conn.execute(
                    select(
                        job_effect_table.c.workspace_id,
                        job_effect_table.c.effect_key,
                        func.count().label("n"),
                    ).group_by(job_effect_table.c.workspace_id, job_effect_table.c.effect_key)
                )
            }
            counted = sum(job_queries.count_by_status(conn).values())
        return rows, recorded, counted

    @invariant()
    def table_follows_the_rules(self) -> None:
        rows, recorded, counted = self._read()
        # Every committed job is in exactly one status (JobStatus() refused any other).
        assert counted == len(rows)
        assert set(self.rows) <= set(rows), "a job disappeared"
        for job_id, row in rows.items():
            self._check_change(job_id, self.rows.get(job_id), row)
            self._check_row(job_id, row)
        # A job is RUNNING for at most one fence: one live run at most can act on it.
        holders = Counter(
            w.job_id
            for w in self.workers
            if rows[w.job_id].status == RUNNING and rows[w.job_id].fence == w.fence
        )
        assert all(n == 1 for n in holders.values()), holders
        # The effects ledger holds each key once; an effect ran more than once only
        # when a worker died between running it and recording it.
        assert all(n == 1 for n in recorded.values()), recorded
        for key, n in self.executions.items():
            assert n <= 1 + self.crash_windows[key], (key, n, self.crash_windows[key])
            if n:
                assert key in recorded or self.crash_windows[key] >= n
        self.rows = rows

    def _check_change(self, job_id: int, before: Row | None, row: Row) -> None:
        if before is None:
            assert self.action == "enqueue", f"job {job_id} appeared on {self.action}"
            assert (row.status, row.fence, row.attempts) == (PENDING, 0, 0)
            return
        move = (before.status, row.status)
        if row.status != before.status:
            assert can_move(*move), f"job {job_id}: {move} is not in TRANSITIONS"
            assert move in MAY_MOVE.get(self.action, frozenset()), (
                f"job {job_id}: {move} on {self.action}"
            )
        # Fences never decrease: each claim and each cancel raises one by one (a
        # cancel takes the fence from any attempt), nothing else changes it.
        raised = move == (PENDING, CLAIMED) or (
            self.action == "cancel" and row.status != before.status
        )
        assert row.fence == before.fence + (1 if raised else 0), (job_id, move)
        # A start uses an attempt; an operator's retry of a dead letter resets them.
        if move == (CLAIMED, RUNNING):
            assert row.attempts == before.attempts + 1
        elif move == (FAILED, PENDING):
            assert row.attempts == 0
        else:
            assert row.attempts == before.attempts, (job_id, move)
        if job_id in self.succeeded:
            frozen = self.succeeded[job_id]
            assert (row.status, row.fence, row.finished_at, row.attempts) == (
                frozen.status,
                frozen.fence,
                frozen.finished_at,
                frozen.attempts,
            ), f"SUCCEEDED job {job_id} changed on {self.action}"
        elif row.status == SUCCEEDED:
            self.succeeded[job_id] = row

    def _check_row(self, job_id: int, row: Row) -> None:
        # Starts are the only use of an attempt, and no job is started again once
        # max_attempts are used (retry and recovery dead-letter it instead), so:
        assert row.attempts <= row.max_attempts, (job_id, row)
        if row.status in (PENDING, CLAIMED):
            assert row.attempts < row.max_attempts, (job_id, row)
        # The lock belongs to a run; a claim has its time; a finished job its end.
        assert (row.locked_at is not None) == (row.status == RUNNING), (job_id, row)
        if row.status in (CLAIMED, RUNNING):
            assert row.claimed_at is not None, (job_id, row)
        if row.status == PENDING:
            assert row.claimed_at is None and row.finished_at is None, (job_id, row)
        if row.status in TERMINAL:
            assert row.finished_at is not None, (job_id, row)


def test_the_job_lifecycle_keeps_its_invariants(tmp_path: Path) -> None:
    JobLifecycle.directory = tmp_path
    run_state_machine_as_test(
        JobLifecycle,
        settings=settings(
            max_examples=150,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


# -- sequences worth keeping, driven by hand on both databases -------------------------------


def status_of(machine: JobLifecycle, job_id: int) -> Any:
    row = machine.rows[job_id]
    return row.status, row.fence, row.attempts


def test_a_zombie_worker_and_its_old_message_change_nothing_after_recovery(
    engine: Engine,
) -> None:
    m = JobLifecycle(engine)
    # Given a job started under fence 1 whose worker then went silent
    job_id = m.add_job("a")
    m.claim_due()
    zombie = m.deliver_message(job_id, 1)
    assert zombie is not None
    m.advance_clock(901)
    # When maintenance recovers it and the next claim starts it under fence 2
    m.maintain(everything=False)
    assert status_of(m, job_id) == (PENDING, 1, 1)
    m.claim_due()
    assert m.deliver_message(job_id, 1) is None  # the old message, redelivered: STALE_FENCE
    current = m.deliver_message(job_id, 2)
    assert current is not None
    # Then the zombie can neither send the effect nor finish; the current run does both
    assert m.run_once(zombie, EFFECT_KEYS[0]) == "lease_lost"
    assert m.finish_worker(zombie, "ok") is False
    assert m.run_once(current, EFFECT_KEYS[0]) == "done"
    assert m.finish_worker(current, "ok") is True
    assert m.deliver_message(job_id, 2) is None  # REPEATED_DELIVERY
    m.maintain()
    m.retry_dead(job_id)
    m.cancel(job_id)
    assert status_of(m, job_id) == (SUCCEEDED, 2, 2)
    assert m.executions == Counter({("a", EFFECT_KEYS[0]): 1})


def test_a_run_recovered_under_its_own_fence_can_no_longer_act(engine: Engine) -> None:
    m = JobLifecycle(engine)
    job_id = m.add_job("a")
    m.claim_due()
    worker = m.deliver_message(job_id, 1)
    assert worker is not None
    # Given maintenance took the job back while its worker was only slow
    m.maintain()
    assert status_of(m, job_id) == (PENDING, 1, 1)
    # When the worker wakes up, still holding fence 1 (the job's current fence)
    assert m.deliver_message(job_id, 1) is None  # NOT_CLAIMED
    assert m.run_once(worker, EFFECT_KEYS[0]) == "lease_lost"
    # Then neither its heartbeat nor its success lands, and the job runs again normally
    with autocommit(engine) as conn:
        assert not transitions.heartbeat(conn, job_id, 1, m.now)
    assert m.finish_worker(worker, "ok") is False
    (claim,) = m.claim_due()
    assert claim.fence == 2 and m.executions == Counter()


def test_a_poison_job_that_kills_every_worker_stops_at_max_attempts(engine: Engine) -> None:
    m = JobLifecycle(engine)
    job_id = m.add_job("a", max_attempts=2)
    for attempt in (1, 2):
        # Given its worker dies mid-run every time, and the broker redelivers its message
        (claim,) = m.claim_due()
        worker = m.deliver_message(job_id, claim.fence)
        assert worker is not None and worker.attempt == attempt
        m.crash_worker(worker)
        assert m.deliver_message(job_id, claim.fence) is None
        # When maintenance finds it silent
        m.maintain()
    # Then the second recovery dead-letters it instead of running it a third time
    assert status_of(m, job_id) == (FAILED, 2, 2)
    assert m.claim_due() == []


def test_an_effect_repeats_only_across_the_crash_window_it_documents(engine: Engine) -> None:
    m = JobLifecycle(engine)
    job_id = m.add_job("b")
    m.claim_due()
    first = m.deliver_message(job_id, 1)
    assert first is not None
    # Given the worker dies after the effect ran and before its record committed
    assert m.run_once(first, EFFECT_KEYS[1], crash_after_effect=True) == "crashed"
    m.maintain()
    m.claim_due()
    second = m.deliver_message(job_id, 2)
    assert second is not None
    # When the next attempt reaches the same once(key), it runs again (the window) ...
    assert m.run_once(second, EFFECT_KEYS[1]) == "done"
    # ... and from then on it is recorded: a third reach returns the stored result
    assert m.run_once(second, EFFECT_KEYS[1]) == "done"
    assert m.executions[("b", EFFECT_KEYS[1])] == 2
    assert m.crash_windows[("b", EFFECT_KEYS[1])] == 1


def test_a_stale_maintenance_scan_leaves_a_restarted_job_alone(engine: Engine) -> None:
    m = JobLifecycle(engine)
    job_id = m.add_job("a")
    m.claim_due()
    first = m.deliver_message(job_id, 1)
    assert first is not None
    # Given maintenance read the job as silent under fence 1
    m.scan_silent(everything=True)
    # When, before it writes, the run fails and is retried, claimed and started again
    assert m.finish_worker(first, "error") is True
    m.advance_clock(60)
    m.claim_due()
    assert m.deliver_message(job_id, 2) is not None
    # Then its write finds another fence and changes nothing
    m.apply_scan()
    assert status_of(m, job_id) == (RUNNING, 2, 2)
