"""Faults with real processes: after each, nothing lost, nothing sent twice, nothing unexpected.

Each test runs a burst of ``chaos.send`` jobs through a real worker and beat,
injects one fault, waits for every job to finish, and checks the history
(tests/chaos/history.py). Times are short because the fleet runs with fast
liveness settings (tests/chaos/conftest.py).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from fairbeat.store.db import make_engine
from fairbeat.tasks.api import enqueue
from tests.chaos.conftest import (
    SCALE,
    elapsed_since,
    record,
    start_worker,
    stop,
    waiting_at,
)
from tests.chaos.history import History, check
from tests.e2e.conftest import Fleet, wait_for
from tests.redis_server import PrivateRedis

pytestmark = pytest.mark.e2e

BURST = 20 * SCALE
DEADLINE_S = 120.0
# Jobs a worker can have in flight at the moment of a kill: its pool size.
IN_FLIGHT = 4


def burst(
    fleet: Fleet, label: str, n: int = BURST, ms: float = 20, pauses: dict[str, str] | None = None
) -> dict[int, str]:
    """Enqueue ``n`` sends over four workspaces; ``pauses`` maps a key to its pause point."""
    sends: dict[int, str] = {}
    for i in range(n):
        key = f"{label}-{i}"
        pause = (pauses or {}).get(key, "")
        job = enqueue(
            f"ws{i % 4}",
            "chaos.send",
            {"key": key, "pause": pause, "ms": ms},
            dedupe_key=key,
            app=fleet.client,
        )
        sends[job.job_id] = key
    return sends


def settle(fleet: Fleet, sends: dict[int, str]) -> History:
    def finished() -> bool:
        return not check(fleet.engine, fleet.redis, sends).lost

    wait_for(finished, "every job to finish", DEADLINE_S)
    return check(fleet.engine, fleet.redis, sends)


def settle_on_a_new_worker(fleet: Fleet, sends: dict[int, str]) -> tuple[History, float]:
    """The fleet's worker is gone: start a replacement, as a supervisor would, and settle."""
    started = time.monotonic()
    replacement = start_worker(fleet)
    try:
        return settle(fleet, sends), elapsed_since(started)
    finally:
        stop(replacement)


def kill_at(fleet: Fleet, point: str) -> tuple[History, float, dict[int, str]]:
    key = f"{point}-0"
    sends = burst(fleet, point, pauses={key: point})
    found, pid = waiting_at(fleet, key)
    assert found == point
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    history = settle(fleet, sends)
    return history, elapsed_since(started), sends


@pytest.mark.parametrize("point", ["before_send", "after_commit"])
def test_kill_the_worker_child_before_the_send_or_after_the_commit(
    fleet_factory: Callable[..., Any], point: str
) -> None:
    with fleet_factory() as fleet:
        if point == "after_commit":
            # Mark the job by id once it exists: the postrun hook reads this.
            sends = burst(fleet, point, n=1)
            job_id = next(iter(sends))
            fleet.redis.hset("chaos:pause_after_commit", str(job_id), sends[job_id])
            sends |= burst(fleet, f"{point}-rest", n=BURST - 1)
            _, pid = waiting_at(fleet, sends[job_id])
            os.kill(pid, signal.SIGKILL)
            started = time.monotonic()
            history = settle(fleet, sends)
            took = elapsed_since(started)
        else:
            history, took, sends = kill_at(fleet, point)
        record(f"kill -9 worker child {point.replace('_', ' ')}", len(sends), history, took)
        assert history.clean, history


def test_kill_between_the_send_and_its_record_is_the_one_window(
    fleet_factory: Callable[..., Any],
) -> None:
    # A crash after the provider got the send and before once() recorded it: the
    # retry sends again. The provider, given the key as idempotency key, keeps one.
    with fleet_factory() as fleet:
        history, took, sends = kill_at(fleet, "after_send")
        record("kill -9 worker child after send, before its record", len(sends), history, took)
        assert not history.lost and not history.unexpected
        assert history.duplicated == {"after_send-0": 2}
        assert history.visible_duplicates == 0


def test_warm_shutdown_with_a_long_job_then_a_kill(fleet_factory: Callable[..., Any]) -> None:
    with fleet_factory() as fleet:
        key = "warm-0"
        sends = burst(fleet, "warm", pauses={key: "before_send"})
        waiting_at(fleet, key)
        worker = fleet.procs[0]
        worker.send_signal(signal.SIGTERM)  # warm shutdown: waits for the running job
        time.sleep(2)
        worker.kill()
        history, took = settle_on_a_new_worker(fleet, sends)
        record("SIGTERM (warm shutdown) with a long job, then kill -9", len(sends), history, took)
        assert history.sound(IN_FLIGHT), history


