"""The simulation drives the real policies deterministically; its story holds for any seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from fairbeat.plot import plot_simulation
from fairbeat.scheduling import autoscale, gate
from fairbeat.scheduling import simulation as sim

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOT = "hot"


@cache
def default_run() -> sim.SimulationResult:
    return sim.simulate(sim.Scenario())


def as_bytes(result: sim.SimulationResult) -> bytes:
    return json.dumps(result.to_dict()).encode()


def test_the_same_seed_gives_byte_identical_output() -> None:
    assert as_bytes(sim.simulate(sim.Scenario(seed=11))) == as_bytes(
        sim.simulate(sim.Scenario(seed=11))
    )
    assert as_bytes(sim.simulate(sim.Scenario(seed=11))) != as_bytes(
        sim.simulate(sim.Scenario(seed=12))
    )


def test_the_output_does_not_depend_on_hash_randomisation() -> None:
    # Given two fresh interpreters with different string hashing
    code = (
        "import json; from scheduling.simulation import Scenario, simulate;"
        "print(json.dumps(simulate(Scenario(minutes=30)).to_dict()))"
    )
    root = Path(__file__).resolve().parents[2]
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    # Then they print the same bytes, and the same as this process
    assert outputs == {as_bytes(sim.simulate(sim.Scenario(minutes=30))) + b"\n"}


def test_to_dict_is_plain_json() -> None:
    data = default_run().to_dict()
    assert json.loads(json.dumps(data)) == data
    assert set(data) == {"scenario", "capacity", "ladder", "queue_age", "summary"}
    assert all(len(point) == 3 for point in data["capacity"])
    assert {"window", "workspace", "from_quota", "to_quota", "reason_code"} <= set(
        data["ladder"][0]
    )


def check_valid(result: sim.SimulationResult) -> None:
    """What holds for any seed: bounds, one verdict per window, every job accounted for."""
    sc = result.scenario
    low, high = autoscale.bounds(sc.autoscale, len(sc.loads))
    times = [t for t, _, _ in result.capacity]
    assert times == sorted(set(times))
    for _, capacity, reason in result.capacity:
        assert low <= capacity <= high, reason
    hot = [load.workspace_id for load in sc.loads if load.high_quota_enabled]
    assert len(result.ladder) == len(hot) * (sc.minutes // sc.window_min)
    assert all(entry["to_quota"] in {16, *sc.gate.ladder} for entry in result.ladder)
    s = result.summary
    for ws in s["jobs_arrived"]:
        accounted = (
            s["jobs_done"][ws]
            + s["jobs_failed"][ws]
            + s["jobs_waiting_at_end"][ws]
            + s["jobs_in_flight_at_end"][ws]
        )
        assert accounted == s["jobs_arrived"][ws]
        assert len(result.queue_age[ws]) <= sc.minutes
    assert sum(s["capacity_reasons"].values()) == len(range(0, sc.minutes * 60, sc.step_s))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), step_s=st.sampled_from([1, 4, 5, 7, 10]))
def test_any_seed_and_step_give_a_valid_run(seed: int, step_s: int) -> None:
    result = sim.simulate(sim.Scenario(seed=seed, step_s=step_s, minutes=60))
    check_valid(result)
    json.dumps(result.to_dict())


def test_the_default_run_is_valid() -> None:
    check_valid(default_run())


def test_the_failure_incident_trips_the_error_guardrail_and_nothing_else_does() -> None:
    result = default_run()
    incident = result.scenario.failure_incident
    guardrail = [t for t, _, r in result.capacity if r == autoscale.STEP_DOWN_ERROR_GUARDRAIL]
    assert result.summary["capacity_reasons"][autoscale.STEP_DOWN_ERROR_GUARDRAIL] >= 1
    # The error rate looks back one minute, so it may trip until a minute after.
    assert guardrail
    assert all(incident.start_min * 60 <= t <= (incident.end_min + 1) * 60 for t in guardrail)
    lowest = min(c for t, c, _ in result.capacity if t >= incident.start_min * 60)
    assert lowest == result.scenario.autoscale.min_capacity


def verdicts(result: sim.SimulationResult, reason: str) -> list[int]:
    return [
        int(e["t_s"]) for e in result.ladder if e["workspace"] == HOT and e["reason_code"] == reason
    ]


def test_the_duplicate_incident_demotes_the_hot_workspace_to_base() -> None:
    result = default_run()
    incident = result.scenario.duplicate_incident
    demoted = [
        e
        for e in result.ladder
        if e["workspace"] == HOT and e["reason_code"] == gate.DEMOTED_DUPLICATE_SEND
    ]
    assert len(demoted) == 1
    # The verdict closes the window the incident fell in, and drops to the tier base.
    window_s = result.scenario.window_min * 60
    assert int(demoted[0]["t_s"]) - window_s <= incident.start_min * 60
    assert incident.end_min * 60 <= int(demoted[0]["t_s"])
    assert demoted[0]["to_quota"] == 16
    assert result.summary["duplicates"][HOT] > 0
    assert all(n == 0 for ws, n in result.summary["duplicates"].items() if ws != HOT)


def test_the_hot_workspace_is_promoted_before_the_incidents() -> None:
    result = default_run()
    promoted = verdicts(result, gate.PROMOTED)
    assert promoted
    assert promoted[0] <= result.scenario.failure_incident.start_min * 60
    first = next(e for e in result.ladder if e["reason_code"] == gate.PROMOTED)
    assert (first["from_quota"], first["to_quota"]) == (16, result.scenario.gate.ladder[0])


def test_the_failure_incident_demotes_after_two_breach_windows() -> None:
    result = default_run()
    assert verdicts(result, gate.HOLD_BREACH_STREAK)
    assert verdicts(result, gate.DEMOTED_SUSTAINED_BREACH)


def test_a_pin_holds_capacity_and_everything_else_stays_in_bounds() -> None:
    pin = sim.Pin(start_min=20, end_min=30, capacity=300)
    result = sim.simulate(sim.Scenario(pin=pin, minutes=45))
    low, high = autoscale.bounds(result.scenario.autoscale, len(result.scenario.loads))
    for t, capacity, reason in result.capacity:
        if pin.start_min * 60 <= t < pin.end_min * 60:
            assert (capacity, reason) == (pin.capacity, autoscale.OPERATOR_PIN)
        else:
            assert low <= capacity <= high
            assert reason != autoscale.OPERATOR_PIN


def test_small_workspaces_wait_far_less_than_the_hot_one() -> None:
    summary = default_run().summary
    assert summary["small_p95_wait_s"] * 10 < summary["p95_wait_s"][HOT]
    for ws, p95 in summary["p95_wait_s"].items():
        if ws != HOT:
            assert p95 * 10 < summary["p95_wait_s"][HOT]


def test_plot_writes_a_png(tmp_path: Path) -> None:
    path = tmp_path / "sim.png"
    plot_simulation(default_run(), str(path))
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 10_000
