import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairbeat.tasks.settings import DEFAULT_REDIS_URL, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("FAIRBEAT_"):
            monkeypatch.delenv(name)


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
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_the_control_queue_cannot_double_as_a_job_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRBEAT_DEFAULT_QUEUE", "fairbeat.control")
    with pytest.raises(SettingsError, match="FAIRBEAT_CONTROL_QUEUE"):
        load_settings()


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
    monkeypatch.setenv(variable, "{not json")
    with pytest.raises(SettingsError, match=f"{variable}: not valid JSON"):
        load_settings()
