"""``enqueue()``: the one way in for Python callers.

Every check runs before anything is written, so a refused job leaves no row.
Pass ``session`` to enqueue inside your own SQLAlchemy transaction: the job
then exists only if you commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from fairbeat.store import new_jobs, selection
from fairbeat.store.db import autocommit
from fairbeat.store.models import DEDUPE_KEY_MAX, KIND_MAX, WORKSPACE_ID_MAX
from fairbeat.store.times import HIGHEST_TIME, LOWEST_TIME
from fairbeat.tasks.errors import EnqueueError, UnknownKind, WorkspaceBacklogFull
from fairbeat.tasks.kick import kick
from fairbeat.tasks.run import INTERNAL_PREFIXES, PermanentJobError, resolve_handler
from fairbeat.tasks.runtime import Runtime, runtime_of
from fairbeat.tasks.settings import Settings

MAX_PRIORITY = 1_000_000
MAX_ATTEMPTS = 1000  # as FAIRBEAT_MAX_ATTEMPTS allows; the column is 32-bit


@dataclass(frozen=True)
class Enqueued:
    job_id: int
    created: bool  # False: the dedupe key named a job that already existed
    workspace_id: str
    kind: str
    run_at: datetime


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


def enqueue(
    workspace_id: str,
    kind: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    run_at: datetime | None = None,
    priority: int = 0,
    max_attempts: int | None = None,
    session: Session | None = None,
    app: Celery | None = None,
) -> Enqueued:
    """Add a job for ``workspace_id``: a PENDING row the dispatcher will pick up.

    Higher ``priority`` runs first within its workspace. The same
    ``dedupe_key`` in a workspace returns the existing job (``created=False``).
    """
    if app is None:
        from fairbeat.tasks.application import default_app

        app = default_app()
    rt: Runtime = runtime_of(app)
    now = rt.now()
    attempts = rt.settings.max_attempts if max_attempts is None else max_attempts
    _check_options(dedupe_key, priority, attempts)
    checked_payload = _check_payload(payload, rt.settings.payload_max_bytes)
    new = new_jobs.NewJob(
        workspace_id=_check_workspace(workspace_id),
        kind=_check_kind(app, kind, checked_payload),
        payload=checked_payload,
        run_at=_check_run_at(run_at, now),
        priority=priority,
        max_attempts=attempts,
        dedupe_key=dedupe_key,
        created_at=now,
    )
    if session is not None:
        job_id, created = _insert(session.connection(), new, rt.settings)
        if created and new.run_at <= now:
            # Kick once the caller commits: before that no dispatcher can see the job.
            event.listen(session, "after_commit", lambda _s: kick(app, "enqueue"), once=True)
    else:
        # The pending limit is a soft bound; no statement here needs another's
        # transaction, so each commits alone: two round trips, not four.
        with autocommit(rt.engine) as conn:
            job_id, created = _insert(conn, new, rt.settings)
        if created and new.run_at <= now:
            kick(app, "enqueue")
    return Enqueued(job_id, created, new.workspace_id, new.kind, new.run_at)


def _insert(conn: Connection, new: new_jobs.NewJob, settings: Settings) -> tuple[int, bool]:
    """Insert, unless the dedupe key names a job already, or the workspace is full."""
    if new.dedupe_key is not None:
        existing = new_jobs.find_by_dedupe_key(conn, new.workspace_id, new.dedupe_key)
        if existing is not None:
            return existing, False
    limit = settings.pending_limit
    if selection.pending_count(conn, new.workspace_id, limit) >= limit:
        raise WorkspaceBacklogFull(new.workspace_id, limit, settings.pending_retry_after_s)
    return new_jobs.insert_job(conn, new)
