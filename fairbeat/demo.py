"""Demo handlers and load for ``fairbeat up --demo``: something visible happens."""

from __future__ import annotations

import random
import time
import uuid

from celery import shared_task

from fairbeat.tasks.context import job_context

# Workspace -> job count: one hot tenant and a few small ones.
DEMO_LOAD = {"acme-hot": 60, "globex": 12, "initech": 8, "umbrella": 6}


@shared_task(name="demo.send_email")
def send_email(to: str, subject: str) -> None:
    ctx = job_context()
    time.sleep(random.uniform(0.02, 0.15))
    # The customer-visible part happens once, however often the job runs.
    ctx.once(f"email:{to}:{subject}", lambda: {"delivered_to": to})


@shared_task(name="demo.build_report")
def build_report(rows: int, fail_first: bool = False) -> None:
    ctx = job_context()
    if fail_first and ctx.attempt == 1:
        raise RuntimeError("report source not ready yet (the demo retries this)")
    time.sleep(min(rows, 500) / 2000)


def demo_jobs() -> list[tuple[str, str, dict[str, object], str]]:
    """(workspace, kind, payload, dedupe key) for one fresh demo run."""
    run = uuid.uuid4().hex[:8]
    out: list[tuple[str, str, dict[str, object], str]] = []
    for workspace, count in DEMO_LOAD.items():
        for n in range(count):
            if n % 4 == 3:
                payload: dict[str, object] = {"rows": 100 + n, "fail_first": n == 3}
                out.append((workspace, "demo.build_report", payload, f"{run}-{n}"))
            else:
                payload = {"to": f"user{n}@{workspace}.example", "subject": f"hello {run}"}
                out.append((workspace, "demo.send_email", payload, f"{run}-{n}"))
    return out
