"""The compose stack, checked without Docker.

Nothing here starts a container: the compose file is read as YAML, its
variables are filled in the way Compose does from `.env.example`, and every
command is parsed by the real command line it names (fairbeat's Typer app,
Celery's click group, Flower's options), every queue checked against the
Settings those containers would build. A renamed command, option, queue or
setting fails here instead of in a container that exits at start.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml
from celery import Celery
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli
from flower.options import default_options as flower_options

from fairbeat.cli import cli
from fairbeat.tasks.application import create_app
from fairbeat.tasks.settings import ENV_PREFIX, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
DOCKERFILE = COMPOSE_DIR / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"
DASHBOARD = COMPOSE_DIR / "grafana" / "fairbeat-dashboard.json"

CORE_SERVICES = {
    "redis",
    "postgres",
    "migrate",
    "beat",
    "worker-control",
    "worker-default",
    "worker-email",
    "flower",
    "exporter",
}
OBSERVABILITY_SERVICES = {"prometheus", "grafana"}

# .env.example leaves these empty on purpose (no shipped default password), and
# Compose refuses to start until they are set; these stand in for an operator's.
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret",
    "REDIS_PASSWORD": "redis-secret",
    "FLOWER_PASSWORD": "flower-secret",
    "GRAFANA_ADMIN_PASSWORD": "grafana-secret",
}

SETTING_NAMES = {ENV_PREFIX + field.upper() for field in Settings.model_fields}

_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_COMMENTED_OUT = re.compile(r"^#\s?(FAIRBEAT_[A-Z0-9_]+)=\s*$")
# Compose interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default},
# ${VAR:?error}, ${VAR?error} and $VAR.
_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


class MissingVariable(KeyError):
    """A `${VAR:?...}` (or `${VAR?...}`) Compose would refuse to fill."""


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def read_env_file(path: Path) -> tuple[dict[str, str], set[str]]:
    """The assignments of a dotenv file, and the FAIRBEAT_ names left commented out."""
    assigned: dict[str, str] = {}
    commented_out: set[str] = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if match := _COMMENTED_OUT.match(line):
            commented_out.add(match[1])
        elif line and not line.startswith("#") and (match := _ASSIGNMENT.match(line)):
            assigned[match[1]] = _unquote(match[2].strip())
    return assigned, commented_out


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        value = variables.get(name)
        unset_or_empty = not value if op and op.startswith(":") else value is None
        if op in ("?", ":?") and unset_or_empty:
            raise MissingVariable(f"{name}: {arg}")
        if op in ("-", ":-") and unset_or_empty:
            return arg
        return value or ""

    return _VARIABLE.sub(fill, text)


def interpolate_all(node: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [interpolate_all(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_all(value, variables) for key, value in node.items()}
    return node


def raw_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def env_example_values() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)[0]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as Compose reads it with `--env-file .env`, that .env being
    .env.example with the passwords filled in."""
    data = interpolate_all(raw_compose(), {**env_example_values(), **SECRETS})
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = compose["services"]
    assert isinstance(result, dict)
    return result


def is_fairbeat_image(service: Mapping[str, Any]) -> bool:
    build = service.get("build")
    return isinstance(build, dict) and build.get("dockerfile") == "compose/Dockerfile"


def fairbeat_services(services: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items() if is_fairbeat_image(svc)}


def command_of(service: Mapping[str, Any]) -> list[str]:
    command = service["command"]
    if isinstance(command, str):
        return shlex.split(command)
    assert isinstance(command, list)
    return [str(part) for part in command]


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    """The `environment` of a service, in either of Compose's two forms."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.partition("=") for item in env)
        return {name: value for name, sep, value in pairs if sep}
    return {name: str(value) for name, value in env.items() if value is not None}


def container_environment(service: Mapping[str, Any]) -> dict[str, str]:
    """What a container would get: its env_file (.env.example standing in for
    .env), overridden by its `environment`, as Compose orders them."""
    env: dict[str, str] = {}
    env_files = service.get("env_file") or []
    for entry in [env_files] if isinstance(env_files, (str, dict)) else env_files:
        path = entry if isinstance(entry, str) else entry["path"]
        assert (COMPOSE_DIR / path).resolve() == REPO / ".env", path
        env.update(env_example_values())
    env.update(environment_of(service))
    return env


def settings_from(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a process with exactly this environment would build."""
    with monkeypatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(ENV_PREFIX):
                patch.delenv(name)
        for name, value in env.items():
            if name.startswith(ENV_PREFIX):
                patch.setenv(name, value)
        return load_settings()


def celery_context() -> CLIContext:
    return CLIContext(app=create_app(Settings()), no_color=True, workdir=None, quiet=True)


