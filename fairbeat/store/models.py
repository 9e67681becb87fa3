"""SQLAlchemy models. The job table is also a plain-SQL contract (docs/sql-contract.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

WORKSPACE_ID_MAX = 128
KIND_MAX = 200
DEDUPE_KEY_MAX = 200
CONCURRENCY_KEY_MAX = 200
PRIORITY_CLASS_MAX = 32
CRON_MAX = 200
TIMEZONE_MAX = 64
TASK_ID_MAX = 200
OPERATOR_MAX = 200

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on every backend.

    SQLite keeps no zone, so values are stored as naive UTC and made aware
    again on the way out; a naive value handed in is refused, never guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: fairbeat stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NOW = text("CURRENT_TIMESTAMP")


def postgres_check(condition: str, name: str) -> CheckConstraint:
    """A CHECK constraint created on PostgreSQL only (migration 0010 says why)."""
    return CheckConstraint(condition, name=name).ddl_if(dialect="postgresql")


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class Base(DeclarativeBase):
    metadata = metadata
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}  # noqa: RUF012 (SQLAlchemy reads it)


class Job(Base):
    __tablename__ = "job"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(WORKSPACE_ID_MAX))
    kind: Mapped[str] = mapped_column(String(KIND_MAX))
    payload: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'"))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'PENDING'"))
    priority: Mapped[int] = mapped_column(server_default=text("0"))
    run_at: Mapped[datetime] = mapped_column(server_default=NOW)
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(server_default=text("5"))
    dedupe_key: Mapped[str | None] = mapped_column(String(DEDUPE_KEY_MAX))
    fence: Mapped[int] = mapped_column(server_default=text("0"))
    claimed_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    locked_at: Mapped[datetime | None]
    locked_by: Mapped[str | None] = mapped_column(String(200))
    finished_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)
    # The Celery task id of the running attempt: what a cancel terminates.
    task_id: Mapped[str | None] = mapped_column(String(TASK_ID_MAX))
    cancelled_by: Mapped[str | None] = mapped_column(String(OPERATOR_MAX))
    # The job whose handler enqueued this one (job_context().enqueue); None: none did.
    parent_id: Mapped[int | None] = mapped_column(BigInteger)
    # How many of the jobs it runs after (job_dependency) have not succeeded yet.
    waiting_on: Mapped[int] = mapped_column(server_default=text("0"))
    # Its priority class across workspaces (FAIRBEAT_PRIORITY_CLASSES); a name no
    # longer configured is dispatched as 'default'.
    priority_class: Mapped[str] = mapped_column(
        String(PRIORITY_CLASS_MAX), server_default=text("'default'")
    )

    __table_args__ = (
        UniqueConstraint("workspace_id", "dedupe_key"),
        # Due-job selection walks this index in order: status, then the
        # workspace's own order (priority first, higher first; then run_at, id).
        Index("ix_job_due", "status", "workspace_id", text("priority DESC"), "run_at", "id"),
        Index("ix_job_status_run_at", "status", "run_at"),
        # Per-workspace due counts: a range scan that stops at now.
        Index("ix_job_workspace_due", "status", "workspace_id", "run_at"),
        # The same two per priority class: only read when more than one class
        # has PENDING jobs (store/selection.py).
        Index(
            "ix_job_class_due",
            "status",
            "priority_class",
            "workspace_id",
            text("priority DESC"),
            "run_at",
            "id",
        ),
        Index("ix_job_class_workspace_due", "status", "priority_class", "workspace_id", "run_at"),
        # The health window: jobs started, and finished, in the last minutes.
        Index("ix_job_started_at", "started_at"),
        Index("ix_job_finished_at", "finished_at"),
        # Retention: the oldest finished jobs of one status, without a scan.
        Index("ix_job_status_finished_at", "status", "finished_at"),
        # Every driver can load run_at (psycopg cannot load '-infinity' or year 0).
        postgres_check(
            "run_at >= '0001-01-02 00:00:00+00' AND run_at < '9999-12-30 00:00:00+00'",
            "ck_job_run_at_loadable",
        ),
        postgres_check("attempts >= 0", "ck_job_attempts_nonnegative"),
        postgres_check("max_attempts >= 1", "ck_job_max_attempts_positive"),
        postgres_check("fence >= 0", "ck_job_fence_nonnegative"),
        # A family: the children of a job.
        Index("ix_job_parent_id", "parent_id"),
    )


class JobDependency(Base):
    """``job_id`` runs only after ``depends_on`` has SUCCEEDED (enqueue's ``after``)."""

    __tablename__ = "job_dependency"

    job_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    depends_on: Mapped[int] = mapped_column(BigInteger, primary_key=True)

    # A job that ends looks up the jobs waiting on it.
    __table_args__ = (Index("ix_job_dependency_depends_on", "depends_on"),)


class JobEffect(Base):
    """The effects ledger: one row per customer-visible side effect done."""

    __tablename__ = "job_effect"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(WORKSPACE_ID_MAX))
    effect_key: Mapped[str] = mapped_column(String(400))
    job_id: Mapped[int] = mapped_column(BigInteger)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)

    __table_args__ = (UniqueConstraint("workspace_id", "effect_key"),)


class DuplicateEvent(Base):
    """The duplicate-send signal: a delivery dropped by the fence, or an effect suppressed."""

    __tablename__ = "duplicate_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(WORKSPACE_ID_MAX))
    job_id: Mapped[int] = mapped_column(BigInteger)
    fence: Mapped[int]
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)

    __table_args__ = (Index("ix_duplicate_event_created", "created_at", "workspace_id"),)


