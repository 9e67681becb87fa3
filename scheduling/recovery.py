"""What happens to a job whose worker went silent."""

from __future__ import annotations

from dataclasses import dataclass

from fairbeat.scheduling.jobstate import JobStatus

RECOVERED_TO_PENDING = "RECOVERED_TO_PENDING"  # the worker died; the job runs again
RECOVERED_TO_FAILED = "RECOVERED_TO_FAILED"  # the worker died on its last attempt
REQUEUED_UNDELIVERED = "REQUEUED_UNDELIVERED"  # claimed, but no worker ever started it


@dataclass(frozen=True)
class RecoveryDecision:
    to_status: JobStatus
    reason_code: str


def recover_running(*, attempts: int, max_attempts: int) -> RecoveryDecision:
    """A RUNNING job with no heartbeat since the cutoff: its attempt counts as used.

    So a poison job that kills its worker every time still stops at max_attempts.
    """
    if attempts >= max_attempts:
        return RecoveryDecision(JobStatus.FAILED, RECOVERED_TO_FAILED)
    return RecoveryDecision(JobStatus.PENDING, RECOVERED_TO_PENDING)
