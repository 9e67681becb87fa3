"""A history check in the style of Jepsen's queue checker, for one burst of jobs.

- lost: a committed job that is neither SUCCEEDED nor FAILED by the deadline;
- duplicated: a customer-visible send executed more than once (the test's own
  ledger, keyed by the job's dedupe key, which is also the provider's
  idempotency key);
- visible duplicates: sends the provider accepted twice, had it honoured the
  idempotency key (it does: this is the window's closing, measured);
- unexpected: a send with no committed job behind it.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from sqlalchemy import Engine, select

from fairbeat.store.models import job_table
from tests.chaos.handlers import ACCEPTED, EXECUTED


@dataclass(frozen=True)
class History:
    jobs: int
    lost: list[int]
    duplicated: dict[str, int]
    visible_duplicates: int
    unexpected: list[str]

    @property
    def clean(self) -> bool:
        return not self.lost and not self.duplicated and not self.unexpected

    def sound(self, in_flight: int) -> bool:
        """For faults that strike at any moment: nothing lost or unexpected, and a
        send ran twice only where a job died in the send-to-record window (at most
        one per job in flight, twice each), which the idempotency key hides."""
        window_hits = len(self.duplicated) <= in_flight and all(
            n == 2 for n in self.duplicated.values()
        )
        return not self.lost and not self.unexpected and not self.visible_duplicates and window_hits


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def check(engine: Engine, client: redis.Redis, expected_sends: dict[int, str]) -> History:
    """``expected_sends``: committed job id -> its send key (for jobs that send)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(job_table.c.id, job_table.c.status).where(
                job_table.c.id.in_(list(expected_sends))
            )
        ).all()
    status = {r.id: r.status for r in rows}
    lost = sorted(j for j in expected_sends if status.get(j) not in ("SUCCEEDED", "FAILED"))
    executed = {_text(k): int(v) for k, v in client.hgetall(EXECUTED).items()}
    known = set(expected_sends.values())
    accepted = {_text(m) for m in client.smembers(ACCEPTED)}
    return History(
        jobs=len(expected_sends),
        lost=lost,
        duplicated={k: n for k, n in executed.items() if n > 1 and k in known},
        visible_duplicates=0 if accepted <= known else len(accepted - known),
        unexpected=sorted(k for k in executed if k not in known),
    )
