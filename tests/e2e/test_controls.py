"""Operator controls through the real CLI, and pool resizing over Celery's remote control."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fairbeat.store.models import operator_action_table
from fairbeat.tasks.pool import apply_capacity
from tests.e2e.conftest import Fleet, fairbeat_cli, wait_for

pytestmark = pytest.mark.e2e


def cli_json(live: Fleet, *args: str) -> dict[str, Any]:
    result = live.run_cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_capacity_ladder_and_gate_controls_are_audited(live: Fleet) -> None:
    pinned = cli_json(live, "capacity", "pin", "12", "--why", "incident 7", "--who", "alice")
    assert pinned["value"] == {"pin": 12} and pinned["who"] == "alice"
    assert cli_json(live, "capacity", "show")["override"] == {"pin": 12}
    cli_json(live, "capacity", "unpin", "--why", "incident over")
    cli_json(live, "ladder", "pin", "vip", "80", "--why", "contract")
    assert cli_json(live, "ladder", "show")["pins"] == {"vip": 80}
    cli_json(live, "ladder", "unpin", "vip", "--why", "contract ended")
    cli_json(live, "gate", "promotion", "off", "--why", "freeze")
    assert cli_json(live, "ladder", "show")["promotion_enabled"] is False
    cli_json(live, "gate", "promotion", "on", "--why", "thaw")
    report = cli_json(live, "gate", "run", "--why", "test", "--window", "2026-01-05T10:00:00+00:00")
    assert report["window"] == "2026-01-05T10:00:00+00:00"
    missing_why = live.run_cli("capacity", "pin", "5")
    assert missing_why.returncode == 2 and "--why" in missing_why.stderr
    with live.engine.connect() as conn:
        actions = conn.execute(
            select(operator_action_table.c.action, operator_action_table.c.why).order_by(
                operator_action_table.c.id
            )
        ).all()
    assert [a for a, _ in actions] == [
        "capacity.pin",
        "capacity.unpin",
        "ladder.pin",
        "ladder.unpin",
        "gate.promotion",
        "gate.promotion",
        "gate.run",
    ]
    assert actions[0].why == "incident 7"


def test_capacity_is_applied_to_a_worker_pool_started_with_autoscale(live: Fleet) -> None:
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "fairbeat",
            "worker",
            "--autoscale=6,1",
            "-n",
            "scalable@%h",
            "-Q",
            "fairbeat.unused",
            "-l",
            "warning",
        ],
        env=live.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def scalable_replied() -> list[dict[str, Any]]:
            replies = apply_capacity(live.client, 20)
            return [r for r in replies if any(k.startswith("scalable@") for k in r)]

        (reply,) = wait_for(scalable_replied, "the autoscaling worker to take new bounds")
        (answer,) = reply.values()
        assert "autoscale now max=" in answer.get("ok", "")
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_canary_runs_a_burst_and_writes_the_go_packet(live: Fleet, tmp_path: Path) -> None:
    out = tmp_path / "packet"
    result = live.run_cli(
        "canary",
        "--workspaces",
        "4",
        "--jobs",
        "3",
        "--hot",
        "1",
        "--deadline-s",
        "120",
        "--out",
        str(out),
        "--json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["decision"] == "GO" and report["jobs"] == 3 * 10 + 3 * 3
    assert {c["name"]: c["passed"] for c in report["checks"]} == {
        "queue_age_p95_s": True,
        "duplicate_sends": True,
        "stale_runs": True,
        "starved_workspaces": True,
    }
    assert "# Canary" in (out / "canary.md").read_text()
    assert json.loads((out / "canary.json").read_text())["samples"]["t_s"]
    for plot in ("queue_age.png", "quota_rungs.png", "capacity.png"):
        assert (out / plot).read_bytes().startswith(b"\x89PNG")


def test_exporter_alerts_and_maintenance_through_the_cli(live: Fleet) -> None:
    import socket
    import urllib.request

    report = cli_json(live, "maintenance", "run")
    assert "health" in report and "recovered" in report
    assert "alerts" in cli_json(live, "alerts")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exporter = subprocess.Popen(
        [fairbeat_cli(), "exporter", "--port", str(port)],
        env=live.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def metrics() -> str | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    return str(r.read().decode())
            except OSError:
                return None

        text = wait_for(metrics, "the exporter to serve /metrics")
        assert "fairbeat_due_pending" in text and "fairbeat_capacity" in text
    finally:
        exporter.terminate()
        exporter.wait(timeout=30)