def fairbeat_command(args: list[str]) -> dict[str, Any]:
    """Parse `fairbeat ARGS` with the real Typer app, descending into groups.

    The parsed parameters come back; nothing runs. Typer ships its own copy of
    click, so a group is recognised by its `commands`, not by its class.
    """
    command: Any = typer.main.get_command(cli)
    path = ["fairbeat"]
    while isinstance(getattr(command, "commands", None), Mapping) and args:
        name, args = args[0], args[1:]
        assert name in command.commands, f"`{' '.join(path)}` has no command {name!r}"
        command = command.commands[name]
        path.append(name)
    assert not hasattr(command, "commands"), f"`{' '.join(path)}` needs a subcommand"
    params: dict[str, Any] = command.make_context(" ".join(path), args).params
    return params


def celery_command(args: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse `celery -A fairbeat SUB ARGS` with Celery's click group and this app."""
    assert args[:2] == ["-A", "fairbeat"], f"expected `celery -A fairbeat ...`, got {args}"
    # `-A fairbeat` makes Celery import the package and take its `app`.
    assert isinstance(importlib.import_module("fairbeat").app, Celery)
    name, rest = args[2], args[3:]
    assert name in ("worker", "beat", "flower"), f"unexpected celery subcommand {name!r}"
    assert name in celery_cli.commands, f"celery has no subcommand {name!r}"
    ctx = celery_cli.commands[name].make_context(name, rest, obj=celery_context())
    return name, ctx.params


def worker_queues(services: Mapping[str, dict[str, Any]]) -> Iterator[tuple[str, list[str]]]:
    """(service, queues its worker consumes) for every celery worker service."""
    for name, service in fairbeat_services(services).items():
        command = command_of(service)
        if command[0] == "celery":
            sub, params = celery_command(command[1:])
            if sub == "worker":
                yield name, list(params.get("queues") or [])


def test_every_required_service_is_defined(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= CORE_SERVICES | OBSERVABILITY_SERVICES
    for name in CORE_SERVICES:
        assert not services[name].get("profiles"), f"{name} must run without a profile"
    for name in OBSERVABILITY_SERVICES:
        assert services[name].get("profiles") == ["observability"], name


def test_the_image_is_built_from_the_repository_root(services: dict[str, dict[str, Any]]) -> None:
    built = fairbeat_services(services)
    assert CORE_SERVICES - {"redis", "postgres"} <= set(built)
    for name, service in built.items():
        context = (COMPOSE_DIR / service["build"]["context"]).resolve()
        assert context == REPO, name
        assert (context / service["build"]["dockerfile"]).resolve() == DOCKERFILE, name


def test_every_fairbeat_service_gets_the_same_settings(
    services: dict[str, dict[str, Any]],
) -> None:
    def fairbeat_env(service: Mapping[str, Any]) -> dict[str, str]:
        env = container_environment(service)
        return {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}

    built = fairbeat_services(services)
    first = fairbeat_env(built["migrate"])
    for name, service in built.items():
        assert service.get("env_file"), f"{name} does not read .env"
        assert fairbeat_env(service) == first, f"{name}'s FAIRBEAT_* settings differ"


def test_fairbeat_commands_name_real_commands_and_options(
    services: dict[str, dict[str, Any]],
) -> None:
    seen = set()
    for name, service in fairbeat_services(services).items():
        command = command_of(service)
        if command[0] == "fairbeat":
            fairbeat_command(command[1:])
        else:
            assert command[0] == "celery", f"{name}: unknown entry point {command[0]!r}"
            celery_command(command[1:])
        seen.add(command[0])
    assert seen == {"fairbeat", "celery"}


def test_migrate_runs_once_before_every_app_service(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    assert command_of(migrate) == ["fairbeat", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, service in fairbeat_services(services).items():
        if name != "migrate":
            depends = service["depends_on"]
            assert depends["migrate"]["condition"] == "service_completed_successfully", name
            assert depends["redis"]["condition"] == "service_healthy", name


def test_beat_and_flower_are_the_celery_commands(services: dict[str, dict[str, Any]]) -> None:
    assert celery_command(command_of(services["beat"])[1:])[0] == "beat"
    assert celery_command(command_of(services["flower"])[1:])[0] == "flower"


def test_worker_queues_are_the_queues_the_settings_declare(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    consumed: dict[str, set[str]] = {}
    for name, queues in worker_queues(services):
        settings = settings_from(container_environment(services[name]), monkeypatch)
        declared = {settings.control_queue, *settings.job_queues}
        # A worker without -Q consumes every declared queue.
        for queue in queues or declared:
            assert queue in declared, f"{name} consumes {queue!r}, which nothing routes to"
            consumed.setdefault(queue, set()).add(name)
    settings = settings_from(container_environment(services["beat"]), monkeypatch)
    assert {"jobs.default", "jobs.email"} <= set(settings.job_queues)
    assert ("email.*", "jobs.email") in settings.routes
    for queue in [settings.control_queue, *settings.job_queues]:
        assert consumed.get(queue), f"no worker service consumes {queue!r}"
    # The control queue has workers of its own: dispatch never waits behind jobs.
    for name, queues in worker_queues(services):
        if settings.control_queue in queues:
            assert queues == [settings.control_queue], name
    assert consumed[settings.control_queue] == {"worker-control"}
    assert consumed["jobs.default"] == {"worker-default"}
    assert consumed["jobs.email"] == {"worker-email"}


def test_the_settings_point_at_the_stack_s_own_postgres_and_redis(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from(container_environment(services["beat"]), monkeypatch)
    database = urlsplit(settings.database_url)
    postgres = environment_of(services["postgres"])
    assert database.scheme == "postgresql"
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]
    assert database.path == "/" + postgres["POSTGRES_DB"]

    redis_url = urlsplit(settings.redis_url)
    assert (redis_url.hostname, redis_url.port) == ("redis", 6379)
    assert redis_url.password == SECRETS["REDIS_PASSWORD"]
    assert settings.broker == settings.redis_url


def test_redis_requires_a_password(services: dict[str, dict[str, Any]]) -> None:
    command = command_of(services["redis"])
    assert "--requirepass" in command
    assert command[command.index("--requirepass") + 1] == SECRETS["REDIS_PASSWORD"]
    # The health check authenticates, or it would only ever see NOAUTH.
    assert environment_of(services["redis"])["REDISCLI_AUTH"] == SECRETS["REDIS_PASSWORD"]
    assert "PONG" in " ".join(services["redis"]["healthcheck"]["test"])


def test_postgres_is_checked_over_tcp(services: dict[str, dict[str, Any]]) -> None:
    # The image's first-start initialisation serves the socket only; TCP
    # answering means the real server is up.
    check = services["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in check and "-h" in check


def test_no_password_has_a_default() -> None:
    values = env_example_values()
    for name in SECRETS:
        assert values[name] == "", f".env.example ships a value for {name}"
        with pytest.raises(MissingVariable, match=name):
            interpolate_all(raw_compose(), {**values, **{k: "x" for k in SECRETS if k != name}})


def test_flower_has_basic_auth(services: dict[str, dict[str, Any]]) -> None:
    flower = services["flower"]
    command = command_of(flower)
    from_flag = [arg.partition("=")[2] for arg in command if arg.startswith("--basic-auth=")]
    logins = from_flag or [environment_of(flower)["FLOWER_BASIC_AUTH"]]
    user = env_example_values()["FLOWER_USER"]
    assert logins == [f"{user}:{SECRETS['FLOWER_PASSWORD']}"]
    # Flower's own options, as Flower parses them (unknown ones are an error there).
    for arg in command[command.index("flower") + 1 :]:
        option = arg.removeprefix("--").partition("=")[0].replace("-", "_")
        assert option in flower_options, f"flower has no option {arg!r}"


def test_published_ports_are_bound_to_loopback(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} to every host"


def exporter_endpoint(services: Mapping[str, dict[str, Any]]) -> tuple[str, int]:
    for name, service in fairbeat_services(services).items():
        command = command_of(service)
        if command[:2] == ["fairbeat", "exporter"]:
            params = fairbeat_command(command[1:])
            # Its default, 127.0.0.1, is unreachable from another container.
            assert params["address"] == "0.0.0.0"
            return name, int(params["port"])
    raise AssertionError("no service runs `fairbeat exporter`")


def test_prometheus_scrapes_the_exporter(services: dict[str, dict[str, Any]]) -> None:
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in services["prometheus"]["volumes"]
    config = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        if job.get("metrics_path", "/metrics") == "/metrics"
        for static in job["static_configs"]
        for target in static["targets"]
    }
    name, port = exporter_endpoint(services)
    assert f"{name}:{port}" in targets


def mounts(service: Mapping[str, Any]) -> dict[str, Path]:
    """Container path to host path of a service's bind mounts (short syntax)."""
    result = {}
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if source.startswith("."):
            result[rest.partition(":")[0]] = (COMPOSE_DIR / source).resolve()
    return result


def provisioned(services: Mapping[str, dict[str, Any]], kind: str, key: str) -> list[Any]:
    """The entries under `key` of Grafana's provisioning files of one kind."""
    folder = mounts(services["grafana"])["/etc/grafana/provisioning"] / kind
    assert folder.is_dir(), folder
    return [
        entry
        for path in sorted(folder.glob("*.y*ml"))
        for entry in yaml.safe_load(path.read_text())[key]
    ]


def default_datasource(services: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    default = [
        source
        for source in provisioned(services, "datasources", "datasources")
        if source.get("isDefault")
    ]
    assert len(default) == 1
    result: dict[str, Any] = default[0]
    return result


def test_grafana_reads_prometheus(services: dict[str, dict[str, Any]]) -> None:
    source = default_datasource(services)
    assert source["type"] == "prometheus"
    url = urlsplit(source["url"])
    assert url.hostname == "prometheus" and url.hostname in services
    assert url.port == 9090
    assert environment_of(services["grafana"])["GF_SECURITY_ADMIN_PASSWORD"]


def test_grafana_provisions_the_dashboard_file(services: dict[str, dict[str, Any]]) -> None:
    grafana = mounts(services["grafana"])
    providers = provisioned(services, "dashboards", "providers")
    folders = {provider["options"]["path"].rstrip("/") for provider in providers}
    provided = {host for target, host in grafana.items() if target.rpartition("/")[0] in folders}
    assert DASHBOARD.is_file()
    assert DASHBOARD.resolve() in provided
    home = environment_of(services["grafana"]).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home is not None:
        assert grafana[home] == DASHBOARD.resolve()


def test_the_dashboard_finds_the_provisioned_datasource(
    services: dict[str, dict[str, Any]],
) -> None:
    source = default_datasource(services)
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    # A datasource variable defaults to the default datasource of its type.
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == source["type"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["type"] == source["type"]
        assert panel["datasource"]["uid"] in ("${datasource}", source["uid"])


def test_every_fairbeat_variable_set_is_a_real_setting(compose: dict[str, Any]) -> None:
    in_compose = {
        name
        for service in compose["services"].values()
        for name in environment_of(service)
        if name.startswith(ENV_PREFIX)
    }
    assigned, commented_out = read_env_file(ENV_EXAMPLE)
    in_example = {name for name in assigned if name.startswith(ENV_PREFIX)} | commented_out
    assert in_compose - SETTING_NAMES == set()
    assert in_example - SETTING_NAMES == set()


def test_env_example_lists_every_setting_at_its_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assigned, commented_out = read_env_file(ENV_EXAMPLE)
    listed = {name for name in assigned if name.startswith(ENV_PREFIX)}
    assert SETTING_NAMES - (listed | commented_out) == set(), "missing from .env.example"
    assert listed & commented_out == set()
    defaults = settings_from({}, monkeypatch)
    # Commented out exactly when the default is None: an empty value is refused.
    assert {
        ENV_PREFIX + field.upper()
        for field in Settings.model_fields
        if getattr(defaults, field) is None
    } == commented_out
    assert settings_from(assigned, monkeypatch).model_dump() == defaults.model_dump()


def test_each_setting_in_env_example_has_a_comment_above_it() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        bare = line.removeprefix("# ")
        if bare.startswith(ENV_PREFIX) and _ASSIGNMENT.match(bare):
            above = lines[index - 1].removeprefix("# ")
            described = lines[index - 1].startswith("# ") and not above.startswith(ENV_PREFIX)
            assert described, f"{bare.partition('=')[0]} has no comment above it"


def dockerfile_instructions() -> list[tuple[str, list[str]]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.split()))
    return result


def test_the_image_installs_the_package_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", ["python:3.11-slim"])
    runs = [" ".join(args) for keyword, args in instructions if keyword == "RUN"]
    assert any("pip install ." in run for run in runs)
    users = [args[0] for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    # Settings and secrets come from the environment at run time, never the image.
    for keyword, args in instructions:
        if keyword in ("ENV", "ARG"):
            assert not re.search(r"PASSWORD|SECRET|TOKEN|FAIRBEAT_", " ".join(args)), args


def test_the_image_copies_everything_pip_install_packages() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    needed = {"pyproject.toml", project["project"]["readme"]}
    needed |= {f"{module}.py" for module in setuptools.get("py-modules", [])}
    packages = {pattern.rstrip("*.") for pattern in setuptools["packages"]["find"]["include"]}
    needed |= packages
    # The package links to the design card's top-level directories: those too.
    needed |= {
        str(path.resolve().relative_to(REPO))
        for package in packages
        for path in (REPO / package).iterdir()
        if path.is_symlink()
    }
    copied = {
        source.rstrip("/")
        for keyword, args in dockerfile_instructions()
        if keyword == "COPY"
        for source in [a for a in args if not a.startswith("--")][:-1]
    }
    assert needed - copied == set()
    assert all((REPO / source).exists() for source in copied)
    assert ".env" not in copied and "." not in copied
