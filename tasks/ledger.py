"""The run ledger around a dispatch, gate or maintenance run, written once.

``with ledger.entry(rt, "gate", window_key, now) as run:`` begins the run's
function_run row (fenced one above every earlier run of that function), hands
the body a :class:`LedgerRun` to heartbeat and to fill its report, and
finishes the row on the way out: SUCCEEDED when the body returns, FAILED when
it raises (the exception goes on) or sets ``run.failed``. It yields None when
this window already has a run, so a beat tick fired twice runs once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fairbeat.store import runs
from fairbeat.store.db import autocommit
from fairbeat.tasks.runtime import Runtime


@dataclass
class LedgerRun:
    """A begun run: its row id and fence, and the report its row is finished with."""

    rt: Runtime
    run_id: int
    fence: int
    report: dict[str, Any] = field(default_factory=dict)
    # Set by a body that carried on past a failed step: the row is finished FAILED.
    failed: bool = False

    def heartbeat(self) -> bool:
        """Refresh the row; False once the run was declared stale or superseded: stop."""
        with autocommit(self.rt.engine) as conn:
            return runs.heartbeat(conn, self.run_id, self.fence, self.rt.now())


@contextmanager
def entry(
    rt: Runtime, function: str, window_key: str, now: datetime, fence: int | None = None
) -> Iterator[LedgerRun | None]:
    """Begin ``function``'s run for ``window_key``; None when that window already ran.

    ``fence`` defaults to one above the function's highest; the dispatcher
    passes the fence its Redis lease carries.
    """
    with rt.engine.begin() as conn:
        if fence is None:
            fence = runs.max_fence(conn, function) + 1
        run_id = runs.begin(conn, function, window_key, fence, now)
    if run_id is None:
        yield None
        return
    run = LedgerRun(rt, run_id, fence)
    status = runs.FAILED
    try:
        yield run
        status = runs.FAILED if run.failed else runs.SUCCEEDED
    finally:
        with rt.engine.begin() as conn:
            runs.finish(conn, run_id, fence, rt.now(), run.report, status)
