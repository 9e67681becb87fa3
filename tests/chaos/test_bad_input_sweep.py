"""Bad input and missing services, swept: a clear refusal or a clear error, never half a write.

- ``enqueue`` with arbitrary arguments, on both databases: an ``Enqueued`` or an
  ``EnqueueError``, and a refusal leaves the job table as it was;
- any string for any setting: valid, or a ``SettingsError`` naming its variable;
- Redis down: enqueue still writes (the kick fails quietly) and a beat dispatch
  still claims, with base quotas;
- the database down: a driver error at once, and nothing written anywhere;
- any rows and workspace settings written by plain SQL, on both databases:
  a dispatch tick still claims an innocent workspace's job, and maintenance,
  status and the exporter still answer.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
import redis
from celery import Celery
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError, OperationalError

from fairbeat.exporter import FairbeatCollector
from fairbeat.store import job_queries
from fairbeat.store.models import job_concurrency_key_table, job_table, workspace_table
from fairbeat.tasks.api import Enqueued, enqueue
from fairbeat.tasks.dispatch import BEAT, Dispatcher
from fairbeat.tasks.errors import EnqueueError
from fairbeat.tasks.health import snapshot
from fairbeat.tasks.maintenance import run_maintenance
from fairbeat.tasks.runtime import runtime_of
from fairbeat.tasks.settings import ENV_PREFIX, Settings, SettingsError, load_settings
from tests import poison_rows
from tests.conftest import REPO_ROOT, AppFactory

T = TypeVar("T")

FIELDS = (
    "workspace_id",
    "kind",
    "payload",
    "dedupe_key",
    "run_at",
    "priority",
    "max_attempts",
    "concurrency_key",
    "concurrency_limit",
    "on_conflict",
    "debounce_s",
)
ROOT = f"{REPO_ROOT}{os.sep}"
DEAD_REDIS = "redis://127.0.0.1:1/0"
DEAD_DATABASE = "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2"


def job_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(job_table)).scalar_one())


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


# -- (a) enqueue, swept ------------------------------------------------------------------

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
SURROGATES = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2)
HUGE_TEXT = st.integers(min_value=60_000, max_value=70_000).map(lambda n: "x" * n)
OFFSETS = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=5, minutes=30)),
        timezone(timedelta(hours=-8)),
        timezone(timedelta(hours=23, minutes=59)),
        timezone(-timedelta(hours=23, minutes=59)),
    ]
)
NOT_JSON = (
    st.builds(object)
    | st.sets(st.integers(), min_size=1, max_size=2)
    | st.binary(min_size=1, max_size=4)
    | st.complex_numbers()
    | st.just(float("nan"))
    | st.just(float("inf"))
    | st.tuples(st.integers())
)

# Calls that fit a handler in tests/handlers.py: what a well-behaved caller sends.
VALID_KIND_AND_PAYLOAD: st.SearchStrategy[tuple[str, dict[str, Any]]] = st.one_of(
    st.tuples(st.just("test.send"), st.fixed_dictionaries({"tag": JSON_VALUES})),
    st.tuples(st.just("test.noop"), st.just({})),
    st.tuples(
        st.just("test.flaky"),
        st.fixed_dictionaries({"tag": st.text(max_size=10), "fail_times": st.integers()}),
    ),
    st.tuples(
        st.just("test.sleep"),
        st.fixed_dictionaries({"seconds": st.floats(allow_nan=False, allow_infinity=False)}),
    ),
)

WILD: dict[str, st.SearchStrategy[Any]] = {
    "workspace_id": st.one_of(
        st.none(),
        st.integers(),
        st.text(max_size=12),
        st.text(min_size=120, max_size=140),
        SURROGATES,
        st.sampled_from(["", "   ", "w" * 128, "w" * 129, "ac\nme", "a\x00b", "\u3000", "é" * 128]),
    ),
    "kind": st.one_of(
        st.none(),
        st.integers(),
        st.text(max_size=30),
        SURROGATES,
        st.sampled_from(
            [
                "test.send",
                "test.noop",
                "no.such.kind",
                "fairbeat.run",
                "fairbeat.dispatch",
                "fairbeat.maintenance",
                "",
                "k" * 201,
                "TEST.SEND",
                " test.send",
            ]
        ),
    ),
    "payload": st.one_of(
        JSON_VALUES,  # lists, scalars and objects that fit no handler
        st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4),
        st.fixed_dictionaries({"tag": NOT_JSON}),
        st.fixed_dictionaries({"tag": HUGE_TEXT}),
        st.fixed_dictionaries({"tag": SURROGATES}),
        st.fixed_dictionaries({"tag": st.integers(min_value=1, max_value=3000).map(nested)}),
        st.dictionaries(st.integers() | st.tuples(st.integers()), st.integers(), min_size=1),
        st.builds(object),
    ),
    "dedupe_key": st.one_of(
        st.integers(),
        st.text(max_size=10),
        st.text(min_size=195, max_size=205),
        SURROGATES,
        st.sampled_from(["", "k1", "k2"]),
    ),
    "run_at": st.one_of(
        st.datetimes(),  # naive
        st.datetimes(timezones=OFFSETS),
        st.dates(),
        st.text(max_size=25),
        st.integers(),
        st.floats(),
    ),
    "priority": st.one_of(
        st.integers(),
        st.floats(),
        st.booleans(),
        st.text(max_size=3),
        st.sampled_from([1_000_000, -1_000_000, 1_000_001]),
    ),
    "max_attempts": st.one_of(
        st.integers(),
        st.booleans(),
        st.floats(),
        st.text(max_size=3),
        st.sampled_from([1, 5, 1000, 2**31, 2**63]),
    ),
    "concurrency_key": st.one_of(
        st.integers(),
        st.text(max_size=10),
        st.text(min_size=195, max_size=205),
        SURROGATES,
        st.sampled_from(["", "user:7", "global:", "global:provider-x", "a\x00b"]),
    ),
    "concurrency_limit": st.one_of(
        st.integers(),
        st.booleans(),
        st.floats(),
        st.text(max_size=3),
        st.sampled_from([1, 100_000, 100_001, 2**63]),
    ),
    "on_conflict": st.one_of(
        st.sampled_from(["keep", "replace_pending", "debounce", "merge", "", "KEEP"]),
        st.integers(),
        st.none(),
    ),
    "debounce_s": st.one_of(
        st.floats(),
        st.integers(),
        st.booleans(),
        st.text(max_size=3),
        st.sampled_from([0, 0.001, 30, 7 * 86400, 7 * 86400 + 1]),
    ),
}


@st.composite
def enqueue_calls(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed call with up to two of its arguments replaced by anything."""
    kind, payload = draw(VALID_KIND_AND_PAYLOAD)
    call: dict[str, Any] = {
        "workspace_id": draw(st.sampled_from(["acme", "globex", "ws-1"])),
        "kind": kind,
        "payload": payload,
        "dedupe_key": draw(st.none() | st.text(min_size=1, max_size=8)),
        "run_at": draw(st.none() | st.datetimes(timezones=OFFSETS, min_value=datetime(2000, 1, 1))),
        "priority": draw(st.integers(min_value=-5, max_value=5)),
        "max_attempts": draw(st.none() | st.integers(min_value=1, max_value=10)),
        "concurrency_key": draw(st.none() | st.sampled_from(["user:7", "global:provider-x"])),
        "concurrency_limit": draw(st.none() | st.integers(min_value=1, max_value=3)),
        "on_conflict": "keep",
        "debounce_s": None,
    }
    for name in draw(st.sets(st.sampled_from(FIELDS), max_size=2)):
        call[name] = draw(WILD[name])
    return call


