"""The benchmark's fairness measure, on hand-made histories."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.budget import family_delta, per_job, regroup, role_of, slot_time
from bench.metrics import (
    Event,
    fastest,
    makespan,
    max_min_fair,
    ratio,
    slot_utilisation,
    windowed_jain,
)
from bench.probe import statement_kind


@given(
    st.dictionaries(st.text(min_size=1, max_size=3), st.integers(0, 50), min_size=1),
    st.integers(0, 200),
)
def test_max_min_fair_never_exceeds_demand_or_capacity(demands: dict[str, int], cap: int) -> None:
    share = max_min_fair(demands, cap)
    assert all(share[w] <= demands[w] + 1e-9 for w in demands)
    assert sum(share.values()) <= cap + 1e-6
    # Work conserving: all is used, unless every demand is met.
    if sum(demands.values()) >= cap:
        assert abs(sum(share.values()) - cap) < 1e-6


def events(ws: str, n: int, enq: float, first_end: float, gap: float) -> list[Event]:
    return [{"ws": ws, "enq": enq, "end": first_end + i * gap} for i in range(n)]


def test_fifo_behind_a_hot_backlog_is_unfair() -> None:
    # The hot workspace's 100 jobs all run first; the small one's wait meanwhile.
    history = events("hot", 100, 0.0, 0.1, 0.1) + events("small", 5, 0.05, 10.1, 0.1)
    score = windowed_jain(history, 1.0)
    assert score is not None and score < 0.7


def test_serving_the_small_workspace_at_once_is_fair() -> None:
    # The small workspace's jobs wait across a window boundary, then all run at once.
    history = events("hot", 100, 0.0, 0.6, 0.1) + events("small", 5, 0.9, 1.05, 0.1)
    score = windowed_jain(history, 1.0)
    assert score is not None and score > 0.95


def test_no_contention_means_no_score() -> None:
    assert windowed_jain(events("alone", 10, 0.0, 0.5, 0.5), 1.0) is None


def job(enq: float, start: float, end: float) -> Event:
    return {"ws": "w", "enq": enq, "start": start, "end": end}


def test_slots_busy_from_first_enqueue_to_last_finish_are_fully_used() -> None:
    # Two slots, each running two 1 s jobs back to back from t=0 to t=2.
    history = [job(0.0, 0.0, 1.0), job(0.0, 1.0, 2.0), job(0.0, 0.0, 1.0), job(0.0, 1.0, 2.0)]
    assert slot_utilisation(history, 2) == pytest.approx(1.0)


def test_time_around_each_job_counts_against_the_slots() -> None:
    # One slot, 1 s of handler time in a makespan of 4 s (enqueued at 0, ends at 4).
    history = [job(0.0, 0.5, 1.0), job(0.0, 3.5, 4.0)]
    assert makespan(history) == pytest.approx(4.0)
    assert slot_utilisation(history, 1) == pytest.approx(0.25)
    # The same history on four slots used a sixteenth of them.
    assert slot_utilisation(history, 4) == pytest.approx(1 / 16)


def test_slot_utilisation_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="slots must be at least 1"):
        slot_utilisation([job(0.0, 0.0, 1.0)], 0)


def test_ratio_rounds_and_refuses_a_zero_denominator() -> None:
    assert ratio(21.6, 9.8) == 2.2041
    assert ratio(1.0, 3.0) == 0.3333
    with pytest.raises(ValueError, match="denominator must be positive"):
        ratio(1.0, 0.0)


def test_the_fastest_durable_peer_sets_the_durable_ratio() -> None:
    rates = {"celery_db_backend": 120.5, "procrastinate": 310.0}
    assert fastest(rates) == ("procrastinate", 310.0)
    assert ratio(155.0, fastest(rates)[1]) == 0.5
    with pytest.raises(ValueError, match="rates is empty"):
        fastest({})


def snapshot(pid: int, argv: list[str], forked: bool, sql: dict[str, float]) -> dict[str, Any]:
    return {"pid": pid, "argv": argv, "forked": forked, "counts": {"sql": sql}}


WORKER = ["celery", "-A", "fairbeat", "worker"]


def test_processes_are_told_apart_by_their_command_line_not_by_the_app_name() -> None:
    assert role_of(snapshot(1, ["celery", "-A", "fairbeat", "beat"], False, {}), 9) == "beat"
    assert role_of(snapshot(2, WORKER, False, {}), 9) == "worker_main"
    assert role_of(snapshot(3, WORKER, True, {}), 9) == "worker_children"
    assert role_of(snapshot(9, ["python", "-m", "bench.profile"], False, {}), 9) == "driver"


def test_the_budget_is_what_each_role_gained_and_a_new_child_counts_from_zero() -> None:
    before = [snapshot(3, WORKER, True, {"fairbeat.run|UPDATE job": 10.0})]
    after = [
        snapshot(3, WORKER, True, {"fairbeat.run|UPDATE job": 30.0}),
        snapshot(4, WORKER, True, {"fairbeat.run|UPDATE job": 5.0, "-|BEGIN": 1.0}),
    ]
    gained = family_delta(before, after, driver_pid=9, family="sql")
    assert gained == {"worker_children": {"fairbeat.run|UPDATE job": 25.0, "-|BEGIN": 1.0}}
    by_key = regroup(gained["worker_children"], 1)
    assert per_job(by_key, 5) == {"UPDATE job": 5.0, "BEGIN": 0.2}


def test_slot_time_shares_add_up_to_the_slots() -> None:
    # 2 slots for 10 s: 4 s in run tasks (1 s of it handlers), 6 s in dispatch ticks.
    shares = slot_time(
        2, 10.0, 1.0, {"fairbeat.run": 4.0, "fairbeat.dispatch": 6.0}, "fairbeat.run"
    )
    assert shares == {
        "handler": 0.05,
        "run_task_around_handler": 0.15,
        "other_tasks": 0.3,
        "between_tasks": 0.5,
    }
    assert sum(shares.values()) == pytest.approx(1.0)


def test_statements_are_grouped_by_verb_and_first_table() -> None:
    assert statement_kind("UPDATE job SET state = %(s)s WHERE id = %(i)s") == "UPDATE job"
    assert statement_kind("SELECT job.id FROM job WHERE job.state = 'pending'") == "SELECT job"
    assert statement_kind('INSERT INTO "function_run" (id) VALUES (1)') == "INSERT function_run"
    assert statement_kind("BEGIN") == "BEGIN"
    assert statement_kind("   ") == "?"
