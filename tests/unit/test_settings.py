import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairbeat.tasks.application import create_app
from fairbeat.tasks.redact import mask_url, mask_urls
from fairbeat.tasks.settings import (
    DEFAULT_REDIS_URL,
    MAX_DURATION_S,
    MAX_RETENTION_S,
    Settings,
    SettingsError,
    load_settings,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("FAIRBEAT_"):
            monkeypatch.delenv(name)


def refusal(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str | None = None
) -> str:
    """The error ``load_settings`` gives with ``variable`` set to ``value``; it
    must name ``named`` (default: the variable)."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=named or variable) as refused:
        load_settings()
    return str(refused.value)


def test_defaults_are_the_embedded_setup() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///fairbeat.db"
    assert settings.redis_url == DEFAULT_REDIS_URL
    assert settings.broker == DEFAULT_REDIS_URL
    assert settings.claim_batch == 20
    assert settings.worker_concurrency == 4


def test_lists_and_routes_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRBEAT_IMPORTS", "app.jobs, app.mail")
    monkeypatch.setenv("FAIRBEAT_ROUTES", "email.*=jobs.email,report.*=jobs.reports")
    monkeypatch.setenv("FAIRBEAT_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    settings = load_settings()
    assert settings.imports == ["app.jobs", "app.mail"]
    assert settings.routes == [("email.*", "jobs.email"), ("report.*", "jobs.reports")]
    assert settings.job_queues == ["jobs.default", "jobs.email", "jobs.reports"]
    assert settings.broker.startswith("amqp://")


def test_routes_also_read_as_a_json_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRBEAT_ROUTES", '{"billing.*": "jobs.billing"}')
    assert load_settings().routes == [("billing.*", "jobs.billing")]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FAIRBEAT_DATABASE_URL", "mysql://root@localhost/db"),
        ("FAIRBEAT_DATABASE_URL", "not a url"),
        ("FAIRBEAT_REDIS_URL", "http://127.0.0.1:6379"),
        ("FAIRBEAT_BROKER_URL", "kafka://somewhere"),
        ("FAIRBEAT_CLAIM_BATCH", "twenty"),
        ("FAIRBEAT_CLAIM_BATCH", "0"),
        ("FAIRBEAT_DISPATCH_INTERVAL_S", "-1"),
        ("FAIRBEAT_ROUTES", "email.*"),
        ("FAIRBEAT_PAYLOAD_MAX_BYTES", "1"),
    ],
)
def test_a_wrong_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    refusal(monkeypatch, variable, value)


def test_the_control_queue_cannot_double_as_a_job_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    refusal(monkeypatch, "FAIRBEAT_DEFAULT_QUEUE", "fairbeat.control", "FAIRBEAT_CONTROL_QUEUE")


@given(st.text(max_size=20).filter(lambda s: not s.strip().lstrip("+").isdigit()))
def test_any_non_integer_batch_is_refused_by_name(value: str) -> None:
    with pytest.raises(SettingsError, match="FAIRBEAT_CLAIM_BATCH"):
        load_settings(claim_batch=value)


def test_an_empty_optional_url_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRBEAT_BROKER_URL", "")
    monkeypatch.setenv("FAIRBEAT_SLACK_WEBHOOK_URL", " ")
    settings = load_settings()
    assert settings.broker_url is None and settings.slack_webhook_url is None
    assert settings.broker == settings.redis_url


@pytest.mark.parametrize(
    "variable", ["FAIRBEAT_TIER_QUOTAS", "FAIRBEAT_TIER_WEIGHTS", "FAIRBEAT_TIER_RATE_LIMITS"]
)
def test_malformed_json_names_its_variable(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    refusal(monkeypatch, variable, "{not json", f"{variable}: not valid JSON")


# -- refused at start: values that would fail later inside every tick ---------------------

NUMERIC_SETTINGS = sorted(
    name for name, field in Settings.model_fields.items() if field.annotation in (int, float)
)
# Durations (every *_S setting) and rates: zero or below is meaningless for these.
POSITIVE = [
    "FAIRBEAT_STALE_AFTER_S",
    "FAIRBEAT_DISPATCH_LEASE_S",
    "FAIRBEAT_RETRY_BASE_S",
    "FAIRBEAT_RETRY_CAP_S",
    "FAIRBEAT_DELIVERY_TIMEOUT_S",
    "FAIRBEAT_HEALTH_WINDOW_S",
    "FAIRBEAT_DISPATCH_INTERVAL_S",
    "FAIRBEAT_DISPATCH_RUN_BUDGET_S",
    "FAIRBEAT_MAINTENANCE_INTERVAL_S",
    "FAIRBEAT_QUEUE_AGE_ALERT_S",
    "FAIRBEAT_PENDING_RETRY_AFTER_S",
    "FAIRBEAT_VISIBILITY_TIMEOUT_S",
]


@pytest.mark.parametrize("variable", POSITIVE)
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "NaN", "0", "-1", "1e300"])
def test_a_duration_that_is_not_finite_and_positive_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    assert "\n" not in refusal(monkeypatch, variable, value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FAIRBEAT_TIER_RATE_LIMITS", '{"default": NaN}'),
        ("FAIRBEAT_TIER_RATE_LIMITS", '{"default": Infinity}'),
        ("FAIRBEAT_TIER_RATE_LIMITS", '{"default": -1}'),
        ("FAIRBEAT_TIER_RATE_LIMITS", '{"default": 0}'),
        ("FAIRBEAT_TIER_RATE_LIMITS", '{"default": 1e-9}'),
        ("FAIRBEAT_TIER_WEIGHTS", '{"default": NaN}'),
        ("FAIRBEAT_TIER_WEIGHTS", '{"default": 0}'),
        ("FAIRBEAT_ERROR_RATE_LIMIT", "nan"),
        ("FAIRBEAT_CONTENTION_LIMIT", "inf"),
        ("FAIRBEAT_AUTOSCALE_COOLDOWN_S", "nan"),
        ("FAIRBEAT_DEFAULT_QUEUE", ""),
        ("FAIRBEAT_DEFAULT_QUEUE", "  "),
        ("FAIRBEAT_CONTROL_QUEUE", ""),
        ("FAIRBEAT_ROUTES", '{"email.*": ""}'),
        ("FAIRBEAT_ROUTES", '{"": "jobs.email"}'),
        ("FAIRBEAT_IMPORTS", "app jobs"),
        ("FAIRBEAT_IMPORTS", "app..jobs"),
    ],
)
def test_a_value_no_tick_could_use_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    assert "\n" not in refusal(monkeypatch, variable, value)


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(NUMERIC_SETTINGS),
    value=st.one_of(
        st.floats(),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.sampled_from(["inf", "-inf", "nan", "1e309", "-0", "0.0"]),
    ),
)
def test_any_number_for_a_numeric_setting_is_usable_or_refused_by_name(
    name: str, value: float | int | str
) -> None:
    # Hypothesis: a numeric setting either loads as a finite value within what
    # the loops do arithmetic with, or is refused naming its variable.
    try:
        loaded = load_settings(**{name: str(value)})
    except SettingsError as exc:
        assert f"FAIRBEAT_{name.upper()}" in str(exc) or "FAIRBEAT_CAPACITY_M" in str(exc)
        assert "\n" not in str(exc)
        return
    number = getattr(loaded, name)
    assert math.isfinite(number)
    if name.endswith("_s"):
        assert 0 <= number <= (MAX_RETENTION_S if name.startswith("retain_") else MAX_DURATION_S)
        # The arithmetic every loop does with a duration stays within the calendar.
        assert datetime.now(UTC) - timedelta(seconds=number) > datetime(1970, 1, 1, tzinfo=UTC)


def test_an_imports_module_that_does_not_import_stops_the_app_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="FAIRBEAT_IMPORTS: cannot import 'no_such_module_x'"):
        create_app(Settings(imports=["no_such_module_x"]))


def test_a_module_that_imports_is_accepted() -> None:
    app = create_app(Settings(imports=["tests.handlers"]))
    assert "tests.handlers" in app.conf.imports


# -- every URL in every message is masked -----------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FAIRBEAT_REDIS_URL", "http://:s3cret@127.0.0.1:6379/0"),
        ("FAIRBEAT_BROKER_URL", "kafka://user:s3cret@somewhere"),
        ("FAIRBEAT_DATABASE_URL", "mysql://root:s3cret@localhost/db"),
        ("FAIRBEAT_SLACK_WEBHOOK_URL", "ftp://hooks.example/services/s3cret"),
    ],
)
def test_a_refused_url_is_shown_without_its_secret(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    assert "s3cret" not in refusal(monkeypatch, variable, value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://user:s3cret@h/1", "redis://user:***@h/1"),
        ("amqp://guest:s3cret@h:5672//", "amqp://guest:***@h:5672//"),
        ("postgresql://u:s3cret@h/db", "postgresql://u:***@h/db"),
        ("https://hooks.slack.com/services/T0/B0/s3cret", "https://hooks.slack.com/***"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("unix:///tmp/redis.sock", "unix:///tmp/redis.sock"),
        ("redis://:s3cret@h:99999/0", "redis://***"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert mask_urls(f"cannot reach {url}: refused") == f"cannot reach {shown}: refused"


TEMPLATE = "error at redis://:{0}@h:6379/0, and amqp://u:{0}@h//"


@settings(deadline=None)
@given(
    password=st.text(st.characters(categories=["L", "N"]), min_size=4, max_size=12).filter(
        lambda p: p not in TEMPLATE.format("")
    )
)
def test_no_password_survives_masking(password: str) -> None:
    assert password not in mask_urls(TEMPLATE.format(password))