def test_kill_the_worker_main_process_holding_messages(fleet_factory: Callable[..., Any]) -> None:
    with fleet_factory() as fleet:
        sends = burst(fleet, "main", ms=300)
        wait_for(lambda: fleet.redis.hlen("chaos:exec") >= 2, "the burst to start")
        fleet.procs[0].kill()  # the main process: its children and held messages go too
        history, took = settle_on_a_new_worker(fleet, sends)
        record("kill -9 worker main process with messages in hand", len(sends), history, took)
        assert history.sound(IN_FLIGHT), history


def test_redis_restart_mid_burst(fleet_factory: Callable[..., Any], tmp_path: Any) -> None:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        with fleet_factory(redis_url=server.url) as fleet:
            sends = burst(fleet, "redis", ms=200)
            wait_for(lambda: fleet.redis.hlen("chaos:exec") >= 2, "the burst to start")
            # Broker messages, the ladder and fair-share state are gone with it.
            ledger = {k: v for k, v in fleet.redis.hgetall("chaos:exec").items()}
            accepted = fleet.redis.smembers("chaos:accepted")
            server.stop()
            time.sleep(2)
            server.start()
            if ledger:
                fleet.redis.hset("chaos:exec", mapping=ledger)
            if accepted:
                fleet.redis.sadd("chaos:accepted", *accepted)
            started = time.monotonic()
            # Celery's worker can exit during the broker reconnect (seen here: an
            # AttributeError in its consumer restart). Production runs workers under
            # a supervisor (compose: restart: unless-stopped); so does this test.
            time.sleep(3)
            if fleet.procs[0].poll() is not None:
                history, _ = settle_on_a_new_worker(fleet, sends)
            else:
                history = settle(fleet, sends)
            record(
                "Redis restart mid-burst (broker and ladder lost)",
                len(sends),
                history,
                elapsed_since(started),
            )
            assert history.sound(IN_FLIGHT), history
    finally:
        server.stop()


def test_postgres_connections_terminated_during_claims_and_finishes(
    fleet_factory: Callable[..., Any],
) -> None:
    with fleet_factory() as fleet:
        sends = burst(fleet, "pgkill", ms=50)
        admin = make_engine(fleet.env["FAIRBEAT_DATABASE_URL"])
        started = time.monotonic()
        killed = 0
        for _ in range(6):
            with admin.connect() as conn:
                killed += int(
                    conn.execute(
                        text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                    ).scalar_one()
                )
            time.sleep(0.5)
        admin.dispose()
        fleet.engine.dispose()  # the test's own pooled connections were terminated too
        assert killed > 0
        history = settle(fleet, sends)
        record(
            "PostgreSQL connections terminated during claims and finishes",
            len(sends),
            history,
            elapsed_since(started),
        )
        # A terminated connection can fail the effect's record after the send: the window.
        assert history.sound(IN_FLIGHT), history


def test_a_visibility_timeout_shorter_than_the_job(fleet_factory: Callable[..., Any]) -> None:
    # Redis redelivers an unacked message after the timeout; the fence drops it.
    with fleet_factory(visibility_timeout_s="10") as fleet:
        sends = burst(fleet, "visibility", n=2, ms=14_000)
        started = time.monotonic()
        history = settle(fleet, sends)
        record(
            "Redis visibility timeout (10 s) shorter than the job (14 s)",
            len(sends),
            history,
            elapsed_since(started),
        )
        assert history.clean, history


def test_a_poison_job_stops_at_max_attempts(fleet_factory: Callable[..., Any]) -> None:
    with fleet_factory() as fleet:
        job = enqueue("ws0", "chaos.poison", {"key": "poison"}, max_attempts=3, app=fleet.client)
        started = time.monotonic()
        dead = fleet.wait_status(job.job_id, "FAILED")
        assert dead["attempts"] == 3 and "RECOVERED_TO_FAILED" in dead["last_error"]
        assert int(fleet.redis.hget("chaos:exec", "poison") or 0) == 3
        record(
            "poison job that kills its worker (max_attempts 3)",
            1,
            History(1, [], {}, 0, []),
            elapsed_since(started),
            runs=3,
        )