def enqueue_call(app: Celery, call: dict[str, Any]) -> Enqueued:
    args = dict(call)
    return enqueue(args.pop("workspace_id"), args.pop("kind"), args.pop("payload"), app=app, **args)


def check_written(app: Celery, engine: Engine, call: dict[str, Any], result: Enqueued) -> None:
    """The row holds what was asked for; a dedupe hit returns the job already there."""
    with engine.connect() as conn:
        row = job_queries.get_job(conn, result.job_id)
    assert row is not None and row["workspace_id"] == call["workspace_id"]
    if not result.created:
        assert call["dedupe_key"] is not None and row["dedupe_key"] == call["dedupe_key"]
        return
    assert row["status"] == "PENDING" and row["kind"] == call["kind"]
    assert row["payload"] == json.loads(json.dumps(call["payload"]))
    assert (row["priority"], row["dedupe_key"]) == (call["priority"], call["dedupe_key"])
    default_attempts = runtime_of(app).settings.max_attempts
    assert row["max_attempts"] == (call["max_attempts"] or default_attempts)
    assert row["run_at"] == result.run_at
    if call["run_at"] is not None:
        assert row["run_at"] == call["run_at"]


def escaped(exc: Exception) -> AssertionError:
    """A short failure naming the exception and the last line of fairbeat it came through.

    (Rendering the whole driver traceback of every failing example Hypothesis
    tries while shrinking took most of a minute.)
    """
    ours = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(ROOT)]
    last = ours[-1] if ours else None
    where = f"{last.filename[len(ROOT) :]}:{last.lineno} {last.name}" if last else "?"
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    message = str(exc).splitlines()[0][:300] if str(exc) else ""
    return AssertionError(f"enqueue raised {kind}, not EnqueueError, at {where}: {message}")


