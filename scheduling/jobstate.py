"""The job status machine, shared by the store and the tests."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
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
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
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
