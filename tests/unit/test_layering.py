"""The import rules of docs/architecture.md, held by reading every module's imports.

fairbeat (CLI, operator tools) -> tasks -> store -> nothing of ours;
tasks -> scheduling; store may use scheduling's plain data types;
scheduling imports the standard library only. Every import of our own code
goes through the ``fairbeat`` package, never a generic top-level name.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "fairbeat"
OURS = ("fairbeat", "tasks", "scheduling", "store", "beat_schedule", "bench", "tests")


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (also inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def layer_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "fairbeat" or len(parts) == 1:
        return parts[0]
    if parts[1] in ("tasks", "scheduling", "store", "beat_schedule"):
        return parts[1]
    return "tools"  # the CLI and the operator tools beside it


def modules_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


# What each layer may import of ours.
ALLOWED = {
    "scheduling": {"scheduling"},
    "store": {"store", "scheduling"},
    "tasks": {"tasks", "store", "scheduling", "beat_schedule"},
    "beat_schedule": {"tasks"},  # only under TYPE_CHECKING, for Settings
    "tools": {"tools", "tasks", "store", "scheduling", "fairbeat"},
}


LAYERED = [
    *modules_under(REPO / "scheduling"),
    *modules_under(REPO / "tasks"),
    *modules_under(PACKAGE / "store"),
    REPO / "beat_schedule.py",
    *PACKAGE.glob("*.py"),
]


@pytest.mark.parametrize("path", LAYERED, ids=lambda p: str(p.relative_to(REPO)))
def test_each_module_imports_only_what_its_layer_may(path: Path) -> None:
    relative = path.relative_to(REPO)
    own_layer = {"scheduling": "scheduling", "tasks": "tasks", "fairbeat": "tools"}.get(
        relative.parts[0], "beat_schedule"
    )
    if relative.parts[:2] == ("fairbeat", "store"):
        own_layer = "store"
    ours = {m for m in imports_of(path) if m.split(".")[0] in OURS}
    generic = {m for m in ours if m.split(".")[0] != "fairbeat"}
    assert not generic, f"{relative} imports {generic}: import through the fairbeat package"
    forbidden = {m for m in ours if layer_of(m) not in ALLOWED[own_layer]}
    assert not forbidden, f"{relative} ({own_layer}) may not import {forbidden}"


@pytest.mark.parametrize("path", modules_under(REPO / "scheduling"), ids=lambda p: p.name)
def test_scheduling_imports_the_standard_library_only(path: Path) -> None:
    outside = {
        m
        for m in imports_of(path)
        if m.split(".")[0] not in sys.stdlib_module_names
        and not m.startswith("fairbeat.scheduling")
    }
    assert not outside, f"scheduling/{path.name} imports {outside}"


def test_importing_every_module_builds_no_app_and_reads_no_setting() -> None:
    # Given an environment whose every FAIRBEAT_ setting is broken,
    # when each module is imported, then nothing fails: nothing reads them yet.
    modules = sorted(
        "fairbeat."
        + ".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        for p in PACKAGE.rglob("*.py")
        if "migrations" not in p.parts
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "import celery\n"
        "assert celery.current_app.main != 'fairbeat', 'an app was built at import'\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "FAIRBEAT_DISPATCH_INTERVAL_S": "not a number",
        "FAIRBEAT_REDIS_URL": "",
        "FAIRBEAT_IMPORTS": "no_such_module",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_fence_condition_is_written_once() -> None:
    # Every fenced write goes through store/jobs.py's fenced(); a second
    # hand-written copy could drift (say, forget the expected status).
    spelled = [
        p.relative_to(REPO)
        for p in modules_under(PACKAGE / "store")
        if "job.c.fence ==" in p.read_text() and p.name != "jobs.py"
    ]
    assert not spelled, f"{spelled} spell the fence condition: use store.jobs.fenced()"


# SQLAlchemy's statement builders: SQL is written with these, and only in the store.
STATEMENT_BUILDERS = {"select", "insert", "update", "delete", "text", "func"}
OUTSIDE_STORE = [p for p in LAYERED if p.relative_to(REPO).parts[:2] != ("fairbeat", "store")]


def _builds_sql(module: str, name: str) -> bool:
    """``module.name`` is a statement builder, or one of the store's tables."""
    if module.startswith("sqlalchemy"):
        return name in STATEMENT_BUILDERS
    if not module.startswith("fairbeat.store"):
        return False
    from sqlalchemy import Table

    try:
        found = getattr(importlib.import_module(module), name, None)
    except ImportError:  # ``module`` names a table or a function, not a module
        return False
    return isinstance(found, Table)


def sql_built_in(path: Path) -> set[str]:
    """Statement builders and store tables a module imports or reaches through a module name."""
    tree = ast.parse(path.read_text())
    names: dict[str, str] = {}  # local name -> what it is: `import x as y`, `from pkg import mod`
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name): a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {(a.asname or a.name): f"{node.module}.{a.name}" for a in node.names}
    found = {f for f in names.values() if "." in f and _builds_sql(*f.rsplit(".", 1))}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = names.get(node.value.id)
            if module and _builds_sql(module, node.attr):
                found.add(f"{module}.{node.attr}")
    return found


@pytest.mark.parametrize("path", OUTSIDE_STORE, ids=lambda p: str(p.relative_to(REPO)))
def test_sql_is_built_only_in_the_store(path: Path) -> None:
    built = sql_built_in(path)
    assert not built, (
        f"{path.relative_to(REPO)} builds SQL with {sorted(built)}: "
        "move the query into a named function in fairbeat/store/"
    )


def test_the_sql_rule_sees_a_statement_builder_and_a_table(tmp_path: Path) -> None:
    offender = tmp_path / "offender.py"
    offender.write_text(
        "import sqlalchemy as sa\n"
        "from sqlalchemy import select\n"
        "from fairbeat.store import runs\n"
        "from fairbeat.store.models import job_table\n"
        "x = sa.update, runs.run_table\n"
    )
    assert sql_built_in(offender) == {
        "sqlalchemy.select",
        "sqlalchemy.update",
        "fairbeat.store.models.job_table",
        "fairbeat.store.runs.run_table",
    }


@pytest.mark.parametrize("name", ["tasks", "scheduling", "beat_schedule.py"])
def test_the_package_links_to_the_design_cards_top_level(name: str) -> None:
    # A copy would drift from the file everyone edits; only a link is one place.
    link = PACKAGE / name
    assert link.is_symlink(), f"fairbeat/{name} must be a link to ../{name}, not a copy"
    assert link.resolve() == (REPO / name).resolve()
