"""Each common mistake through the real ``fairbeat`` command: exit code not 0,
exactly one line on stderr naming what is wrong, no traceback; ``--debug``
(or ``FAIRBEAT_DEBUG=1``) adds the traceback."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fairbeat.store.db import make_engine
from tests.conftest import PostgresDatabases
from tests.e2e.conftest import fairbeat_cli, fairbeat_env

pytestmark = pytest.mark.e2e

DEEP_PAYLOAD = '{"a": ' * 5000 + "1" + "}" * 5000


class Cli:
    """Runs the installed ``fairbeat`` in a folder, on the run's own Redis."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    def __call__(
        self, folder: Path, *args: str, **settings: str
    ) -> subprocess.CompletedProcess[str]:
        env = fairbeat_env(**{"redis_url": self.redis_url, **settings})
        return subprocess.run(
            [fairbeat_cli(), *args], cwd=folder, env=env, capture_output=True, text=True, timeout=60
        )


@pytest.fixture
def run(e2e_redis_url: str) -> Cli:
    return Cli(e2e_redis_url)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *names: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for name in names:
        assert name in lines[0], lines[0]


@pytest.fixture
def migrated(tmp_path: Path, run: Cli) -> Path:
    """A folder whose default SQLite file holds the schema."""
    result = run(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    return tmp_path


@pytest.fixture
def listening() -> Iterator[int]:
    """A loopback port something already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_sqlite_file_never_migrated_says_migrate_and_creates_no_file(
    tmp_path: Path, run: Cli
) -> None:
    result = run(tmp_path, "status")
    assert_one_line_error(result, "fairbeat migrate", "FAIRBEAT_DATABASE_URL")
    assert not list(tmp_path.iterdir())  # no empty fairbeat.db left behind


def test_a_postgres_database_never_migrated_says_migrate(
    tmp_path: Path, pg_databases: PostgresDatabases, run: Cli
) -> None:
    url = pg_databases.create("cli_empty")
    make_engine(url).dispose()
    for args in (["status"], ["jobs", "list"], ["workspace", "show", "acme"]):
        assert_one_line_error(run(tmp_path, *args, database_url=url), "fairbeat migrate")


def test_imports_naming_a_module_that_does_not_import(migrated: Path, run: Cli) -> None:
    result = run(migrated, "enqueue", "acme", "x.y", imports="no_such_module_here")
    assert_one_line_error(result, "FAIRBEAT_IMPORTS", "no_such_module_here")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("claim_batch", "lots"), ("database_url", "mysql://db/x"), ("tier_quotas", "{oops")],
)
def test_an_invalid_setting_names_the_variable(
    tmp_path: Path, variable: str, value: str, run: Cli
) -> None:
    result = run(tmp_path, "status", **{variable: value})
    assert_one_line_error(result, f"FAIRBEAT_{variable.upper()}")
    assert result.returncode == 2


def test_gate_window_that_is_not_an_iso_time(migrated: Path, run: Cli) -> None:
    assert_one_line_error(
        run(migrated, "gate", "run", "--why", "t", "--window", "yesterday"), "--window"
    )
    naive = run(migrated, "gate", "run", "--why", "t", "--window", "2026-11-22T14:45:00")
    assert_one_line_error(naive, "--window", "timezone")


@pytest.mark.parametrize("verb", ["cancel", "retry"])
def test_job_ids_out_of_range_or_unknown_are_named(migrated: Path, verb: str, run: Cli) -> None:
    why = ["--why", "test"]
    too_big = str(2**64)
    result = run(migrated, "jobs", verb, "5", too_big, *why)
    assert_one_line_error(result, "out of range", too_big)
    assert_one_line_error(run(migrated, "jobs", verb, "424242", *why), "no job with id 424242")


def test_workspace_set_with_nothing_to_set_or_an_empty_id(migrated: Path, run: Cli) -> None:
    assert_one_line_error(
        run(migrated, "workspace", "set", "acme", "--why", "t"), "nothing to set", "--tier"
    )
    assert_one_line_error(
        run(migrated, "workspace", "set", "", "--weight", "2", "--why", "t"), "WORKSPACE"
    )
    assert_one_line_error(run(migrated, "workspace", "pause", " ", "--why", "t"), "WORKSPACE")


def test_workspace_rate_limit_zero_means_no_limit(migrated: Path, run: Cli) -> None:
    result = run(migrated, "workspace", "set", "acme", "--rate-limit", "0", "--why", "t", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rate_limit_per_s"] == 0


def test_a_payload_nested_too_deeply(migrated: Path, run: Cli) -> None:
    result = run(migrated, "enqueue", "acme", "test.send", "--payload", DEEP_PAYLOAD)
    assert_one_line_error(result, "--payload", "nested too deeply")


def test_the_exporter_port_already_in_use(migrated: Path, listening: int, run: Cli) -> None:
    result = run(migrated, "exporter", "--port", str(listening))
    assert_one_line_error(result, f"--port {listening}", "in use")


def test_flowers_port_already_in_use(migrated: Path, listening: int, run: Cli) -> None:
    result = run(migrated, "up", "--flower-port", str(listening))
    assert_one_line_error(result, f"port {listening}", "--flower-port")


def test_debug_shows_the_traceback(migrated: Path, run: Cli) -> None:
    for args, settings in (
        (["--debug", "gate", "run", "--why", "t", "--window", "yesterday"], {}),
        (["gate", "run", "--why", "t", "--window", "yesterday"], {"debug": "1"}),
    ):
        result = run(migrated, *args, **settings)
        assert result.returncode != 0
        assert "Traceback (most recent call last)" in result.stderr
        assert result.stderr.splitlines()[-1].startswith("error: --window")


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["gate", "reset"], ["--why", "fairbeat gate reset --help"]),
        (["capacity", "pin", "many", "--why", "x"], ["capacity", "integer"]),
        (["status", "--top", "0"], ["--top"]),
        (["no-such-command"], ["no-such-command"]),
    ],
    ids=["missing option", "not a number", "out of range", "unknown command"],
)
def test_what_click_refuses_is_one_line_too(
    migrated: Path, run: Cli, args: list[str], names: list[str]
) -> None:
    # Typer's own refusals used to print a usage box of several lines.
    result = run(migrated, *args)
    assert result.returncode == 2
    assert_one_line_error(result, *names)
