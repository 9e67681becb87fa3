"""Keep running jobs' locks fresh while their handlers work, up to their time limits.

Recovery returns a RUNNING job to PENDING once its lock is older than the
stale cutoff. One thread per worker process (and runtime) refreshes the
locks of all the jobs it runs, three times per cutoff, in one fenced
statement: each lock is refreshed only for its own (job id, fence) while
the job is RUNNING, exactly as one update per job would. So only a worker
that died (or hung hard enough to stop its threads) lets a job go stale; a
job that is merely long never does. A job joins when its handler starts
and leaves when it ends; the thread starts with the first job and stays.

The refreshing stops once the attempt passes its hard time limit, whatever
the handler and its threads do: Celery kills a job at that limit, and where
it cannot (a pool without time limits, a kill that failed), the lock goes
stale one cutoff later and recovery takes the job back. So no attempt holds
its job past its time limit plus the stale cutoff.
"""

from __future__ import annotations

import logging
import os
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


class Heart:
    """The one heartbeat thread of a process for one runtime, and the jobs it keeps."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.lock = threading.Lock()
        self.jobs: dict[tuple[int, int], float | None] = {}  # (job id, fence): deadline
        self.thread: threading.Thread | None = None

    def add(self, job_id: int, fence: int, deadline: float | None) -> None:
        with self.lock:
            self.jobs[(job_id, fence)] = deadline
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._run, name="fairbeat-heartbeat", daemon=True
                )
                self.thread.start()

    def remove(self, job_id: int, fence: int) -> None:
        with self.lock:
            self.jobs.pop((job_id, fence), None)

    def _run(self) -> None:
        every = self.rt.settings.heartbeat_every_s
        while True:
            time.sleep(every)
            self.beat()

    def beat(self) -> None:
        """Refresh every kept job's lock once; drop those past their limit or taken away."""
        with self.lock:
            kept = dict(self.jobs)
        alive = [claim for claim, deadline in kept.items() if within_limit(deadline)]
        for job_id, fence in set(kept) - set(alive):
            log.warning(
                "job %s is past its time limit: its lock is no longer refreshed",
                job_id,
                extra={"action": "run.heartbeat_stopped", "job_id": job_id},
            )
            self.remove(job_id, fence)
        if not alive:
            return
        try:
            with autocommit(self.rt.engine) as conn:
                refreshed = transitions.heartbeat_many(conn, alive, self.rt.now())
        except Exception as exc:  # a missed beat is retried at the next one
            log.warning("heartbeat failed: %s", exc, extra={"action": "run.heartbeat_failed"})
            return
        for job_id, fence in alive:
            if job_id not in refreshed:  # taken away; its finish will be refused
                self.remove(job_id, fence)


_hearts: dict[tuple[int, int], Heart] = {}  # (pid, id of the runtime): its heart
_hearts_lock = threading.Lock()


def heart_of(rt: Runtime) -> Heart:
    # Keyed by pid too: a forked child inherits the dict but not the thread.
    key = (os.getpid(), id(rt))
    with _hearts_lock:
        heart = _hearts.get(key)
        if heart is None:
            heart = _hearts[key] = Heart(rt)
        return heart


@contextmanager
def keep_alive(
    rt: Runtime, job_id: int, fence: int, deadline: float | None = None
) -> Iterator[None]:
    heart = heart_of(rt)
    heart.add(job_id, fence, deadline)
    try:
        yield
    finally:
        heart.remove(job_id, fence)
