"""The job status machine, shared by the store and the tests."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    # Waiting for the jobs it was enqueued ``after``; never selected for dispatch.
    WAITING = "WAITING"
    PENDING = "PENDING"
    CLAIMED = "CLAIMED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


IN_FLIGHT = frozenset({JobStatus.CLAIMED, JobStatus.RUNNING})
TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

# RUNNING -> PENDING is a retry with backoff or a recovery; CLAIMED -> PENDING
# gives back a claim whose message could not be sent or was never started.
# WAITING -> PENDING when the last job it waits for succeeds; -> FAILED or
# CANCELLED (FAIRBEAT_DEPENDENCY_FAILURE) when one of them fails or is cancelled.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.WAITING: frozenset({JobStatus.PENDING, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.PENDING: frozenset({JobStatus.CLAIMED, JobStatus.CANCELLED}),
    JobStatus.CLAIMED: frozenset({JobStatus.RUNNING, JobStatus.PENDING, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.PENDING, JobStatus.CANCELLED}
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset({JobStatus.PENDING}),  # an operator's retry of a dead letter
    JobStatus.CANCELLED: frozenset(),
}


def can_move(src: JobStatus, dst: JobStatus) -> bool:
    return dst in TRANSITIONS[src]
