"""The pending limit without a count on every enqueue.

``FAIRBEAT_PENDING_LIMIT`` refuses an enqueue once a workspace has that many
PENDING jobs. Counting them on every enqueue costs in proportion to the
workspace's backlog, which is exactly when enqueues come fastest: a hot
workspace with 1,500 jobs waiting made each enqueue three times slower.

So after one count a process may enqueue to the workspace a few more times
without counting: half the room the count left (after its own job), at most
``RECOUNT_AT_LEAST_EVERY``. One process enqueueing alone can therefore never
pass the limit and is refused exactly at it; the dispatcher only takes jobs
away. Several processes at once could pass it by at most that many each, as
they could already between one count and its insert: the limit was always a
soft bound, and now its cost no longer grows with the backlog.
"""

from __future__ import annotations

RECOUNT_AT_LEAST_EVERY = 64


def uncounted_after(limit: int, pending: int) -> int:
    """Enqueues that may follow without a count, after one that counted ``pending``
    jobs (fewer than ``limit``) and then added its own."""
    return max(0, min(RECOUNT_AT_LEAST_EVERY, (limit - pending - 1) // 2))
