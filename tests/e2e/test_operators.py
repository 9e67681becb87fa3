"""What an operator sees and steers, with real processes: Flower lists jobs by
kind and workspace behind basic auth; the audit trail; routing; status."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Fleet, fairbeat_cli, wait_for

pytestmark = pytest.mark.e2e

FLOWER_AUTH = "ops:flower-test-secret"
CELERY = [sys.executable, "-m", "celery", "-A", "fairbeat"]
FLOWER = [*CELERY, "flower"]


def enqueue(live: Fleet, *args: str) -> dict[str, Any]:
    result = live.run_cli("enqueue", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def flower(live: Fleet) -> Iterator[str]:
    """A real Flower on the fleet's broker, behind basic auth; its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [*FLOWER, f"--port={port}", "--address=127.0.0.1"],
        env={**live.env, "FLOWER_BASIC_AUTH": FLOWER_AUTH},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(base, "/api/workers?refresh=1") is not None, "Flower to answer")
        _until_flower_hears_events(live, base)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _until_flower_hears_events(live: Fleet, base: str) -> None:
    """Flower answers before its event receiver listens, and events sent before
    that are lost: send warm-up jobs until one shows up."""
    for n in range(20):
        enqueue(live, "flower-warmup", "test.send", "--payload", f'{{"tag": "warm{n}"}}')
        try:
            wait_for(lambda: get(base, "/api/tasks?taskname=test.send"), "a warm-up job", 10)
            return
        except AssertionError:
            continue
    raise AssertionError("Flower never listed a warm-up job")


def get(base: str, path: str, auth: str | None = FLOWER_AUTH) -> Any:
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    request = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read()) or None
    except urllib.error.HTTPError:
        raise
    except OSError:
        return None


def test_flower_finds_a_workspace_job_by_its_kind(live: Fleet, flower: str) -> None:
    job = enqueue(live, "flower-ws", "test.send", "--payload", '{"tag": "flower"}')
    job_id = int(job["job_id"])
    live.wait_status(job_id, "SUCCEEDED")

    def listed() -> dict[str, Any] | None:
        tasks = get(flower, "/api/tasks?taskname=test.send") or {}
        for task in tasks.values():
            if f"'job_id': {job_id}," in (task.get("kwargs") or ""):
                return task  # type: ignore[no-any-return]
        return None

    task = wait_for(listed, "Flower to list the job under its kind")
    assert task["name"] == "test.send"
    assert "'workspace': 'flower-ws'" in task["kwargs"] and "'attempt': 1" in task["kwargs"]
    assert "flower-ws" in task["args"]


