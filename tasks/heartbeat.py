"""Keep a running job's lock fresh while its handler works.

Recovery returns a RUNNING job to PENDING once its lock is older than the
stale cutoff. A thread refreshes the lock three times per cutoff for as long
as the handler runs, so only a worker that died (or hung hard enough to stop
its threads) lets a job go stale; a job that is merely long never does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from fairbeat.store import transitions
from fairbeat.store.db import autocommit
from fairbeat.tasks.runtime import Runtime

log = logging.getLogger("fairbeat.heartbeat")


@contextmanager
def keep_alive(rt: Runtime, job_id: int, fence: int) -> Iterator[None]:
    stop = threading.Event()
    every = rt.settings.heartbeat_every_s

    def beat() -> None:
        while not stop.wait(every):
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
