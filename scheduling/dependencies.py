"""What a job enqueued ``after`` others does when one of them ends.

A dependent job waits (status WAITING, never selected) while ``waiting_on``
of the jobs it names have not succeeded. Each parent that succeeds takes one
off the count; the last one releases it to PENDING. A parent that ends
FAILED or CANCELLED ends the dependent too, by the policy
(FAIRBEAT_DEPENDENCY_FAILURE): ``fail`` dead-letters it, ``cancel`` cancels it.
Parents must exist before a dependent names them, so no cycle can form.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from fairbeat.scheduling.jobstate import JobStatus

DependencyPolicy = Literal["fail", "cancel"]
POLICIES: tuple[DependencyPolicy, ...] = ("fail", "cancel")

DEPENDENCIES_MET = "DEPENDENCIES_MET"  # the last parent succeeded: the job is due
STILL_WAITING = "STILL_WAITING"  # a parent succeeded; others have not yet
DEPENDENCY_FAILED = "DEPENDENCY_FAILED"  # a parent failed or was cancelled: dead-lettered
DEPENDENCY_CANCELLED = "DEPENDENCY_CANCELLED"  # a parent failed or was cancelled: cancelled
DEPENDENCY_REFUSED = "DEPENDENCY_REFUSED"  # enqueue named a parent that can never succeed

# Parent outcomes that end a dependent instead of releasing it.
BROKEN = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})


@dataclass(frozen=True)
class DependentDecision:
    to_status: JobStatus  # WAITING: no change
    reason_code: str
    parent_id: int
    parent_status: JobStatus
    waiting_on: int  # parents still to succeed, after this one


def on_parent_end(
    *, parent_id: int, parent_status: JobStatus, waiting_on: int, policy: DependencyPolicy
) -> DependentDecision:
    """A WAITING job whose parent ``parent_id`` just ended; ``waiting_on`` is
    its count before that parent ended (at least 1)."""
    if parent_status == JobStatus.SUCCEEDED:
        left = max(waiting_on - 1, 0)
        if left == 0:
            return DependentDecision(
                JobStatus.PENDING, DEPENDENCIES_MET, parent_id, parent_status, 0
            )
        return DependentDecision(JobStatus.WAITING, STILL_WAITING, parent_id, parent_status, left)
    if parent_status not in BROKEN:
        raise ValueError(f"parent_status: {parent_status} is not an end of a job")
    if policy == "fail":
        return DependentDecision(
            JobStatus.FAILED, DEPENDENCY_FAILED, parent_id, parent_status, waiting_on
        )
    return DependentDecision(
        JobStatus.CANCELLED, DEPENDENCY_CANCELLED, parent_id, parent_status, waiting_on
    )


def dependency_error(decision: DependentDecision, policy: DependencyPolicy) -> str:
    """The ``last_error`` of a dependent ended by its parent: names the parent."""
    return (
        f"{decision.reason_code}: job {decision.parent_id} it runs after ended "
        f"{decision.parent_status.value} (FAIRBEAT_DEPENDENCY_FAILURE={policy})"
    )


@dataclass(frozen=True)
class InitialWait:
    status: JobStatus  # WAITING, or PENDING when every parent has succeeded already
    waiting_on: int
    reason_code: str
    refused_parent: int | None = None  # a parent already FAILED or CANCELLED
    refused_status: JobStatus | None = None  # and which of the two


def initial_wait(parents: Iterable[tuple[int, JobStatus]]) -> InitialWait:
    """A new job's start, from its parents' (id, status) as enqueue found them.

    A parent already FAILED or CANCELLED can never succeed: the job is
    refused (nothing is written) rather than created only to be ended.
    """
    waiting = 0
    for parent_id, status in parents:
        if status in BROKEN:
            return InitialWait(JobStatus.WAITING, 1, DEPENDENCY_REFUSED, parent_id, status)
        if status != JobStatus.SUCCEEDED:
            waiting += 1
    if waiting == 0:
        return InitialWait(JobStatus.PENDING, 0, DEPENDENCIES_MET)
    return InitialWait(JobStatus.WAITING, waiting, STILL_WAITING)
