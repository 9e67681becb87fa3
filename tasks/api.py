"""``enqueue()``: the one way in for Python callers.

Every check runs before anything is written, so a refused job leaves no row.
Pass ``session`` to enqueue inside your own SQLAlchemy transaction: the job
then exists only if you commit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from celery import Celery
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from fairbeat.store import concurrency, new_jobs
from fairbeat.store.db import autocommit
from fairbeat.store.models import DEDUPE_KEY_MAX, KIND_MAX, WORKSPACE_ID_MAX
from fairbeat.store.times import HIGHEST_TIME, LOWEST_TIME
from fairbeat.tasks.errors import EnqueueError, UnknownKind, WorkspaceBacklogFull
from fairbeat.tasks.families import after_ids, start_waiting, wait_for
from fairbeat.tasks.kick import kick
from fairbeat.tasks.pending_room import PendingRoom
from fairbeat.tasks.run import INTERNAL_PREFIXES, PermanentJobError, resolve_handler
from fairbeat.tasks.runtime import Runtime, runtime_of
from fairbeat.tasks.settings import CONCURRENCY_KEY_MAX, MAX_KEY_LIMIT, Settings

MAX_PRIORITY = 1_000_000
MAX_ATTEMPTS = 1000  # as FAIRBEAT_MAX_ATTEMPTS allows; the column is 32-bit
MAX_DEBOUNCE_S = 7 * 86400
OnConflict = Literal["keep", "replace_pending", "debounce"]
ON_CONFLICT = ("keep", "replace_pending", "debounce")


@dataclass(frozen=True)
class Enqueued:
    job_id: int
    created: bool  # False: the dedupe key named a job that already existed
    workspace_id: str
    kind: str
    run_at: datetime
    replaced: bool = False  # on_conflict replaced the pending job's payload and run_at


def _check_workspace(workspace_id: Any) -> str:
    if not isinstance(workspace_id, str) or not workspace_id.strip():
        raise EnqueueError("workspace_id", "must be a non-empty string")
    if len(workspace_id) > WORKSPACE_ID_MAX:
        raise EnqueueError("workspace_id", f"longer than {WORKSPACE_ID_MAX} characters")
    if not _storable_text(workspace_id):
        raise EnqueueError("workspace_id", "contains control characters or invalid unicode")
    return workspace_id


def _check_payload(payload: Any, max_bytes: int) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise EnqueueError("payload", f"must be a JSON object, got {type(payload).__name__}")
    try:
        encoded = json.dumps(payload, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise EnqueueError("payload", f"is not JSON-serialisable: {exc}") from None
    except RecursionError:
        raise EnqueueError("payload", "is nested too deeply") from None
    size = len(encoded.encode())
    if size > max_bytes:
        raise EnqueueError(
            "payload",
            f"is {size} bytes, over the limit of {max_bytes} (FAIRBEAT_PAYLOAD_MAX_BYTES)",
        )
    # What the worker will see: JSON round-tripped, never a live Python object.
    decoded: dict[str, Any] = json.loads(encoded)
    return decoded


def _check_kind(app: Celery, kind: Any, payload: dict[str, Any]) -> str:
    if not isinstance(kind, str) or not kind or len(kind) > KIND_MAX:
        raise EnqueueError("kind", f"must be a task name of 1 to {KIND_MAX} characters")
    app.loader.import_default_modules()
    try:
        resolve_handler(app, kind, payload)
    except PermanentJobError as exc:
        if kind not in app.tasks or kind.startswith(INTERNAL_PREFIXES):
            known = sorted(k for k in app.tasks if not k.startswith(INTERNAL_PREFIXES))
            raise UnknownKind(kind, known) from None
        raise EnqueueError("payload", str(exc)) from None
    return kind


def _check_run_at(run_at: Any, now: datetime) -> datetime:
    if run_at is None:
        return now
    if not isinstance(run_at, datetime):
        raise EnqueueError("run_at", "must be a datetime")
    if run_at.tzinfo is None or run_at.utcoffset() is None:
        raise EnqueueError("run_at", "has no timezone; pass an aware datetime (e.g. in UTC)")
    try:
        in_utc = run_at.astimezone(UTC)
    except OverflowError:
        raise EnqueueError("run_at", "is out of range once converted to UTC") from None
    if not LOWEST_TIME <= in_utc < HIGHEST_TIME:
        # What every loop can load (store/poison.py); PostgreSQL's CHECK says the same.
        raise EnqueueError(
            "run_at", f"must lie from {LOWEST_TIME:%Y-%m-%d} to {HIGHEST_TIME:%Y-%m-%d} (UTC)"
        )
    return in_utc


def _storable_text(value: str) -> bool:
    """What every database column takes: isprintable() also refuses NUL (which
    PostgreSQL text cannot hold) and lone surrogates (which UTF-8 cannot encode)."""
    return value.isprintable()


def _check_options(dedupe_key: Any, priority: Any, max_attempts: Any) -> None:
    if dedupe_key is not None and (
        not isinstance(dedupe_key, str) or not dedupe_key or len(dedupe_key) > DEDUPE_KEY_MAX
    ):
        raise EnqueueError("dedupe_key", f"must be a string of 1 to {DEDUPE_KEY_MAX} characters")
    if dedupe_key is not None and not _storable_text(dedupe_key):
        raise EnqueueError("dedupe_key", "contains control characters or invalid unicode")
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > MAX_PRIORITY:
        raise EnqueueError("priority", f"must be an integer within ±{MAX_PRIORITY}")
    if (
        isinstance(max_attempts, bool)
        or not isinstance(max_attempts, int)
        or not 1 <= max_attempts <= MAX_ATTEMPTS
    ):
        raise EnqueueError("max_attempts", f"must be an integer from 1 to {MAX_ATTEMPTS}")


def _check_class(priority_class: Any, classes: Sequence[str]) -> str:
    if not isinstance(priority_class, str) or priority_class not in classes:
        raise EnqueueError(
            "priority_class",
            f"must be one of {', '.join(classes)} (FAIRBEAT_PRIORITY_CLASSES),"
            f" got {priority_class!r}",
        )
    return priority_class


def _check_keys(key: Any, keys: Any, limit: Any, named: dict[str, int]) -> dict[str, int]:
    """Key -> the limit the job is enqueued with (a named limit wins when claimed)."""
    if keys is not None and (isinstance(keys, str) or not isinstance(keys, Sequence)):
        raise EnqueueError("concurrency_keys", "must be a list of strings")
    wanted = ([] if key is None else [key]) + list(keys or ())
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_KEY_LIMIT
    ):
        raise EnqueueError("concurrency_limit", f"must be an integer from 1 to {MAX_KEY_LIMIT}")
    out: dict[str, int] = {}
    for k in wanted:
        if not isinstance(k, str) or not 1 <= len(k) <= CONCURRENCY_KEY_MAX or k == "global:":
            raise EnqueueError(
                "concurrency_key", f"must be a string of 1 to {CONCURRENCY_KEY_MAX} characters"
            )
        if not _storable_text(k):
            raise EnqueueError("concurrency_key", "contains control characters or invalid unicode")
        own = limit if limit is not None else named.get(k)
        if own is None:
            raise EnqueueError(
                "concurrency_limit",
                f"key {k!r} has no limit: pass concurrency_limit= or name it in"
                " FAIRBEAT_CONCURRENCY_LIMITS",
            )
        out[k] = own
    return out


def _check_conflict(
    on_conflict: Any, debounce_s: Any, dedupe_key: str | None, run_at: datetime | None
) -> float | None:
    """The debounce window in seconds, or None when the enqueue does not debounce."""
    if on_conflict not in ON_CONFLICT:
        raise EnqueueError("on_conflict", f"must be one of {', '.join(ON_CONFLICT)}")
    if on_conflict != "keep" and dedupe_key is None:
        raise EnqueueError("on_conflict", f"{on_conflict!r} needs a dedupe_key")
    if on_conflict != "debounce":
        if debounce_s is not None:
            raise EnqueueError("debounce_s", "only applies with on_conflict='debounce'")
        return None
    if (
        isinstance(debounce_s, bool)
        or not isinstance(debounce_s, int | float)
        or not 0 < debounce_s <= MAX_DEBOUNCE_S
    ):
        raise EnqueueError("debounce_s", f"must be a number of seconds in (0, {MAX_DEBOUNCE_S}]")
    if run_at is not None:
        raise EnqueueError("run_at", "a debounced job runs debounce_s after the last enqueue")
    return float(debounce_s)


def enqueue(
    workspace_id: str,
    kind: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    run_at: datetime | None = None,
    priority: int = 0,
    priority_class: str = "default",
    max_attempts: int | None = None,
    concurrency_key: str | None = None,
    concurrency_keys: Sequence[str] | None = None,
    concurrency_limit: int | None = None,
    on_conflict: OnConflict = "keep",
    debounce_s: float | None = None,
    after: list[int] | None = None,
    session: Session | None = None,
    app: Celery | None = None,
) -> Enqueued:
    """Add a job for ``workspace_id``: a PENDING row the dispatcher will pick up.

    Higher ``priority`` runs first within its workspace; a higher
    ``priority_class`` (FAIRBEAT_PRIORITY_CLASSES, highest first) is dispatched
    first across all workspaces, within each workspace's quota. The same
    ``dedupe_key`` in a workspace returns the existing job (``created=False``);
    ``on_conflict`` can instead replace a still-PENDING job's payload and
    run_at, or debounce it (docs/concurrency.md). At most ``concurrency_limit``
    jobs of each concurrency key are in flight at once; a key is the
    workspace's own unless it starts with ``global:``. ``after`` names jobs of
    the same workspace it runs after: it waits (WAITING) until each SUCCEEDED;
    one already FAILED or CANCELLED is refused (EnqueueError on ``after``).
    """
    if app is None:
        from fairbeat.tasks.application import default_app

        app = default_app()
    rt: Runtime = runtime_of(app)
    now = rt.now()
    attempts = rt.settings.max_attempts if max_attempts is None else max_attempts
    _check_options(dedupe_key, priority, attempts)
    window = _check_conflict(on_conflict, debounce_s, dedupe_key, run_at)
    if window is not None:
        run_at = now + timedelta(seconds=window)
    keys = _check_keys(
        concurrency_key, concurrency_keys, concurrency_limit, rt.settings.concurrency_limits
    )
    new = prepare(
        app,
        workspace_id,
        kind,
        payload,
        dedupe_key,
        run_at,
        priority,
        attempts,
        priority_class=priority_class,
    )
    return insert(app, new, after_ids(after), keys, on_conflict, session)


def prepare(
    app: Celery,
    workspace_id: Any,
    kind: Any,
    payload: Any,
    dedupe_key: str | None,
    run_at: Any,
    priority: int,
    attempts: int,
    parent_id: int | None = None,
    priority_class: str = "default",
) -> new_jobs.NewJob:
    """The job as it would be inserted, every check done that needs no database."""
    rt: Runtime = runtime_of(app)
    _check_options(dedupe_key, priority, attempts)
    checked_class = _check_class(priority_class, rt.settings.priority_classes)
    checked_payload = _check_payload(payload, rt.settings.payload_max_bytes)
    return new_jobs.NewJob(
        workspace_id=_check_workspace(workspace_id),
        kind=_check_kind(app, kind, checked_payload),
        payload=checked_payload,
        run_at=_check_run_at(run_at, rt.now()),
        priority=priority,
        max_attempts=attempts,
        dedupe_key=dedupe_key,
        created_at=rt.now(),
        parent_id=parent_id,
        priority_class=checked_class,
    )


def insert(
    app: Celery,
    new: new_jobs.NewJob,
    after: tuple[int, ...] = (),
    keys: dict[str, int] | None = None,
    on_conflict: str = "keep",
    session: Session | None = None,
) -> Enqueued:
    """Insert a prepared job (its own transaction, or ``session``'s); kick the dispatcher."""
    rt: Runtime = runtime_of(app)
    keys = keys or {}
    if session is not None:
        job_id, created, replaced = _insert(
            session.connection(), new, rt.settings, keys, on_conflict, after, room=rt.pending_room
        )
        if (created or replaced) and new.run_at <= new.created_at:
            # Kick once the caller commits: before that no dispatcher can see the job.
            event.listen(session, "after_commit", lambda _s: kick(app, "enqueue"), once=True)
    else:
        # The pending limit is a soft bound; no statement here needs another's
        # transaction, so each commits alone: two round trips, not four. A job
        # with keys is one transaction: a claim must never see it without them;
        # so is one with ``after``: its parents are read and its rows written together.
        with rt.engine.begin() if keys or after else autocommit(rt.engine) as conn:
            job_id, created, replaced = _insert(
                conn, new, rt.settings, keys, on_conflict, after, room=rt.pending_room
            )
        if (created or replaced) and new.run_at <= new.created_at:
            kick(app, "enqueue")
    return Enqueued(job_id, created, new.workspace_id, new.kind, new.run_at, replaced)


def _insert(
    conn: Connection,
    new: new_jobs.NewJob,
    settings: Settings,
    keys: dict[str, int],
    on_conflict: str,
    after: tuple[int, ...] = (),
    strict: bool = True,
    room: PendingRoom | None = None,
) -> tuple[int, bool, bool]:
    """Insert, unless the dedupe key names a job already, or the workspace is full:
    (job id, created, replaced). ``strict`` False: a child created with its
    parent's success (checked when the handler enqueued it), see
    :func:`insert_child`. ``room``: this process's memory of the pending limit
    (None: count)."""
    if new.dedupe_key is not None:
        existing = new_jobs.find_by_dedupe_key(conn, new.workspace_id, new.dedupe_key)
        if existing is not None:
            return existing, False, _on_conflict(conn, existing, new, on_conflict)
    limit = settings.pending_limit
    if strict and (room or PendingRoom()).full(conn, new.workspace_id, limit):
        raise WorkspaceBacklogFull(new.workspace_id, limit, settings.pending_retry_after_s)
    wait = wait_for(conn, new.workspace_id, after, strict) if after else None
    if wait is not None:
        new = replace(new, status=wait.status, waiting_on=wait.waiting_on)
    job_id, created = new_jobs.insert_job(conn, new)
    if not created:  # a concurrent enqueue of the same dedupe key won
        return job_id, False, _on_conflict(conn, job_id, new, on_conflict)
    if wait is not None:
        start_waiting(conn, job_id, after, wait, settings.dependency_failure, new.created_at)
    if keys:  # a job without keys costs no extra statement
        concurrency.add_keys(conn, job_id, new.workspace_id, keys)
    return job_id, True, False


def _on_conflict(conn: Connection, existing: int, new: new_jobs.NewJob, on_conflict: str) -> bool:
    """keep: the existing job as it is. replace_pending and debounce: its payload
    and run_at replaced while it is still PENDING; once claimed it is left alone."""
    if on_conflict == "keep":
        return False
    return new_jobs.replace_pending(conn, existing, new.payload, new.run_at)


def insert_child(
    conn: Connection, new: new_jobs.NewJob, settings: Settings, after: tuple[int, ...]
) -> None:
    """Insert a child in its parent's success transaction: its checks and the
    pending limit ran when the handler enqueued it; an ``after`` job since
    FAILED or CANCELLED ends it at once (FAIRBEAT_DEPENDENCY_FAILURE)."""
    _insert(conn, new, settings, {}, "keep", after, strict=False)
