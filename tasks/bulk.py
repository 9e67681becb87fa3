"""``enqueue_many()``: a batch of jobs in one transaction, one insert and one kick.

Every job gets the checks ``enqueue()`` gives one job, all before anything is
written; one bad job refuses the whole batch with an :class:`EnqueueError`
whose field names the job's index (``jobs[3].payload``). Pass ``session``
to enqueue inside your own SQLAlchemy transaction: the jobs then exist only
if you commit, and the one kick goes out after the commit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from celery import Celery
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from fairbeat.store import new_jobs, selection
from fairbeat.tasks import api
from fairbeat.tasks.errors import EnqueueError, WorkspaceBacklogFull
from fairbeat.tasks.kick import kick
from fairbeat.tasks.runtime import Runtime, runtime_of

FIELDS = frozenset(
    {
        "workspace_id",
        "kind",
        "payload",
        "dedupe_key",
        "run_at",
        "priority",
        "priority_class",
        "max_attempts",
    }
)
REQUIRED = ("workspace_id", "kind", "payload")

E = TypeVar("E", bound=EnqueueError)


def at_index(exc: E, index: int) -> E:
    """The same error, its field prefixed with the job's index in the batch."""
    reason = str(exc)[len(exc.field) + 2 :]
    exc.field = f"jobs[{index}].{exc.field}" if exc.field else f"jobs[{index}]"
    exc.args = (f"{exc.field}: {reason}",)
    exc.index = index
    return exc


def _checked(app: Celery, rt: Runtime, spec: Any) -> new_jobs.NewJob:
    if not isinstance(spec, Mapping):
        raise EnqueueError("", f"must be a mapping of job fields, got {type(spec).__name__}")
    unknown = sorted(set(spec) - FIELDS)
    if unknown:
        raise EnqueueError("", f"unknown field {unknown[0]!r}; the fields are {sorted(FIELDS)}")
    for name in REQUIRED:
        if name not in spec:
            raise EnqueueError(name, "is required")
    now = rt.now()
    max_attempts = spec.get("max_attempts")
    attempts = rt.settings.max_attempts if max_attempts is None else max_attempts
    dedupe_key = spec.get("dedupe_key")
    api._check_options(dedupe_key, spec.get("priority", 0), attempts)
    priority_class = api._check_class(
        spec.get("priority_class", "default"), rt.settings.priority_classes
    )
    payload = api._check_payload(spec["payload"], rt.settings.payload_max_bytes)
    return new_jobs.NewJob(
        workspace_id=api._check_workspace(spec["workspace_id"]),
        kind=api._check_kind(app, spec["kind"], payload),
        payload=payload,
        run_at=api._check_run_at(spec.get("run_at"), now),
        priority=spec.get("priority", 0),
        max_attempts=attempts,
        dedupe_key=dedupe_key,
        created_at=now,
        priority_class=priority_class,
    )


def check_all(app: Celery, jobs: Iterable[Any]) -> list[new_jobs.NewJob]:
    """Every job checked as ``enqueue()`` checks one; the first bad one raises, by index."""
    rt = runtime_of(app)
    checked = []
    for index, spec in enumerate(jobs):
        try:
            checked.append(_checked(app, rt, spec))
        except EnqueueError as exc:
            raise at_index(exc, index) from None
    return checked


def enqueue_many(
    jobs: Iterable[Mapping[str, Any]],
    *,
    session: Session | None = None,
    app: Celery | None = None,
) -> list[api.Enqueued]:
    """Add the jobs, all or none; one :class:`~fairbeat.Enqueued` per job, in order.

    Each job is a mapping with ``workspace_id``, ``kind`` and ``payload``, and
    optionally ``dedupe_key``, ``run_at``, ``priority``, ``priority_class`` and
    ``max_attempts``,
    meaning what they mean for ``enqueue()``. A dedupe key already taken, or
    repeated within the batch, yields the existing job (``created=False``).
    """
    if app is None:
        from fairbeat.tasks.application import default_app

        app = default_app()
    rt = runtime_of(app)
    checked = check_all(app, jobs)
    if session is not None:
        ids = _insert_batch(session.connection(), checked, rt)
    else:
        with rt.engine.begin() as conn:
            ids = _insert_batch(conn, checked, rt)
    out = [
        api.Enqueued(i, c, n.workspace_id, n.kind, n.run_at)
        for n, (i, c) in zip(checked, ids, strict=True)
    ]
    if any(e.created and n.run_at <= n.created_at for e, n in zip(out, checked, strict=True)):
        if session is not None:
            event.listen(session, "after_commit", lambda _s: kick(app, "enqueue"), once=True)
        else:
            kick(app, "enqueue")
    return out


def _insert_batch(
    conn: Connection, news: list[new_jobs.NewJob], rt: Runtime
) -> list[tuple[int, bool]]:
    """(job id, created) per job: dedupe keys resolved, pending limits checked, then inserted."""
    keyed = [(n.workspace_id, n.dedupe_key) for n in news if n.dedupe_key is not None]
    existing = new_jobs.find_by_dedupe_keys(conn, keyed) if keyed else {}
    fresh: list[int] = []  # indexes of the jobs to insert
    claimed: set[new_jobs.DedupeKey] = set(existing)
    for index, new in enumerate(news):
        key = None if new.dedupe_key is None else (new.workspace_id, new.dedupe_key)
        if key is None or key not in claimed:
            fresh.append(index)
            if key is not None:
                claimed.add(key)
    _check_limits(conn, news, fresh, rt)
    plain = [i for i in fresh if news[i].dedupe_key is None]
    with_key = [i for i in fresh if news[i].dedupe_key is not None]
    first_of_key = set(with_key)
    plain_ids = dict(zip(plain, new_jobs.insert_jobs(conn, [news[i] for i in plain]), strict=True))
    inserted = new_jobs.insert_keyed_jobs(conn, [news[i] for i in with_key])
    taken = [k for k in claimed - set(existing) if k not in inserted]
    if taken:  # another transaction inserted these keys since we looked
        existing.update(new_jobs.find_by_dedupe_keys(conn, taken))
    result = []
    for index, new in enumerate(news):
        if new.dedupe_key is None:
            result.append((plain_ids[index], True))
            continue
        key = (new.workspace_id, new.dedupe_key)
        created = index in first_of_key and key in inserted
        result.append((inserted[key] if created else existing.get(key) or inserted[key], created))
    return result


def _check_limits(
    conn: Connection, news: list[new_jobs.NewJob], fresh: list[int], rt: Runtime
) -> None:
    limit = rt.settings.pending_limit
    adding = Counter(news[i].workspace_id for i in fresh)
    pending = {w: selection.pending_count(conn, w, limit) for w in sorted(adding)}
    seen: Counter[str] = Counter()
    for index in fresh:
        workspace = news[index].workspace_id
        seen[workspace] += 1
        if pending[workspace] + seen[workspace] > limit:
            full = WorkspaceBacklogFull(workspace, limit, rt.settings.pending_retry_after_s)
            raise at_index(full, index)
