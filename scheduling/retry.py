"""When a handler raises: retry later, or give up (dead letter)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

RETRY_BACKOFF = "RETRY_BACKOFF"
MAX_ATTEMPTS_REACHED = "MAX_ATTEMPTS_REACHED"


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float
    cap_s: float


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_s: float
    reason_code: str
    evidence: dict[str, Any] = field(default_factory=dict)


def jitter_fraction(job_id: int, attempt: int) -> float:
    """A stable number in [0, 1) per (job, attempt).

    Derived from a hash instead of a random generator so the decision is
    reproducible, yet jobs that failed together spread out on retry.
    """
    digest = hashlib.blake2b(f"{job_id}:{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def decide_retry(
    *, job_id: int, attempt: int, max_attempts: int, policy: RetryPolicy
) -> RetryDecision:
    """Exponential backoff with "equal jitter": half fixed, half spread.

    ``attempt`` is the attempt that just failed, counting from 1.
    """
    if attempt >= max_attempts:
        return RetryDecision(
            retry=False,
            delay_s=0.0,
            reason_code=MAX_ATTEMPTS_REACHED,
            evidence={"attempt": attempt, "max_attempts": max_attempts},
        )
    ceiling = min(policy.cap_s, policy.base_s * 2 ** (attempt - 1))
    delay = ceiling / 2 + ceiling / 2 * jitter_fraction(job_id, attempt)
    return RetryDecision(
        retry=True,
        delay_s=delay,
        reason_code=RETRY_BACKOFF,
        evidence={"attempt": attempt, "max_attempts": max_attempts, "ceiling_s": ceiling},
    )
