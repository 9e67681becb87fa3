"""``fairbeat gate run --window`` refuses windows it cannot evaluate, and
``fairbeat gate reset`` repairs a frozen gate, through the real CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from fairbeat.scheduling.gate import GateState
from fairbeat.store.control import ControlState
from fairbeat.store.keys import Keys
from fairbeat.store.models import function_run_table, operator_action_table
from fairbeat.tasks.api import enqueue
from tests.e2e.conftest import Fleet

pytestmark = pytest.mark.e2e


def gate_runs(live: Fleet) -> int:
    with live.engine.connect() as conn:
        query = select(func.count()).where(function_run_table.c.function == "gate")
        return int(conn.execute(query).scalar_one())


@pytest.mark.parametrize(
    ("window", "reason"),
    [
        ("2099-01-01T00:00:00Z", "WINDOW_IN_FUTURE"),
        ("2026-01-05T10:07:00Z", "WINDOW_NOT_ALIGNED"),
        ("yesterday", "not an ISO 8601 time"),
        ("2026-01-05T10:00:00", "give it a timezone"),
    ],
)
def test_a_bad_window_is_refused_in_one_line_and_nothing_written(
    live: Fleet, window: str, reason: str
) -> None:
    before = gate_runs(live)
    result = live.run_cli("gate", "run", "--why", "test", "--window", window)
    assert result.returncode == 1
    assert reason in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert gate_runs(live) == before


def test_an_unfinished_window_is_refused(live: Fleet) -> None:
    now = datetime.now(UTC)
    epoch = int(now.timestamp())
    current = datetime.fromtimestamp(epoch - epoch % 900, UTC)
    result = live.run_cli("gate", "run", "--why", "test", "--window", current.isoformat())
    assert result.returncode == 1 and "WINDOW_NOT_FINISHED" in result.stderr


def test_reset_repairs_a_frozen_gate_and_is_audited(live: Fleet) -> None:
    # Given a gate frozen by a window far in the future (as older versions let in)
    control = ControlState(live.redis, Keys())
    future = "2099-01-01T00:00:00+00:00"
    assert control.write_ladder(future, {"vip": (64, GateState(rung=0, last_window=future))})
    # And an innocent workspace's job enqueued meanwhile
    innocent = enqueue("innocent", "test.noop", {}, app=live.client)
    # When the operator resets vip's gate state
    result = live.run_cli("gate", "reset", "vip", "--why", "frozen by a future window", "--json")
    assert result.returncode == 0, result.stderr
    done = json.loads(result.stdout)
    assert done["action"] == "gate.reset" and done["target"] == "vip"
    assert done["value"]["window_marker_dropped"] is True
    # Then the marker is gone, the rung kept, and a past window is evaluated again
    assert control.last_window() is None
    assert control.gate_states(["vip"])["vip"] == GateState(rung=0)
    past = (datetime.now(UTC) - timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    report = live.run_cli("gate", "run", "--why", "test", "--window", past.isoformat(), "--json")
    assert report.returncode == 0, report.stdout + report.stderr
    assert json.loads(report.stdout)["written"] is True
    with live.engine.connect() as conn:
        whys = conn.execute(
            select(operator_action_table.c.why).where(
                operator_action_table.c.action == "gate.reset"
            )
        ).scalars()
        assert list(whys) == ["frozen by a future window"]
    assert live.wait_status(innocent.job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