class FunctionRun(Base):
    """One row per dispatch, gate or maintenance run."""

    __tablename__ = "function_run"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    function: Mapped[str] = mapped_column(String(40))
    window_key: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16))
    fence: Mapped[int] = mapped_column(server_default=text("0"))
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        UniqueConstraint("function", "window_key"),
        Index("ix_function_run_status", "status", "heartbeat_at"),
        # "Has a successor with a higher fence begun?", asked before each claim.
        Index("ix_function_run_fence", "function", "fence"),
        # Retention: the oldest finished runs.
        Index("ix_function_run_finished_at", "finished_at"),
    )


class HealthSnapshot(Base):
    """The health figures, taken each maintenance run, for trends."""

    __tablename__ = "health_snapshot"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    taken_at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_health_snapshot_taken_at", "taken_at"),)


class Alert(Base):
    """One row per alert episode: fired once, resolved once."""

    __tablename__ = "alert"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    episode: Mapped[str] = mapped_column(String(80))
    fired_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        UniqueConstraint("kind", "episode"),
        Index("ix_alert_open", "kind", "resolved_at"),
        Index("ix_alert_resolved_at", "resolved_at"),  # retention
    )


class Workspace(Base):
    """Optional per-workspace settings; a workspace with no row has the defaults."""

    __tablename__ = "workspace"

    id: Mapped[str] = mapped_column(String(WORKSPACE_ID_MAX), primary_key=True)
    tier: Mapped[str] = mapped_column(String(40), server_default=text("'default'"))
    high_quota_enabled: Mapped[bool] = mapped_column(Boolean, server_default=false())
    weight: Mapped[float] = mapped_column(Float, server_default=text("1.0"))
    paused: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # Jobs started per second; None: the tier's limit (FAIRBEAT_TIER_RATE_LIMITS).
    rate_limit_per_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)

    # The bounds of scheduling/limits.py; NaN sorts above every number on PostgreSQL.
    __table_args__ = (
        postgres_check("weight >= 0.1 AND weight <= 100", "ck_workspace_weight_usable"),
        postgres_check(
            "rate_limit_per_s IS NULL OR rate_limit_per_s = 0"
            " OR (rate_limit_per_s >= 0.001 AND rate_limit_per_s <= 1000000)",
            "ck_workspace_rate_limit_usable",
        ),
    )


class GateDecision(Base):
    """One row per workspace per evaluated window: the verdict and its evidence."""

    __tablename__ = "gate_decision"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    window: Mapped[str] = mapped_column(String(40))
    workspace_id: Mapped[str] = mapped_column(String(WORKSPACE_ID_MAX))
    from_quota: Mapped[int]
    to_quota: Mapped[int]
    reason_code: Mapped[str] = mapped_column(String(40))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    decided_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("window", "workspace_id"),
        Index("ix_gate_decision_decided_at", "decided_at"),  # retention
    )


class OperatorAction(Base):
    """Who changed what, when and why: capacity pins, quota pins, the promotion switch."""

    __tablename__ = "operator_action"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    who: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str | None] = mapped_column(String(WORKSPACE_ID_MAX))
    value: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    why: Mapped[str] = mapped_column(Text)


class Schedule(Base):
    """A per-workspace recurring job: a cron expression or a fixed interval."""

    __tablename__ = "schedule"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(WORKSPACE_ID_MAX))
    kind: Mapped[str] = mapped_column(String(KIND_MAX))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    cron: Mapped[str | None] = mapped_column(String(CRON_MAX))
    every_s: Mapped[int | None]
    timezone: Mapped[str] = mapped_column(String(TIMEZONE_MAX), server_default=text("'UTC'"))
    # What a tick does with slots it finds older than the grace: skip or catch_up_once.
    missed: Mapped[str] = mapped_column(String(16))
    paused: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # The first slot not yet dealt with; None: the cron expression fires no more.
    next_slot: Mapped[datetime | None]
    last_slot: Mapped[datetime | None]
    last_job_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)
    created_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint("(cron IS NULL) <> (every_s IS NULL)", name="ck_schedule_cron_or_every"),
        # The scheduler tick's scan: unpaused schedules whose next slot has come.
        Index("ix_schedule_due", "paused", "next_slot"),
        Index("ix_schedule_workspace_id", "workspace_id"),
    )


class JobConcurrencyKey(Base):
    """One row per concurrency key of a job: at most ``max_in_flight`` jobs of
    one (scope, key) are CLAIMED or RUNNING at once. ``scope`` is the job's
    workspace, or '' for a ``global:`` key shared by every workspace."""

    __tablename__ = "job_concurrency_key"

    job_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(String(CONCURRENCY_KEY_MAX), primary_key=True)
    scope: Mapped[str] = mapped_column(String(WORKSPACE_ID_MAX))
    max_in_flight: Mapped[int]

    # The in-flight count of one key, and which jobs hold it.
    __table_args__ = (Index("ix_job_concurrency_key_scope_key", "scope", "key"),)


# Typed handles on the tables for Core queries.
job_table = cast(Table, Job.__table__)
job_dependency_table = cast(Table, JobDependency.__table__)
job_effect_table = cast(Table, JobEffect.__table__)
duplicate_event_table = cast(Table, DuplicateEvent.__table__)
function_run_table = cast(Table, FunctionRun.__table__)
workspace_table = cast(Table, Workspace.__table__)
health_snapshot_table = cast(Table, HealthSnapshot.__table__)
alert_table = cast(Table, Alert.__table__)
gate_decision_table = cast(Table, GateDecision.__table__)
operator_action_table = cast(Table, OperatorAction.__table__)
schedule_table = cast(Table, Schedule.__table__)
job_concurrency_key_table = cast(Table, JobConcurrencyKey.__table__)
