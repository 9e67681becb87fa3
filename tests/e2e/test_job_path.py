"""Real worker and beat processes: enqueue -> dispatch -> run -> outcome."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from fairbeat.store import claiming
from fairbeat.store.models import duplicate_event_table, job_table
from tests.e2e.conftest import Fleet, wait_for
from tests.handlers import LEDGER_KEY

pytestmark = pytest.mark.e2e


def enqueue(live: Fleet, *args: str) -> dict[str, Any]:
    result = live.run_cli("enqueue", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def sends(live: Fleet, tag: str) -> int:
    return sum(1 for item in live.redis.lrange(LEDGER_KEY, 0, -1) if item == tag.encode())


def test_an_enqueued_job_runs_to_success(live: Fleet) -> None:
    job = enqueue(live, "acme", "test.send", "--payload", '{"tag": "first"}')
    row = live.wait_status(int(job["job_id"]), "SUCCEEDED", "FAILED")
    assert row["status"] == "SUCCEEDED" and row["attempts"] == 1 and row["fence"] == 1
    assert sends(live, "first") == 1


def test_a_failing_job_is_retried_until_it_succeeds(live: Fleet) -> None:
    # test.flaky is routed to jobs.flaky, which the worker consumes with no -Q.
    job = enqueue(live, "acme", "test.flaky", "--payload", '{"tag": "flaky", "fail_times": 2}')
    row = live.wait_status(int(job["job_id"]), "SUCCEEDED", "FAILED")
    assert row["status"] == "SUCCEEDED" and row["attempts"] == 3
    assert "flaky failure on attempt 2" in row["last_error"]
    assert sends(live, "flaky") == 1


def test_a_job_that_always_fails_is_dead_lettered(live: Fleet) -> None:
    payload = '{"message": "mailbox full"}'
    job = enqueue(live, "acme", "test.always_fails", "--payload", payload, "--max-attempts", "3")
    row = live.wait_status(int(job["job_id"]), "FAILED")
    assert row["attempts"] == 3 and "mailbox full" in row["last_error"]


def test_one_message_delivered_twice_executes_once(live: Fleet) -> None:
    # Given a claimed job (scheduled far ahead, so beat's dispatcher leaves it alone)
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    job = enqueue(
        live, "acme", "test.sleep", "--payload", '{"seconds": 0.3, "tag": "dup"}', "--run-at", later
    )
    job_id = int(job["job_id"])
    with live.engine.begin() as conn:
        (claim,) = claiming.claim_ids(
            conn, select(job_table.c.id).where(job_table.c.id == job_id), datetime.now(UTC)
        )
    # When its run message reaches the workers twice
    for _ in range(2):
        live.client.send_task("fairbeat.run", args=(job_id, claim.fence), queue="jobs.default")
    # Then it ran once, and the second delivery was dropped and counted
    live.wait_status(job_id, "SUCCEEDED")

    def dropped() -> list[str]:
        with live.engine.connect() as conn:
            query = select(duplicate_event_table.c.reason).where(
                duplicate_event_table.c.job_id == job_id
            )
            return list(conn.execute(query).scalars())

    assert wait_for(dropped, "the duplicate delivery to be counted") == ["REPEATED_DELIVERY"]
    assert sends(live, "dup") == 1
    assert live.job(job_id)["attempts"] == 1


def test_one_dedupe_key_enqueued_twice_gives_one_job(live: Fleet) -> None:
    args = ("globex", "test.send", "--payload", '{"tag": "dedupe"}', "--dedupe-key", "order-77")
    first, second = enqueue(live, *args), enqueue(live, *args)
    assert first["created"] is True and second["created"] is False
    assert first["job_id"] == second["job_id"]
    live.wait_status(int(first["job_id"]), "SUCCEEDED")
    with live.engine.connect() as conn:
        count = conn.execute(
            select(func.count()).where(job_table.c.dedupe_key == "order-77")
        ).scalar_one()
    assert count == 1 and sends(live, "dedupe") == 1


def test_status_reports_counts_and_the_oldest_due_age(live: Fleet) -> None:
    result = live.run_cli("status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert set(status["by_status"]) == {
        "WAITING",
        "PENDING",
        "CLAIMED",
        "RUNNING",
        "SUCCEEDED",
        "FAILED",
        "CANCELLED",
    }
    assert status["by_status"]["SUCCEEDED"] >= 1
    assert status["workspaces"]["acme"]["SUCCEEDED"] >= 1
    assert "oldest_due_age_s" in status


def test_flower_runs_against_the_app_and_sees_the_worker(live: Fleet) -> None:
    import base64
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    flower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "fairbeat",
            "flower",
            f"--port={port}",
            "--address=127.0.0.1",
            "--basic-auth=ops:test-secret",
        ],
        env=live.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/workers?refresh=1",
            headers={"Authorization": "Basic " + base64.b64encode(b"ops:test-secret").decode()},
        )

        def workers() -> dict[str, Any] | None:
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    found: dict[str, Any] = json.loads(response.read())
                    return found or None
            except OSError:
                return None

        seen = wait_for(workers, "Flower to list the worker")
        assert any(name.startswith("celery@") for name in seen)
    finally:
        flower.terminate()
        flower.wait(timeout=30)


def test_a_dead_letter_is_retried_by_the_operator(live: Fleet) -> None:
    payload = '{"message": "still broken"}'
    job = enqueue(live, "acme", "test.always_fails", "--payload", payload, "--max-attempts", "1")
    job_id = int(job["job_id"])
    dead = live.wait_status(job_id, "FAILED")
    listed = json.loads(live.run_cli("jobs", "list", "--status", "FAILED", "--json").stdout)
    assert job_id in [j["id"] for j in listed["jobs"]]
    retried = json.loads(
        live.run_cli("jobs", "retry", str(job_id), "--why", "test", "--json").stdout
    )
    assert retried == {"retried": [job_id], "not_failed": []}

    # It runs again under a new fence, and fails again: the handler is still broken.
    def ran_again() -> bool:
        row = live.job(job_id)
        return bool(row["fence"] == dead["fence"] + 1 and row["status"] == "FAILED")

    wait_for(ran_again, "the retried job to run again")
    assert live.job(job_id)["attempts"] == 1


def test_a_pending_job_is_cancelled_and_never_runs(live: Fleet) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    job = enqueue(live, "acme", "test.send", "--payload", '{"tag": "cancelled"}', "--run-at", later)
    job_id = int(job["job_id"])
    assert json.loads(
        live.run_cli("jobs", "cancel", str(job_id), "--why", "not needed", "--json").stdout
    ) == {
        "cancelled": [job_id],
        "not_cancelled": [],
    }
    assert live.job(job_id)["status"] == "CANCELLED" and sends(live, "cancelled") == 0
