"""Per-job time limits, built on Celery's own.

Every job runs inside ``fairbeat.run``, so Celery's limits are set per
message: the dispatcher sends each run with the ``time_limit`` and
``soft_time_limit`` of its job's kind. The soft limit raises
``SoftTimeLimitExceeded`` inside the handler, which ends the attempt (retried,
or FAILED on its last one); a handler that swallows it is killed at the hard
limit, and the worker's main process ends the attempt the same way. Either
way ``last_error`` starts with ``TIME_LIMIT`` and the slot is free.

A kind's limits are its handler task's own ``time_limit`` and
``soft_time_limit`` when they are set, else FAIRBEAT_JOB_TIME_LIMIT_S and
FAIRBEAT_JOB_SOFT_TIME_LIMIT_S (or a fraction of the hard limit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from celery import Celery

from fairbeat.store.recovery import SilentJob
from fairbeat.tasks.runtime import runtime_of
from fairbeat.tasks.settings import DEFAULT_JOB_SOFT_LIMIT_FRACTION, Settings

TIME_LIMIT = "TIME_LIMIT"  # the reason code at the head of last_error


@dataclass(frozen=True)
class TimeLimits:
    soft_s: float
    hard_s: float

    def send_options(self) -> dict[str, Any]:
        """The options of ``send_task`` that set Celery's limits for one message."""
        return {"time_limit": self.hard_s, "soft_time_limit": self.soft_s}


def _positive(value: Any) -> float | None:
    """A usable limit from a task attribute; anything else is as if unset."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def resolve(settings: Settings, kind_hard: Any = None, kind_soft: Any = None) -> TimeLimits:
    """The limits of one kind: its own where set, the defaults elsewhere.

    The soft limit always comes first: a kind's own hard limit takes a soft
    one in proportion, not the global soft limit; a kind's soft limit at or
    past the default hard one lifts the hard limit in the same proportion.
    """
    own_hard, own_soft = _positive(kind_hard), _positive(kind_soft)
    hard = own_hard or settings.job_time_limit_s
    if own_hard is None and own_soft is not None and own_soft >= hard:
        hard = own_soft / DEFAULT_JOB_SOFT_LIMIT_FRACTION
    soft = own_soft
    if soft is None and own_hard is None:
        soft = settings.job_soft_time_limit_s
    if soft is None or soft >= hard:
        soft = hard * DEFAULT_JOB_SOFT_LIMIT_FRACTION
    return TimeLimits(soft_s=soft, hard_s=hard)


def from_message(timelimit: Any) -> TimeLimits | None:
    """The limits a received message carries (Celery's ``[hard, soft]``), if any."""
    hard, soft = [*(timelimit or ()), None, None][:2]
    hard_s, soft_s = _positive(hard), _positive(soft)
    if hard_s is None:
        return None
    if soft_s is None or soft_s >= hard_s:
        soft_s = hard_s * DEFAULT_JOB_SOFT_LIMIT_FRACTION
    return TimeLimits(soft_s=soft_s, hard_s=hard_s)


def limits_for(app: Celery, kind: str) -> TimeLimits:
    """The limits of ``kind`` as this process knows its handler task."""
    task = app.tasks.get(kind)
    return resolve(
        runtime_of(app).settings,
        getattr(task, "time_limit", None),
        getattr(task, "soft_time_limit", None),
    )


def send_options(app: Celery, kind: str) -> dict[str, Any]:
    """``send_task`` options for a run of ``kind``: its soft and hard time limits."""
    return limits_for(app, kind).send_options()


def limit_error(limit_s: float, soft: bool) -> str:
    """The head of ``last_error`` for an attempt ended by its time limit."""
    which = "soft time limit" if soft else "hard time limit (the worker killed it)"
    return (
        f"{TIME_LIMIT}: the job ran past its {which} of {limit_s:g} s "
        "(FAIRBEAT_JOB_TIME_LIMIT_S, or the handler task's time_limit/soft_time_limit)"
    )


def ran_to_its_limit(app: Celery, job: SilentJob) -> float | None:
    """The hard limit a silent job ran into, when its lock went quiet at it.

    A heartbeat is never sent past the limit, so a job whose last one came
    within one heartbeat period of its limit was stopped by the limit (killed,
    and its kill not recorded), not by a lost worker. None otherwise.
    """
    if job.started_at is None or job.locked_at is None:
        return None
    hard_s = limits_for(app, job.kind).hard_s
    ran_s = (job.locked_at - job.started_at).total_seconds()
    return hard_s if ran_s + runtime_of(app).settings.heartbeat_every_s >= hard_s else None


def recovered_error(limit_s: float, reason_code: str) -> str:
    """``last_error`` of a job recovery took back after its lock stopped at its limit."""
    return (
        f"{TIME_LIMIT}: no heartbeat since the job reached its hard time limit of "
        f"{limit_s:g} s (killed at the limit, its end not recorded); {reason_code}"
    )


class PastTimeLimit(RuntimeError):
    """The attempt is past its hard time limit; where Celery did not kill it, it stops here."""