def enqueued_or_refused(app: Celery, engine: Engine, call: dict[str, Any]) -> None:
    """An ``Enqueued`` holding what was asked, or an ``EnqueueError`` that wrote nothing."""
    before = job_count(engine)
    try:
        result = enqueue_call(app, call)
    except EnqueueError as exc:
        assert exc.field in FIELDS, exc
        assert job_count(engine) == before, f"refused ({exc}) but a row was written"
        return
    except Exception as exc:
        assert job_count(engine) == before, f"{type(exc).__name__} after a row was written"
        raise escaped(exc) from None
    assert isinstance(result, Enqueued)
    assert job_count(engine) == before + int(result.created)
    check_written(app, engine, call, result)
    if call["dedupe_key"] is not None:
        again = enqueue_call(app, call)
        assert (again.job_id, again.created) == (result.job_id, False)
        assert job_count(engine) == before + int(result.created)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
@given(call=enqueue_calls())
def test_enqueue_either_enqueues_or_refuses_by_name_writing_nothing(
    app: Celery, engine: Engine, call: dict[str, Any]
) -> None:
    # Each example on an empty table, so none depends on what an earlier one wrote.
    with engine.begin() as conn:
        conn.execute(job_table.delete())
        conn.execute(job_concurrency_key_table.delete())
    enqueued_or_refused(app, engine, call)


# The smallest inputs found that escape as another exception: each passes
# enqueue's checks and is then rejected by the driver, the database or json.
ESCAPES = [
    # PostgreSQL: DataError, integer out of range (the column is a 32-bit INTEGER).
    pytest.param("max_attempts", 2**31, id="max_attempts-2**31"),
    # Both; SQLite: OverflowError, Python int too large to convert to SQLite INTEGER.
    pytest.param("max_attempts", 2**63, id="max_attempts-2**63"),
    # PostgreSQL: DataError, PostgreSQL text fields cannot contain NUL (0x00) bytes.
    pytest.param("dedupe_key", "\x00", id="dedupe_key-NUL"),
    # Both: UnicodeEncodeError, surrogates not allowed (raw, not even a SQLAlchemy error).
    pytest.param("dedupe_key", "\ud800", id="dedupe_key-lone-surrogate"),
    # Both: StatementError(OverflowError), date value out of range, in UTCDateTime.
    pytest.param(
        "run_at", datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), id="run_at-0001-01-01+01"
    ),
    # Both: RecursionError from json.dumps in _check_payload (2 kB, far under the size limit).
    pytest.param("payload", {"tag": nested(1000)}, id="payload-1000-deep"),
]


@pytest.mark.parametrize(("field", "value"), ESCAPES)
def test_a_value_the_store_cannot_hold_is_enqueued_or_refused(
    app: Celery, engine: Engine, field: str, value: Any
) -> None:
    call: dict[str, Any] = {
        "workspace_id": "acme",
        "kind": "test.send",
        "payload": {"tag": "a"},
        "dedupe_key": None,
        "run_at": None,
        "priority": 0,
        "max_attempts": None,
    }
    call[field] = value
    enqueued_or_refused(app, engine, call)


# -- (b) settings, swept -----------------------------------------------------------------

# A cross-field rule names the variable it is about, next to the one set here.
ALSO_NAMED = {
    "default_queue": {"FAIRBEAT_CONTROL_QUEUE"},
    "routes": {"FAIRBEAT_CONTROL_QUEUE"},
}
SETTING_STRINGS = st.one_of(
    st.text(max_size=30),
    st.integers().map(str),
    st.floats().map(str),
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "1",
            "60",
            "900",
            "7200",
            "1e9",
            "nan",
            "inf",
            "true",
            "off",
            "null",
            "[]",
            "{}",
            "[1",
            "{",
            '{"default": 1}',
            '{"default": -1}',
            "[64, 100]",
            "[100, 64]",
            "64,100",
            "fairbeat.control",
            "jobs.default",
            "a=b",
            "=",
            "a=",
            "email.*=fairbeat.control",
            "sqlite:///x.db",
            "postgresql://u@h/db",
            "mysql://h/db",
            "redis://h:6379/0",
            "rediss://h",
            "unix:///tmp/r.sock",
            "amqp://g@h//",
            "http://x",
            "https://hooks.example/x",
            "ftp://x",
            "http://[::1",
            "json",
            "text",
        ]
    ),
)
ENV_SAFE = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30)


