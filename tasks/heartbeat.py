"""Keep a running job's lock fresh while its handler works, up to its time limit.

Recovery returns a RUNNING job to PENDING once its lock is older than the
stale cutoff. A thread refreshes the lock three times per cutoff while the
handler runs, so only a worker that died (or hung hard enough to stop its
threads) lets a job go stale; a job that is merely long never does.

The refreshing stops once the attempt passes its hard time limit, whatever
the handler and its threads do: Celery kills a job at that limit, and where
it cannot (a pool without time limits, a kill that failed), the lock goes
stale one cutoff later and recovery takes the job back. So no attempt holds
its job past its time limit plus the stale cutoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fairbeat.store import transitions
from fairbeat.store.db import autocommit
from fairbeat.tasks.runtime import Runtime

log = logging.getLogger("fairbeat.heartbeat")


def within_limit(deadline: float | None) -> bool:
    """Whether an attempt whose hard limit ends at ``deadline`` (monotonic) may go on."""
    return deadline is None or time.monotonic() < deadline


@contextmanager
def keep_alive(
    rt: Runtime, job_id: int, fence: int, deadline: float | None = None
) -> Iterator[None]:
    stop = threading.Event()
    every = rt.settings.heartbeat_every_s

    def beat() -> None:
        while not stop.wait(every):
            if not within_limit(deadline):
                log.warning(
                    "job %s is past its time limit: its lock is no longer refreshed",
                    job_id,
                    extra={"action": "run.heartbeat_stopped", "job_id": job_id},
                )
                return
            try:
                with autocommit(rt.engine) as conn:
                    if not transitions.heartbeat(conn, job_id, fence, rt.now()):
                        return  # the job was taken away; its finish will be refused
            except Exception as exc:  # a missed beat is retried at the next one
                log.warning(
                    "heartbeat failed: %s",
                    exc,
                    extra={"action": "run.heartbeat_failed", "job_id": job_id},
                )

    thread = threading.Thread(target=beat, name=f"fairbeat-heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=1.0)
