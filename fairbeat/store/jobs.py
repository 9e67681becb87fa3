"""What every job query shares: the table, the due condition, the fence.

Every worker-side write is a conditional update on (id, fence, expected
status), written once here as :func:`fenced`: a message whose fence is old,
or that arrives twice, matches no row and changes nothing. The queries live
by role beside this module: ``new_jobs`` (insert, dedupe lookup), ``claiming``
(PENDING -> CLAIMED), ``transitions`` (the fenced worker steps) and
``job_queries`` (what operators list, count, cancel and retry).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam

from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store.models import job_table

job = job_table


def due(now: datetime) -> Any:
    """PENDING and runnable at ``now``."""
    return and_(job.c.status == JobStatus.PENDING.value, job.c.run_at <= now)


def fenced(job_id: int, fence: int, status: JobStatus) -> Any:
    """The row of exactly this claim, still in ``status``; any later claim has another fence."""
    return and_(job.c.id == job_id, job.c.fence == fence, job.c.status == status.value)


def fenced_by_params(status: JobStatus) -> Any:
    """:func:`fenced` with the job id and fence as the bind parameters ``job_id_``
    and ``fence_``, for a statement built once and run with its parameters: the
    worker's hot path then skips building and hashing a statement per job."""
    return and_(
        job.c.id == bindparam("job_id_"),
        job.c.fence == bindparam("fence_"),
        job.c.status == status.value,
    )