@contextmanager
def fairbeat_environment(**variables: str) -> Iterator[None]:
    """Exactly these FAIRBEAT_* variables, for the block; the environment is restored after."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    for name in saved:
        del os.environ[name]
    os.environ.update(variables)
    try:
        yield
    finally:
        for name in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
            del os.environ[name]
        os.environ.update(saved)


def assert_valid_or_named(field: str, build: Callable[[], Settings]) -> None:
    try:
        build()
    except SettingsError as exc:
        names = {ENV_PREFIX + field.upper()} | ALSO_NAMED.get(field, set())
        assert any(name in str(exc) for name in names), f"{names} not in: {exc}"


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(Settings.model_fields)), value=SETTING_STRINGS)
def test_any_string_for_a_setting_is_valid_or_names_its_variable(field: str, value: str) -> None:
    with fairbeat_environment():
        assert_valid_or_named(field, lambda: load_settings(**{field: value}))


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(Settings.model_fields)), value=SETTING_STRINGS | ENV_SAFE)
def test_any_environment_value_is_valid_or_names_its_variable(field: str, value: str) -> None:
    # No environment can hold a NUL or a lone surrogate.
    assume("\x00" not in value and not any("\ud800" <= c <= "\udfff" for c in value))
    with fairbeat_environment(**{ENV_PREFIX + field.upper(): value}):
        assert_valid_or_named(field, load_settings)


# -- (c) Redis down ----------------------------------------------------------------------


def test_with_redis_down_enqueue_writes_and_a_beat_dispatch_claims_with_base_quotas(
    make_app: AppFactory,
    engine: Engine,
    redis_client: redis.Redis,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given fairbeat's Redis does not answer (the broker still does)
    app = make_app(
        redis_url=DEAD_REDIS,
        broker_url=redis_url,
        global_capacity=100,
        claim_batch=100,
        partition_cap=50,
        autoscale_enabled=False,
    )
    # When jobs are enqueued, then each is written and its kick fails quietly
    with caplog.at_level(logging.WARNING, logger="fairbeat.kick"):
        for n in range(20):
            assert enqueue("acme", "test.send", {"tag": f"t{n}"}, app=app).created
    assert job_count(engine) == 20
    assert {r.getMessage().split(":")[0] for r in caplog.records} == {"kick failed"}
    # And a beat-fired dispatch still claims, up to the default tier's base quota
    summary = Dispatcher(app).run(BEAT)
    assert summary.claimed == summary.sent == 16
    (tick,) = summary.last_ticks
    assert tick.reason_code == "REDIS_UNAVAILABLE"
    with engine.connect() as conn:
        assert job_queries.count_by_status(conn) == {"CLAIMED": 16, "PENDING": 4}
    # The claims' messages reached the broker, which is still up
    assert redis_client.llen("jobs.default") == 16


# -- (d) the database down ---------------------------------------------------------------


def within(seconds: float, call: Callable[[], T]) -> T:
    """Run ``call`` in a daemon thread; fail (instead of hanging) past ``seconds``."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed back to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def test_with_the_database_down_enqueue_fails_fast_and_writes_nothing(
    make_app: AppFactory, engine: Engine, redis_client: redis.Redis
) -> None:
    before, keys_before = job_count(engine), redis_client.dbsize()
    app = make_app(database_url=DEAD_DATABASE)
    started = time.monotonic()
    with pytest.raises(OperationalError) as failed:
        within(15, lambda: enqueue("acme", "test.send", {"tag": "a"}, app=app))
    assert time.monotonic() - started < 10
    assert "127.0.0.1" in str(failed.value) and "port 1" in str(failed.value)
    # Nothing written: no row in the real database, no kick or message in Redis
    assert job_count(engine) == before
    assert redis_client.dbsize() == keys_before
    runtime_of(app).engine.dispose()


# -- (e) whatever SQL writes, an innocent job is still claimed ----------------------------

PRINTABLE = st.characters(exclude_categories=["Cs", "Cc"])
ODD_IDS = st.one_of(
    st.text(PRINTABLE, min_size=1, max_size=12),
    st.text(PRINTABLE, min_size=120, max_size=128),
    st.sampled_from([" ", "a:b", "{x}", "*", "ws\u3000", "é" * 128, "-", "0", "other"]),
).filter(lambda w: w != "innocent")
LOADABLE_TIMES = st.sampled_from(
    [
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime(1, 1, 2, tzinfo=UTC),
        datetime(9999, 12, 29, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2100, 1, 1, tzinfo=UTC),
    ]
)
JSON_TEXTS = st.sampled_from(["{}", "[]", "null", '"x"', "1", '{"tag": "a"}', '{"seconds": 1e308}'])
ANY_FLOAT = st.floats() | st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.0, 5e-324])


