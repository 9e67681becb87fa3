"""Real services for the tests: PostgreSQL, SQLite and Redis on loopback.

- FAIRBEAT_TEST_POSTGRES_URL: an admin URL; each run creates its own databases.
- FAIRBEAT_TEST_REDIS_URL, FAIRBEAT_TEST_E2E_REDIS_URL: Redis databases the
  tests may flush. Unset, the run starts a redis-server of its own on a free
  port (database 0 for these tests, 1 for the end-to-end fleets), so two runs
  on one machine never share one.

Every other FAIRBEAT_* variable in the shell is removed when the run starts:
a setting exported for a local fleet must not change what the tests see.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from fairbeat.store import migrate
from fairbeat.store.db import make_engine
from fairbeat.store.models import metadata
from fairbeat.tasks.application import create_app
from fairbeat.tasks.settings import Settings
from tests.redis_server import PrivateRedis, RedisServerError, start_private_redis

# No per-example deadline: on a loaded two-core machine a pure example can take
# longer than hypothesis's 200 ms, and a timed assertion is not what these test.
hypothesis_settings.register_profile("fairbeat", deadline=None)
hypothesis_settings.load_profile("fairbeat")

PG_ADMIN_URL = os.environ.get(
    "FAIRBEAT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REPO_ROOT = Path(__file__).resolve().parent.parent
# The test suite's own knobs; FAIRBEAT_CHAOS_* scale and report the chaos suite.
KEPT_PREFIXES = ("FAIRBEAT_TEST_", "FAIRBEAT_CHAOS_")


def pytest_configure(config: pytest.Config) -> None:
    for name in [n for n in os.environ if n.startswith("FAIRBEAT_")]:
        if not name.startswith(KEPT_PREFIXES):
            del os.environ[name]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """This run's own redis-server, started only when a test needs Redis."""
    try:
        server = start_private_redis(tmp_path_factory.mktemp("redis-server"))
    except RedisServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


def _redis_url_from(request: pytest.FixtureRequest, variable: str, db: int) -> str:
    """The URL in ``variable`` when set, else database ``db`` of the run's own server."""
    configured = os.environ.get(variable)
    if configured:
        return configured
    server: PrivateRedis = request.getfixturevalue("redis_server")
    return server.url_of(db)


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    return _redis_url_from(request, "FAIRBEAT_TEST_REDIS_URL", 0)


@pytest.fixture(scope="session")
def e2e_redis_url(request: pytest.FixtureRequest) -> str:
    """The end-to-end and chaos fleets' Redis: their broker and live state."""
    return _redis_url_from(request, "FAIRBEAT_TEST_E2E_REDIS_URL", 1)


class PostgresDatabases:
    """Creates throwaway databases and drops them at the end of the session."""

    def __init__(self, admin_url: str) -> None:
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def create(self, label: str) -> str:
        name = f"fairbeat_{label}_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PostgresDatabases]:
    dbs = PostgresDatabases(PG_ADMIN_URL)
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def pg_url(pg_databases: PostgresDatabases) -> str:
    url = pg_databases.create("store")
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def _truncate(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store test runs once on SQLite and once on PostgreSQL, on a migrated schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fairbeat.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
        return
    url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    _truncate(engine)
    engine.dispose()
    yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


AppFactory = Callable[..., Celery]


@pytest.fixture
def make_app(database_url: str, redis_url: str, redis_client: redis.Redis) -> AppFactory:
    """Build a fairbeat app on the test database and Redis, with the test handlers."""

    def build(**overrides: Any) -> Celery:
        values: dict[str, Any] = {
            "database_url": database_url,
            "redis_url": redis_url,
            "imports": ["tests.handlers"],
            "retry_base_s": 0.01,
            "redis_prefix": "fbtest",
            # No worker runs in-process, so none reports its slots: lift the
            # fleet bound's one-worker default far above what these tests claim.
            "fleet_claims_per_slot": 100,
        }
        values.update(overrides)
        celery_app = create_app(Settings(**values))
        celery_app.loader.import_default_modules()
        return celery_app

    return build


@pytest.fixture
def app(make_app: AppFactory) -> Celery:
    return make_app()
