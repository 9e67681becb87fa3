"""A real dispatcher that stops between planning and claiming, for the SIGSTOP test.

    python -m tests.e2e.paused_dispatcher OFFSET_S

It takes the dispatch lease, begins its run, plans with the clock OFFSET_S
ahead (so it targets jobs scheduled for then, which the live fleet leaves
alone), prints one JSON line and waits for a line on stdin. The test stops it
with SIGSTOP there, lets a successor take over, resumes it with SIGCONT and
sends the line; it then carries out its plan and prints what got through.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta

from fairbeat import app
from fairbeat.store import runs
from fairbeat.tasks.dispatch import Dispatcher
from fairbeat.tasks.runtime import runtime_of


def main() -> None:
    offset = timedelta(seconds=float(sys.argv[1]))
    rt = runtime_of(app)
    dispatcher = Dispatcher(app)
    with rt.engine.connect() as conn:
        floor = runs.max_fence(conn, "dispatch")
    fence = rt.live.acquire_dispatch(dispatcher.lease_ms, floor)
    if fence is None:
        print(json.dumps({"error": "lease busy"}), flush=True)
        sys.exit(1)
    with rt.engine.begin() as conn:
        run_id = runs.begin(conn, "dispatch", f"paused:{fence}", fence, rt.now())
    assert run_id is not None
    planned = dispatcher.plan_tick(redis_ok=True, now=rt.now() + offset)
    print(
        json.dumps(
            {
                "ready": True,
                "fence": fence,
                "run_id": run_id,
                "planned": dict(planned.plan.allocations),
            }
        ),
        flush=True,
    )
    sys.stdin.readline()
    report = dispatcher.commit(planned, fence, redis_ok=True, run_id=run_id)
    with rt.engine.begin() as conn:
        finished = runs.finish(conn, run_id, fence, rt.now(), report.to_dict())
    saved = rt.live.save_fair_state(fence, planned.plan.state)
    print(
        json.dumps(
            {
                "claimed": report.claimed,
                "sent": report.sent,
                "finished": finished,
                "state_saved": saved,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
