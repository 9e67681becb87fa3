"""The dependency policy: a dependent is released exactly when its last parent
succeeds, and ended by the first parent that fails or is cancelled."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairbeat.scheduling.dependencies import (
    DEPENDENCIES_MET,
    DEPENDENCY_CANCELLED,
    DEPENDENCY_FAILED,
    DEPENDENCY_REFUSED,
    POLICIES,
    DependencyPolicy,
    dependency_error,
    initial_wait,
    on_parent_end,
)
from fairbeat.scheduling.jobstate import JobStatus, can_move

ENDS = [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED]
NOT_ENDED = [JobStatus.WAITING, JobStatus.PENDING, JobStatus.CLAIMED, JobStatus.RUNNING]


def _replay(
    parents: list[JobStatus], policy: DependencyPolicy
) -> tuple[JobStatus, list[JobStatus]]:
    """Feed the parents' ends, in order, to one dependent; its final status and path."""
    wait = initial_wait((i, JobStatus.RUNNING) for i in range(len(parents)))
    status, left, path = wait.status, wait.waiting_on, [wait.status]
    for parent_id, end in enumerate(parents):
        if status != JobStatus.WAITING:
            break  # the store only settles WAITING dependents
        decision = on_parent_end(
            parent_id=parent_id, parent_status=end, waiting_on=left, policy=policy
        )
        if decision.to_status != status:
            assert can_move(status, decision.to_status)
            path.append(decision.to_status)
        status, left = decision.to_status, decision.waiting_on
    return status, path


@given(st.lists(st.sampled_from(ENDS), min_size=1, max_size=12), st.sampled_from(POLICIES))
def test_released_only_when_every_parent_succeeded(
    ends: list[JobStatus], policy: DependencyPolicy
) -> None:
    final, path = _replay(ends, policy)
    if all(e == JobStatus.SUCCEEDED for e in ends):
        assert final == JobStatus.PENDING
    else:
        assert final == (JobStatus.FAILED if policy == "fail" else JobStatus.CANCELLED)
    assert JobStatus.PENDING not in path[:-1]  # released once, at the end if at all
    assert len(path) <= 2


@given(st.lists(st.sampled_from(NOT_ENDED + ENDS), max_size=12))
def test_the_initial_wait_counts_the_parents_not_yet_succeeded(parents: list[JobStatus]) -> None:
    wait = initial_wait(enumerate(parents))
    broken = [i for i, s in enumerate(parents) if s in (JobStatus.FAILED, JobStatus.CANCELLED)]
    if broken:
        assert wait.reason_code == DEPENDENCY_REFUSED and wait.refused_parent == broken[0]
    elif all(s == JobStatus.SUCCEEDED for s in parents):
        assert wait.status == JobStatus.PENDING and wait.reason_code == DEPENDENCIES_MET
    else:
        assert wait.status == JobStatus.WAITING
        assert wait.waiting_on == sum(s != JobStatus.SUCCEEDED for s in parents)


@pytest.mark.parametrize(
    ("policy", "code"), [("fail", DEPENDENCY_FAILED), ("cancel", DEPENDENCY_CANCELLED)]
)
def test_the_error_names_the_parent_and_the_setting(policy: DependencyPolicy, code: str) -> None:
    decision = on_parent_end(
        parent_id=42, parent_status=JobStatus.CANCELLED, waiting_on=2, policy=policy
    )
    assert decision.reason_code == code
    text = dependency_error(decision, policy)
    assert "job 42" in text and "CANCELLED" in text and "FAIRBEAT_DEPENDENCY_FAILURE" in text


def test_a_parent_that_has_not_ended_is_refused() -> None:
    with pytest.raises(ValueError, match="parent_status"):
        on_parent_end(parent_id=1, parent_status=JobStatus.RUNNING, waiting_on=1, policy="fail")
