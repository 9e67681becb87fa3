from fairbeat.scheduling.canary import GO, NO_GO, CanaryMeasures, Thresholds, verdict


def measures(**change: object) -> CanaryMeasures:
    values: dict[str, object] = {
        "queue_age_p95_s": 2.0,
        "duplicate_sends": 0,
        "stale_runs": 0,
        "jobs_by_workspace": {"hot": 100, "small": 5},
        "done_by_workspace": {"hot": 100, "small": 5},
        "max_wait_by_workspace": {"hot": 40.0, "small": 1.5},
    }
    values.update(change)
    return CanaryMeasures(**values)  # type: ignore[arg-type]


def test_a_healthy_burst_is_go() -> None:
    assert verdict(measures(), Thresholds()).decision == GO


def test_each_threshold_alone_makes_it_no_go() -> None:
    for change in (
        {"queue_age_p95_s": 301.0},
        {"queue_age_p95_s": None},
        {"duplicate_sends": 1},
        {"stale_runs": 1},
        {"done_by_workspace": {"hot": 100, "small": 4}},
        {"max_wait_by_workspace": {"hot": 40.0, "small": 400.0}},
    ):
        result = verdict(measures(**change), Thresholds())
        assert result.decision == NO_GO, change
        assert sum(not c.passed for c in result.checks) == 1, change


def test_starved_workspaces_are_named() -> None:
    result = verdict(measures(done_by_workspace={"hot": 100}), Thresholds())
    assert result.starved == ("small",)