@st.composite
def contract_rows(draw: st.DrawFn, dialect: str) -> dict[str, Any]:
    """One job row as the SQL contract lets an app insert it, with any values."""
    bad = poison_rows.bad_run_ats_for(dialect)
    int_bound = 2**31 - 1 if dialect == "postgresql" else 2**63 - 1
    ints = st.integers(min_value=-int_bound - 1, max_value=int_bound)
    row: dict[str, Any] = {
        "workspace_id": draw(ODD_IDS),
        "kind": draw(
            st.sampled_from(["test.noop", "no.such.kind", "fairbeat.dispatch", "x" * 200])
        ),
        "payload": draw(JSON_TEXTS),
        "run_at": draw(LOADABLE_TIMES | st.sampled_from(bad)),
        "priority": draw(ints | st.sampled_from([0, 1_000_000, -1_000_000])),
        "max_attempts": draw(ints | st.sampled_from([0, -1, 1, 5])),
    }
    if draw(st.booleans()):
        row["dedupe_key"] = draw(st.text(PRINTABLE, min_size=1, max_size=8))
    return row


@st.composite
def workspace_rows(draw: st.DrawFn, workspace_ids: list[str]) -> dict[str, Any]:
    return {
        "id": draw(st.sampled_from(workspace_ids) | ODD_IDS),
        "tier": draw(st.sampled_from(["default", "enterprise", "", "no-such-tier"])),
        "weight": draw(ANY_FLOAT),
        "rate_limit_per_s": draw(st.none() | ANY_FLOAT),
        "paused": draw(st.booleans()),
        "high_quota_enabled": draw(st.booleans()),
    }


def written(write: Callable[..., Any], *args: Any, **columns: Any) -> bool:
    """Write a row; False when the database refuses it (a constraint, a range, a NUL)."""
    try:
        write(*args, **columns)
    except DBAPIError:
        return False
    return True


def write_sweep(engine: Engine, data: st.DataObject) -> None:
    rows = data.draw(st.lists(contract_rows(engine.dialect.name), max_size=6), label="jobs")
    for row in rows:
        columns = {k: v for k, v in row.items() if k not in ("workspace_id", "run_at")}
        written(poison_rows.insert_job, engine, row["workspace_id"], row["run_at"], **columns)
    ids = [r["workspace_id"] for r in rows] or ["other"]
    for ws in data.draw(st.lists(workspace_rows(ids), max_size=3, unique_by=lambda w: w["id"])):
        columns = {k: v for k, v in ws.items() if k != "id"}
        written(poison_rows.set_workspace, engine, ws["id"], **columns)


@pytest.fixture
def sweep_app(make_app: AppFactory, engine: Engine) -> Iterator[Celery]:
    # PostgreSQL without migration 0010's checks: the loops must cope on their own.
    with poison_rows.without_checks(engine):
        yield make_app(autoscale_enabled=False, global_capacity=100, claim_batch=100)


_maintenance_windows = iter(range(10**9))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_whatever_sql_writes_a_tick_still_claims_an_innocent_job(
    sweep_app: Celery, engine: Engine, data: st.DataObject
) -> None:
    # Given any rows and workspace settings the SQL contract lets in (each example alone)
    with engine.begin() as conn:
        conn.execute(job_table.delete())
        conn.execute(workspace_table.delete())
    write_sweep(engine, data)
    # And an innocent workspace's job, enqueued as usual
    innocent = enqueue("innocent", "test.noop", {}, app=sweep_app)
    # When a dispatch tick runs, then the innocent job is claimed in it
    Dispatcher(sweep_app).tick(1, redis_ok=True)
    with engine.connect() as conn:
        row = job_queries.get_job(conn, innocent.job_id)
    assert row is not None and row["status"] == "CLAIMED"
    # And maintenance, status and the exporter still answer
    report = run_maintenance(sweep_app, window_key=f"sweep:{next(_maintenance_windows)}")
    assert "failed_steps" not in report, report
    rt = runtime_of(sweep_app)
    assert snapshot(rt, rt.now())["by_status"]["CLAIMED"] >= 1
    registry = CollectorRegistry()
    registry.register(FairbeatCollector(rt))
    generate_latest(registry)
    # And nothing a loop reads is left unloadable: every open row loads
    with engine.connect() as conn:
        open_rows = select(job_table.c.run_at).where(job_table.c.status == "PENDING")
        assert all(run_at is not None for run_at in conn.execute(open_rows).scalars())
