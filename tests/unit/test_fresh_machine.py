"""What a fresh machine needs, declared: every import's distribution is in
pyproject.toml, constraints.txt pins all of them, and CI runs the README's
test command (``.ci/run`` proves it in a brand-new virtualenv)."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.unit.test_layering import OURS, imports_of

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ["fairbeat", "tasks", "scheduling", "beat_schedule.py"]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    return {normalized(m[0]) for r in requirements if (m := _NAME.match(r))}


def declared(extra: str = "dev") -> tuple[set[str], set[str]]:
    """The distributions pyproject.toml names: (dependencies, the extra)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    chosen = project["optional-dependencies"][extra]
    return requirement_names(project["dependencies"]), requirement_names(chosen)


def third_party_imports(*roots: str) -> set[str]:
    files = {
        path.resolve()
        for root in roots
        for path in ([REPO / root] if root.endswith(".py") else (REPO / root).rglob("*.py"))
    }
    tops = {name.split(".")[0] for path in files for name in imports_of(path)}
    return {t for t in tops if t not in sys.stdlib_module_names and t not in OURS}


def undeclared(imports: set[str], allowed: set[str]) -> dict[str, list[str]]:
    providers = packages_distributions()
    missing: dict[str, list[str]] = {}
    for name in sorted(imports):
        # Not installed (the bench extra in a dev venv): the import's own name.
        dists = sorted(normalized(d) for d in providers.get(name, [normalized(name)]))
        if not set(dists) & allowed:
            missing[name] = dists
    return missing


def test_shipped_code_imports_only_declared_dependencies() -> None:
    dependencies, _ = declared()
    assert undeclared(third_party_imports(*SHIPPED), dependencies) == {}


def test_tests_import_only_declared_dependencies() -> None:
    dependencies, dev = declared()
    assert undeclared(third_party_imports("tests"), dependencies | dev) == {}


def test_benchmarks_import_only_declared_dependencies() -> None:
    # The benchmarks also run the durable peers, from the bench extra.
    dependencies, dev = declared()
    _, bench = declared("bench")
    assert undeclared(third_party_imports("bench"), dependencies | dev | bench) == {}


def test_constraints_pin_every_declared_dependency() -> None:
    lines = [
        line.strip()
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+==[^=\s]+", line) for line in lines), lines
    pinned = {normalized(line.split("==")[0]) for line in lines}
    dependencies, dev = declared()
    assert (dependencies | dev) - pinned == set(), "run .ci/lock to pin them"


def readme_commands() -> list[str]:
    """The commands of the README's first code block, without their comments."""
    block = (REPO / "README.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_test_command_with_the_constraints() -> None:
    commands = readme_commands()
    assert all("-c constraints.txt" in command for command in commands), commands
    (test_command,) = [c for c in commands if c.endswith("pytest")]
    assert test_command in (REPO / ".ci" / "run").read_text()
