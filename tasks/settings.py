"""fairbeat's one settings object, read from ``FAIRBEAT_*`` environment variables.

Every default is a named value with the reason beside it. Built once, at the
edge (the Celery app, the CLI), and passed down; nothing deeper reads the
environment.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from fairbeat.scheduling.dependencies import DependencyPolicy
from fairbeat.scheduling.fair import MIN_WEIGHT
from fairbeat.scheduling.limits import MAX_WEIGHT, rate_limit_problem
from fairbeat.scheduling.quota import DEFAULT_TIER_QUOTAS
from fairbeat.scheduling.retention import RetentionPolicy, parse_duration
from fairbeat.tasks.redact import mask_url, mask_urls

# Enterprise workspaces get twice the share of a default one when both wait.
DEFAULT_TIER_WEIGHTS = {"default": 1.0, "enterprise": 2.0}

ENV_PREFIX = "FAIRBEAT_"

# A file beside the process: the embedded default needs nothing installed.
DEFAULT_DATABASE_URL = "sqlite:///fairbeat.db"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# fairbeat's own tasks (dispatch, gate, maintenance) never wait behind user jobs.
DEFAULT_CONTROL_QUEUE = "fairbeat.control"
DEFAULT_JOB_QUEUE = "jobs.default"
# As originally locked: a claim batch of 20 per dispatch tick.
DEFAULT_CLAIM_BATCH = 20
# As originally locked: 4 concurrent jobs per worker process.
DEFAULT_WORKER_CONCURRENCY = 4
# One second keeps an idle system's enqueue-to-start short while costing one
# cheap indexed query per second.
DEFAULT_DISPATCH_INTERVAL_S = 1.0
# Five attempts with the backoff below spans about half a minute of retries
# before a job is dead-lettered; set per job for longer.
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_RETRY_BASE_S = 2.0
DEFAULT_RETRY_CAP_S = 3600.0
# Payloads are arguments, not data transfer: 64 KiB keeps the job table lean.
DEFAULT_PAYLOAD_MAX_BYTES = 64 * 1024
# Longer than any sane job: past it Redis redelivers an unacked message, which
# the fence then drops; keep it above your longest job's run time.
DEFAULT_VISIBILITY_TIMEOUT_S = 3600

# A tick takes at most this many due jobs of one workspace: half a claim
# batch, so a batch always has room for a second workspace.
DEFAULT_PARTITION_CAP = 10
# In-flight (claimed + running) jobs across the fleet. About two per worker
# slot of a small fleet (4 workers x 4): enough to keep every slot busy
# between ticks, few enough that broker queues stay short and the fair order
# the dispatcher chose is the order jobs run in.
DEFAULT_GLOBAL_CAPACITY = 32
# In-flight jobs per live worker slot: each slot has its next job waiting in
# the broker, and no claim waits behind more than one running job per slot,
# so a claim starts well within the delivery timeout and is never re-sent.
DEFAULT_FLEET_CLAIMS_PER_SLOT = 2.0
# And, when more, this many seconds of work at the fleet's finish rate: short
# jobs then never drain a slot's queue between two ticks.
DEFAULT_CLAIM_AHEAD_S = 0.25
# Enqueue refuses past this many PENDING jobs of one workspace.
DEFAULT_PENDING_LIMIT = 10_000
DEFAULT_PENDING_RETRY_AFTER_S = 30.0
# Kicks within this window share one dispatch message (plus a trailing one).
DEFAULT_KICK_DEBOUNCE_MS = 50
# The dispatch lease: longer than any tick, short enough that a crashed
# dispatcher's successor starts within it.
DEFAULT_DISPATCH_LEASE_S = 30.0
# One dispatch run keeps ticking while there is work, up to this long, then
# hands over to a fresh message so other control tasks get a turn.
DEFAULT_DISPATCH_RUN_BUDGET_S = 2.0
DEFAULT_REDIS_PREFIX = "fairbeat"
# As locked by the design: no stale run blocks progress past 15 minutes.
DEFAULT_STALE_AFTER_S = 900.0
# A claimed job no worker started within this is sent again: a few minutes
# covers a broker hiccup and a worker restart without waiting on a lost message.
DEFAULT_DELIVERY_TIMEOUT_S = 300.0
# Celery's hard time limit of a job (a handler task's own ``time_limit`` wins):
# half an hour is longer than any job that should run inside a queue, and half
# the visibility timeout, so the broker never redelivers a job still within it.
DEFAULT_JOB_TIME_LIMIT_S = 1800.0
# Without FAIRBEAT_JOB_SOFT_TIME_LIMIT_S the soft limit (SoftTimeLimitExceeded
# raised in the handler) comes at this fraction of the hard one: the last tenth
# is left for the handler to clean up and for the run to record its attempt.
DEFAULT_JOB_SOFT_LIMIT_FRACTION = 0.9
DEFAULT_MAINTENANCE_INTERVAL_S = 60.0
# A cancelled running job's handler gets this long to see job_context().cancelled
# (or a False heartbeat) and stop by itself before its worker child is
# terminated: several heartbeats of a default job, and a handler mid-write
# finishes that write.
DEFAULT_CANCEL_GRACE_S = 30.0
# Health figures and the gate look back over one 15-minute window.
DEFAULT_HEALTH_WINDOW_S = 900.0
# A busy dispatcher ticks many times a second; one summary line per ten
# seconds is readable and still shows within a glance whether it is alive.
DEFAULT_LOG_TICK_EVERY_S = 10.0
# As locked by the design: the queue-age p95 breaches at 5 minutes.
DEFAULT_QUEUE_AGE_ALERT_S = 300.0
# Retention (maintenance prunes older finished rows; fairbeat prune does it by hand).
# A week of succeeded jobs answers "what ran last week?", and keeps a dedupe key
# taken for a week after its job finished.
DEFAULT_RETAIN_SUCCEEDED_S = 7 * 86_400.0
# Dead letters and cancellations wait for a person to look (and retry): a month
# covers a holiday and a monthly review.
DEFAULT_RETAIN_FAILED_S = 30 * 86_400.0
DEFAULT_RETAIN_CANCELLED_S = 30 * 86_400.0
# The run ledger writes about 92k rows a day while idle and is read for the last
# minutes; two days still answer "what happened overnight?".
DEFAULT_RETAIN_FUNCTION_RUN_S = 2 * 86_400.0
# Duplicate events are rare and each is an incident's evidence: a month.
DEFAULT_RETAIN_DUPLICATE_EVENT_S = 30 * 86_400.0
# Quota changes and alert episodes are audit history, a few rows a window:
# a quarter covers a quarterly review and any postmortem.
DEFAULT_RETAIN_GATE_DECISION_S = 90 * 86_400.0
DEFAULT_RETAIN_ALERT_S = 90 * 86_400.0
# One snapshot a minute: a week of trends.
DEFAULT_RETAIN_HEALTH_SNAPSHOT_S = 7 * 86_400.0
# Each prune statement deletes at most this many rows in its own short
# transaction, so no lock is held for long.
DEFAULT_PRUNE_BATCH_SIZE = 1000
# Batches per table per maintenance run: 20,000 rows a minute per table, above
# 300 finished jobs a second sustained; what is left goes on the next run.
DEFAULT_PRUNE_MAX_BATCHES = 20
# Autoscale bounds: capacity grows by this per active workspace, within [min, max].
DEFAULT_CAPACITY_MIN = 8
DEFAULT_CAPACITY_MAX = 512
DEFAULT_CAPACITY_PER_WORKSPACE = 16
# As locked by the design: the quota ladder 64 -> 100, 15-minute gate windows.
DEFAULT_QUOTA_LADDER = (64, 100)
DEFAULT_GATE_WINDOW_S = 900
# Per-workspace figures and metrics name at most this many workspaces; the rest
# are summed under "other", so label cardinality stays bounded.
DEFAULT_TOP_WORKSPACES = 10
# Schedules: an interval schedule may fire every second, so the scheduler
# ticks every second (one indexed query when nothing is due).
DEFAULT_SCHEDULE_INTERVAL_S = 1.0
# A slot a tick finds older than this was missed (beat or workers were down,
# or the schedule paused): a minute rides out a restart of beat or a worker.
DEFAULT_SCHEDULE_GRACE_S = 60.0
# A daily report missed during an outage still runs, once, when it is over.
MissedPolicy = Literal["skip", "catch_up_once"]
DEFAULT_SCHEDULE_MISSED: MissedPolicy = "catch_up_once"
# A job enqueued after one that failed or was cancelled can never run: fail
# dead-letters it, so it shows among the dead letters an operator already
# watches and can retry; cancel ends it quietly.
DEFAULT_DEPENDENCY_FAILURE: DependencyPolicy = "fail"

# Every duration is subtracted from "now" somewhere; a year is past any sane
# setting and keeps that arithmetic within the calendar.
MAX_DURATION_S = 366 * 86400.0
# A retention may be years (compliance), but "now - retention" must stay
# within the calendar too.
MAX_RETENTION_S = 100 * MAX_DURATION_S

CONCURRENCY_KEY_MAX = 200  # as the job_concurrency_key column holds
PRIORITY_CLASS_MAX = 32  # as the job.priority_class column holds
PRIORITY_CLASS_RE = re.compile(rf"[a-z0-9_-]{{1,{PRIORITY_CLASS_MAX}}}")
# Interactive work above the everyday, backfills below it.
DEFAULT_PRIORITY_CLASSES = ("critical", "default", "bulk")
# A tenth of each tick: a flood above slows a lower class, never stops it.
DEFAULT_PRIORITY_MIN_SHARE = 0.1
MAX_KEY_LIMIT = 100_000
SUPPORTED_DATABASES = ("sqlite", "postgresql")
SUPPORTED_BROKERS = ("redis", "rediss", "amqp", "amqps", "pyamqp")


class SettingsError(ValueError):
    """A setting has a wrong value; the message names the variable."""


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("["):
            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _parse_routes(value: Any) -> Any:
    """``"email.*=jobs.email,report.*=jobs.reports"`` or a JSON object."""
    if not isinstance(value, str):
        return value
    value = value.strip()
    if not value:
        return []
    if value.startswith("{"):
        return list(json.loads(value).items())
    pairs = []
    for part in value.split(","):
        pattern, sep, queue = part.partition("=")
        if not sep or not pattern.strip() or not queue.strip():
            raise ValueError(f"expected PATTERN=QUEUE, got {part!r}")
        pairs.append((pattern.strip(), queue.strip()))
    return pairs


class Settings(BaseSettings):
    # allow_inf_nan=False: inf or NaN in any number (also inside a JSON object)
    # is refused here instead of failing later inside every tick.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, allow_inf_nan=False
    )

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    broker_url: str | None = None  # None: the Redis URL
    imports: Annotated[list[str], NoDecode] = Field(default_factory=list)
    routes: Annotated[list[tuple[str, str]], NoDecode] = Field(default_factory=list)
    default_queue: str = Field(DEFAULT_JOB_QUEUE, min_length=1, max_length=200)
    control_queue: str = Field(DEFAULT_CONTROL_QUEUE, min_length=1, max_length=200)
    flower_basic_auth: str | None = None  # user:password; None: fairbeat up generates one
    claim_batch: int = Field(DEFAULT_CLAIM_BATCH, ge=1, le=10_000)
    worker_concurrency: int = Field(DEFAULT_WORKER_CONCURRENCY, ge=1, le=1024)
    dispatch_interval_s: float = Field(DEFAULT_DISPATCH_INTERVAL_S, gt=0, le=3600)
    max_attempts: int = Field(DEFAULT_MAX_ATTEMPTS, ge=1, le=1000)
    retry_base_s: float = Field(DEFAULT_RETRY_BASE_S, gt=0, le=MAX_DURATION_S)
    retry_cap_s: float = Field(DEFAULT_RETRY_CAP_S, gt=0, le=MAX_DURATION_S)
    payload_max_bytes: int = Field(DEFAULT_PAYLOAD_MAX_BYTES, ge=2, le=16 * 1024 * 1024)
    visibility_timeout_s: int = Field(DEFAULT_VISIBILITY_TIMEOUT_S, ge=10, le=MAX_DURATION_S)
    partition_cap: int = Field(DEFAULT_PARTITION_CAP, ge=1, le=10_000)
    global_capacity: int = Field(DEFAULT_GLOBAL_CAPACITY, ge=1, le=1_000_000)
    fleet_claims_per_slot: float = Field(DEFAULT_FLEET_CLAIMS_PER_SLOT, ge=1, le=100)
    claim_ahead_s: float = Field(DEFAULT_CLAIM_AHEAD_S, ge=0, le=60)
    pending_limit: int = Field(DEFAULT_PENDING_LIMIT, ge=1, le=100_000_000)
    pending_retry_after_s: float = Field(DEFAULT_PENDING_RETRY_AFTER_S, gt=0, le=MAX_DURATION_S)
    kick_debounce_ms: int = Field(DEFAULT_KICK_DEBOUNCE_MS, ge=1, le=60_000)
    dispatch_lease_s: float = Field(DEFAULT_DISPATCH_LEASE_S, ge=1, le=86_400)
    dispatch_run_budget_s: float = Field(DEFAULT_DISPATCH_RUN_BUDGET_S, gt=0, le=3600)
    tier_quotas: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_TIER_QUOTAS))
    tier_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_TIER_WEIGHTS))
    redis_prefix: str = Field(DEFAULT_REDIS_PREFIX, min_length=1, max_length=64)
    stale_after_s: float = Field(DEFAULT_STALE_AFTER_S, ge=1, le=MAX_DURATION_S)
    delivery_timeout_s: float = Field(DEFAULT_DELIVERY_TIMEOUT_S, ge=1, le=MAX_DURATION_S)
    job_time_limit_s: float = Field(DEFAULT_JOB_TIME_LIMIT_S, gt=0, le=MAX_DURATION_S)
    # None: DEFAULT_JOB_SOFT_LIMIT_FRACTION of the hard limit.
    job_soft_time_limit_s: float | None = Field(None, gt=0, le=MAX_DURATION_S)
    maintenance_interval_s: float = Field(DEFAULT_MAINTENANCE_INTERVAL_S, gt=0, le=3600)
    cancel_grace_s: float = Field(DEFAULT_CANCEL_GRACE_S, ge=0, le=86_400)
    health_window_s: float = Field(DEFAULT_HEALTH_WINDOW_S, ge=1, le=MAX_DURATION_S)
    queue_age_alert_s: float = Field(DEFAULT_QUEUE_AGE_ALERT_S, gt=0, le=MAX_DURATION_S)
    retain_succeeded_s: float = Field(DEFAULT_RETAIN_SUCCEEDED_S, ge=0, le=MAX_RETENTION_S)
    retain_failed_s: float = Field(DEFAULT_RETAIN_FAILED_S, ge=0, le=MAX_RETENTION_S)
    retain_cancelled_s: float = Field(DEFAULT_RETAIN_CANCELLED_S, ge=0, le=MAX_RETENTION_S)
    retain_function_run_s: float = Field(DEFAULT_RETAIN_FUNCTION_RUN_S, ge=0, le=MAX_RETENTION_S)
    retain_duplicate_event_s: float = Field(
        DEFAULT_RETAIN_DUPLICATE_EVENT_S, ge=0, le=MAX_RETENTION_S
    )
    retain_gate_decision_s: float = Field(DEFAULT_RETAIN_GATE_DECISION_S, ge=0, le=MAX_RETENTION_S)
    retain_alert_s: float = Field(DEFAULT_RETAIN_ALERT_S, ge=0, le=MAX_RETENTION_S)
    retain_health_snapshot_s: float = Field(
        DEFAULT_RETAIN_HEALTH_SNAPSHOT_S, ge=0, le=MAX_RETENTION_S
    )
    prune_batch_size: int = Field(DEFAULT_PRUNE_BATCH_SIZE, ge=1, le=10_000)
    prune_max_batches: int = Field(DEFAULT_PRUNE_MAX_BATCHES, ge=1, le=10_000)
    top_workspaces: int = Field(DEFAULT_TOP_WORKSPACES, ge=1, le=1000)
    slack_webhook_url: str | None = None  # None: alerts go to the log only
    log_format: Literal["json", "text"] = "json"
    # fairbeat's own loggers, whatever Celery's --loglevel: decisions stay visible.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # At most one dispatch.tick summary line per this many seconds (at INFO).
    log_tick_every_s: float = Field(DEFAULT_LOG_TICK_EVERY_S, gt=0, le=3600)
    autoscale_enabled: bool = True  # False: capacity stays at FAIRBEAT_GLOBAL_CAPACITY
    capacity_min: int = Field(DEFAULT_CAPACITY_MIN, ge=1)
    capacity_max: int = Field(DEFAULT_CAPACITY_MAX, ge=1)
    capacity_per_workspace: int = Field(DEFAULT_CAPACITY_PER_WORKSPACE, ge=1)
    autoscale_cooldown_s: float = Field(60.0, ge=0, le=MAX_DURATION_S)
    error_rate_limit: float = Field(0.05, ge=0, le=1)
    contention_limit: float = Field(0.2, ge=0, le=1)
    # Optionally resize running workers' pools (celery worker --autoscale) to the
    # desired worker count, through Celery's remote control.
    autoscale_apply_pool: bool = False
    quota_ladder: tuple[int, ...] = DEFAULT_QUOTA_LADDER
    promotion_enabled: bool = True  # the operator switch in Redis can also turn it off
    gate_window_s: int = Field(DEFAULT_GATE_WINDOW_S, ge=60, le=3600)
    tier_rate_limits: dict[str, float] = Field(default_factory=dict)  # starts/s; none: no limit
    borrow_limit: int = Field(0, ge=0, le=10_000)  # 0: no borrowing
    # Named concurrency-key limits, shared by every kind: key -> jobs in flight.
    concurrency_limits: dict[str, int] = Field(default_factory=dict)
    # count: equal shares of job starts; time: of worker seconds (scheduling/cost.py).
    fairness: Literal["count", "time"] = "count"
    fairness_default_run_s: float = Field(1.0, gt=0, le=86_400)  # a kind never seen finish
    fairness_ewma_alpha: float = Field(0.2, gt=0, le=1)
    schedule_interval_s: float = Field(DEFAULT_SCHEDULE_INTERVAL_S, gt=0, le=3600)
    schedule_grace_s: float = Field(DEFAULT_SCHEDULE_GRACE_S, ge=0, le=3600)
    # The missed policy of a schedule added without one.
    schedule_missed: MissedPolicy = DEFAULT_SCHEDULE_MISSED
    # What a job enqueued after a FAILED or CANCELLED one becomes: FAILED or CANCELLED.
    dependency_failure: DependencyPolicy = DEFAULT_DEPENDENCY_FAILURE
    # Priority classes across workspaces, highest first (scheduling/priority.py).
    priority_classes: Annotated[tuple[str, ...], NoDecode] = DEFAULT_PRIORITY_CLASSES
    # The share of a tick's room each lower class with due jobs is guaranteed.
    priority_min_share: float = Field(DEFAULT_PRIORITY_MIN_SHARE, ge=0, le=0.5)

    @field_validator("imports", mode="before")
    @classmethod
    def _imports(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("priority_classes", mode="before")
    @classmethod
    def _priority_classes_list(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("priority_classes")
    @classmethod
    def _priority_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # 'default' is what a row inserted without a class (plain SQL) holds.
        bad = [c for c in value if not PRIORITY_CLASS_RE.fullmatch(c)]
        if bad:
            raise ValueError(
                f"{bad[0]!r} is not a class name (1 to {PRIORITY_CLASS_MAX} of a-z, 0-9, _ -)"
            )
        if "default" not in value or len(set(value)) != len(value):
            raise ValueError("must name 'default' once, among distinct classes, highest first")
        return value

    @field_validator(
        "retain_succeeded_s",
        "retain_failed_s",
        "retain_cancelled_s",
        "retain_function_run_s",
        "retain_duplicate_event_s",
        "retain_gate_decision_s",
        "retain_alert_s",
        "retain_health_snapshot_s",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> Any:
        # A retention also reads as a duration: FAIRBEAT_RETAIN_FAILED_S=30d.
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("routes", mode="before")
    @classmethod
    def _routes(cls, value: Any) -> Any:
        return _parse_routes(value)

    @field_validator("routes")
    @classmethod
    def _route_queues(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        for pattern, queue in value:
            if not pattern.strip() or not queue.strip():
                raise ValueError(f"empty pattern or queue in {pattern!r}={queue!r}")
        return value

    @field_validator("default_queue", "control_queue")
    @classmethod
    def _queue_name(cls, value: str) -> str:
        if not value.strip() or value != value.strip():
            raise ValueError(f"a queue name must be non-empty, without spaces around it: {value!r}")
        return value

    @field_validator("imports")
    @classmethod
    def _import_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not isinstance(name, str) or not all(p.isidentifier() for p in name.split(".")):
                raise ValueError(f"not a module name: {name!r}")
        return value

    @field_validator("tier_rate_limits")
    @classmethod
    def _tier_rate_limits(cls, value: dict[str, float]) -> dict[str, float]:
        for tier, rate in value.items():
            problem = rate_limit_problem(rate) or (
                "0 is no limit: leave the tier out" if rate == 0 else None
            )
            if problem:
                raise ValueError(f"tier {tier!r}: {problem}")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            backend = make_url(value).get_backend_name()
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {mask_url(value)!r}") from exc
        if backend not in SUPPORTED_DATABASES:
            raise ValueError(f"unsupported database {backend!r}; use sqlite or postgresql")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            shown = mask_url(value)
            raise ValueError(f"not a Redis URL (redis://, rediss:// or unix://): {shown!r}")
        return value

    @field_validator("broker_url", "slack_webhook_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # FAIRBEAT_BROKER_URL= in an env file means "not set", as it reads.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in SUPPORTED_BROKERS:
            raise ValueError(f"unsupported broker {mask_url(value)!r}; use redis:// or amqp://")
        return value

    @model_validator(mode="after")
    def _queues_differ(self) -> Settings:
        if self.control_queue == self.default_queue or self.control_queue in {
            queue for _, queue in self.routes
        }:
            raise ValueError("FAIRBEAT_CONTROL_QUEUE must not also be a job queue")
        return self

    @field_validator("slack_webhook_url")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {mask_url(value)!r}")
        return value or None

    @field_validator("tier_quotas")
    @classmethod
    def _tier_quotas(cls, value: dict[str, int]) -> dict[str, int]:
        if "default" not in value or any(q < 0 for q in value.values()):
            raise ValueError("needs a 'default' tier, and no negative quota")
        return value

    @field_validator("concurrency_limits")
    @classmethod
    def _concurrency_limits(cls, value: dict[str, int]) -> dict[str, int]:
        for key, limit in value.items():
            if not key or len(key) > CONCURRENCY_KEY_MAX or not 1 <= limit <= MAX_KEY_LIMIT:
                raise ValueError(
                    f"{key!r}: keys of 1 to {CONCURRENCY_KEY_MAX} characters,"
                    f" limits from 1 to {MAX_KEY_LIMIT}"
                )
        return value

    @field_validator("tier_weights")
    @classmethod
    def _tier_weights(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not MIN_WEIGHT <= w <= MAX_WEIGHT for w in value.values()):
            raise ValueError(f"weights must lie within [{MIN_WEIGHT}, {MAX_WEIGHT}]")
        return value

    @field_validator("quota_ladder")
    @classmethod
    def _ladder(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or list(value) != sorted(set(value)) or value[0] < 1:
            raise ValueError("must be rising positive quotas, e.g. [64, 100]")
        return value

    @field_validator("gate_window_s")
    @classmethod
    def _gate_window(cls, value: int) -> int:
        if value % 60 or 60 % (value // 60):
            raise ValueError("must be whole minutes dividing an hour (e.g. 300, 900, 1800)")
        return value

    @model_validator(mode="after")
    def _job_limits(self) -> Settings:
        soft = self.job_soft_time_limit_s
        if soft is not None and soft >= self.job_time_limit_s:
            raise ValueError(
                "FAIRBEAT_JOB_SOFT_TIME_LIMIT_S must be below FAIRBEAT_JOB_TIME_LIMIT_S"
            )
        return self

    @model_validator(mode="after")
    def _capacity_bounds(self) -> Settings:
        if self.capacity_min > self.capacity_max:
            raise ValueError("FAIRBEAT_CAPACITY_MIN must not exceed FAIRBEAT_CAPACITY_MAX")
        return self

    @model_validator(mode="after")
    def _schedule_grace(self) -> Settings:
        if self.schedule_grace_s < self.schedule_interval_s:
            raise ValueError(
                "FAIRBEAT_SCHEDULE_GRACE_S must be at least FAIRBEAT_SCHEDULE_INTERVAL_S, "
                "or slots between two ticks would count as missed"
            )
        return self

    @property
    def heartbeat_every_s(self) -> float:
        """How often a running job's lock is refreshed: thrice per stale cutoff."""
        return max(0.5, self.stale_after_s / 3)

    @property
    def retention(self) -> RetentionPolicy:
        return RetentionPolicy(
            succeeded_s=self.retain_succeeded_s,
            failed_s=self.retain_failed_s,
            cancelled_s=self.retain_cancelled_s,
            function_run_s=self.retain_function_run_s,
            duplicate_event_s=self.retain_duplicate_event_s,
            gate_decision_s=self.retain_gate_decision_s,
            alert_s=self.retain_alert_s,
            health_snapshot_s=self.retain_health_snapshot_s,
            gate_window_s=self.gate_window_s,
            health_window_s=self.health_window_s,
        )

    @property
    def broker(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def job_queues(self) -> list[str]:
        """Every routed job queue, the default first, each once."""
        queues = [self.default_queue]
        for _, queue in self.routes:
            if queue not in queues:
                queues.append(queue)
        return queues


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning a validation error into one naming the variable."""
    try:
        return Settings(**overrides)
    except PydanticSettingsError as exc:
        # Raised while decoding a JSON value, before validation: name the variable.
        field = str(exc).split('"')[1] if '"' in str(exc) else ""
        name = ENV_PREFIX + field.upper() if field else "a FAIRBEAT_ variable"
        raise SettingsError(f"invalid fairbeat settings: {name}: not valid JSON") from None
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            name = ENV_PREFIX + field.upper() if field else "settings"
            problems.append(f"{name}: {error['msg']}")
        message = mask_urls(" ".join("; ".join(problems).split()))
        raise SettingsError("invalid fairbeat settings: " + message) from None