def test_flower_refuses_a_request_without_credentials(flower: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(flower, "/api/tasks", auth=None)
    assert refused.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as wrong:
        get(flower, "/api/tasks", auth="ops:wrong")
    assert wrong.value.code == 401


def cli_ok(live: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    result = live.run_cli(*args)
    assert result.returncode == 0, result.stderr
    return result


def test_every_operator_action_is_in_the_audit_trail(live: Fleet) -> None:
    later = "2999-01-01T00:00:00+00:00"
    payload = '{"tag": "audit"}'
    job = enqueue(live, "audit-ws", "test.send", "--payload", payload, "--run-at", later)
    who = ("--who", "ana@ops")
    cli_ok(live, "workspace", "pause", "audit-ws", "--why", "noisy tenant", *who)
    cli_ok(live, "workspace", "set", "audit-ws", "--weight", "2", "--why", "contract", *who)
    cli_ok(live, "workspace", "resume", "audit-ws", "--why", "tenant fixed", *who)
    cli_ok(live, "ladder", "pin", "audit-ws", "3", "--why", "hold steady", *who)
    cli_ok(live, "jobs", "cancel", str(job["job_id"]), "--why", "duplicate", *who)
    cli_ok(live, "capacity", "pin", "40", "--why", "db maintenance", *who)
    cli_ok(live, "capacity", "unpin", "--why", "db maintenance over", *who)

    trail = json.loads(cli_ok(live, "audit", "--since", "10m", "--json").stdout)["actions"]
    actions = [(a["action"], a["target"], a["why"], a["who"]) for a in reversed(trail)]
    assert actions[-7:] == [
        ("workspace.pause", "audit-ws", "noisy tenant", "ana@ops"),
        ("workspace.set", "audit-ws", "contract", "ana@ops"),
        ("workspace.resume", "audit-ws", "tenant fixed", "ana@ops"),
        ("ladder.pin", "audit-ws", "hold steady", "ana@ops"),
        ("jobs.cancel", None, "duplicate", "ana@ops"),
        ("capacity.pin", None, "db maintenance", "ana@ops"),
        ("capacity.unpin", None, "db maintenance over", "ana@ops"),
    ]
    assert trail[2]["value"] == {"count": 1, "job_ids": [job["job_id"]]}
    mine = json.loads(cli_ok(live, "audit", "--workspace", "audit-ws", "--json").stdout)
    assert {a["target"] for a in mine["actions"]} == {"audit-ws"}
    assert len(mine["actions"]) == 4
    assert "ana@ops" in cli_ok(live, "audit", "--workspace", "audit-ws").stdout


def test_an_action_without_why_is_refused_and_a_bad_since_named(live: Fleet) -> None:
    missing = live.run_cli("workspace", "pause", "audit-ws")
    assert missing.returncode == 2 and "--why" in missing.stderr
    bad = live.run_cli("audit", "--since", "yesterday")
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: --since 'yesterday'")
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.fixture()
def solo_worker(live: Fleet) -> Iterator[None]:
    """A second worker service that consumes only ``jobs.solo``."""
    worker = subprocess.Popen(
        [*CELERY, "worker", "-n", "solo@%h", "-Q", "jobs.solo", "-c", "1", "-l", "warning"],
        env=live.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def routing(live: Fleet, *args: str) -> dict[str, Any]:
    return json.loads(cli_ok(live, "routing", *args, "--json").stdout)  # type: ignore[no-any-return]


def test_a_kind_moved_to_its_own_worker_runs_there_without_a_restart(
    live: Fleet, flower: str, solo_worker: None
) -> None:
    def solo_consumes() -> list[dict[str, Any]]:
        queue = routing(live, "show").get("queues", {}).get("jobs.solo", {})
        return [w for w in queue.get("workers", []) if w["worker"].startswith("solo@")]

    wait_for(solo_consumes, "the solo worker to report its queue")
    routing(live, "set", "test.send", "jobs.solo", "--why", "own service", "--who", "ana@ops")
    try:
        view = routing(live, "show", "--kind", "test.send")
        assert {"kind": "test.send", "queue": "jobs.solo", "reason_code": "OPERATOR"}.items() <= (
            next(k for k in view["kinds"] if k["kind"] == "test.send").items()
        )
        job = enqueue(live, "route-ws", "test.send", "--payload", '{"tag": "routed"}')
        job_id = int(job["job_id"])
        live.wait_status(job_id, "SUCCEEDED")

        def ran_on() -> str | None:
            tasks = get(flower, "/api/tasks?taskname=test.send") or {}
            found = [t for t in tasks.values() if f"'job_id': {job_id}," in (t["kwargs"] or "")]
            return found[0].get("worker") if found else None

        assert str(wait_for(ran_on, "Flower to say where the job ran")).startswith("solo@")
    finally:
        routing(live, "unset", "test.send", "--why", "back to shared", "--who", "ana@ops")
    trail = json.loads(cli_ok(live, "audit", "--since", "5m", "--json").stdout)["actions"]
    assert [(a["action"], a["value"]["queue"]) for a in trail[:2]] == [
        ("routing.unset", None),
        ("routing.set", "jobs.solo"),
    ]
    assert routing(live, "show", "--kind", "test.send")["kinds"][0]["queue"] != "jobs.solo"


def test_status_explains_why_a_paused_workspace_waits(live: Fleet) -> None:
    cli_ok(live, "workspace", "pause", "held-ws", "--why", "status test")
    try:
        for n in range(3):
            enqueue(live, "held-ws", "test.send", "--payload", f'{{"tag": "held{n}"}}')

        def explained() -> dict[str, Any] | None:
            status = json.loads(cli_ok(live, "status", "--json").stdout)["explain"]
            held = status["workspaces"].get("held-ws", {})
            ready = held.get("waiting") and status["last_runs"]["dispatch"]
            return status if ready and status["fleet"]["workers"] else None

        status = wait_for(explained, "status to explain the paused workspace")
        held = status["workspaces"]["held-ws"]
        assert held["paused"] is True and held["pending"] == 3 and held["due"] == 3
        assert held["waiting"] == {"WORKSPACE_PAUSED": 3} and held["in_flight"] == 0
        assert status["fleet"]["slots"] >= 1 and "jobs.default" in status["fleet"]["queues"]
        assert {"dispatch", "gate", "maintenance"} == set(status["last_runs"])
        wide = {**live.env, "COLUMNS": "200"}
        shown = subprocess.run(
            [fairbeat_cli(), "status"], env=wide, capture_output=True, text=True, timeout=60
        )
        text = shown.stdout
        assert "held-ws" in text and "WORKSPACE_PAUSED=3" in text and "live worker" in text
    finally:
        cli_ok(live, "workspace", "resume", "held-ws", "--why", "status test over")


def test_status_watch_redraws_until_interrupted(live: Fleet) -> None:
    proc = subprocess.Popen(
        [fairbeat_cli(), "status", "--watch", "--interval", "0.3"],
        env={**live.env, "TTY_COMPATIBLE": "1", "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    seen = 0
    try:
        while seen < 2:  # the first draw and one refresh
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "no output"
            seen += b"active workspaces" in line
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
