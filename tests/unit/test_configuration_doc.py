"""docs/configuration.md against tasks/settings.py: every setting documented at
its real default, and no documented variable that fairbeat does not read."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from fairbeat.tasks.settings import ENV_PREFIX, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "configuration.md"

# Read by the test suite and the benchmarks, not by Settings; the doc lists
# them in a section of their own.
NOT_SETTINGS = ("FAIRBEAT_TEST_", "FAIRBEAT_BENCH_")

SETTING_NAMES = {ENV_PREFIX + field.upper() for field in Settings.model_fields}

_NAME = re.compile(r"FAIRBEAT_[A-Z0-9_]*[A-Z0-9]")
# A table row whose first cell is one variable: | `FAIRBEAT_X` | default | ...
_ROW = re.compile(r"^\|\s*`(FAIRBEAT_[A-Z0-9_]+)`\s*\|([^|]*)\|")


def doc_text() -> str:
    return DOC.read_text()


def documented_rows() -> dict[str, str]:
    """Variable to the text of its default cell, for every table row."""
    rows: dict[str, str] = {}
    for line in doc_text().splitlines():
        if match := _ROW.match(line.strip()):
            assert match[1] not in rows, f"{match[1]} has two rows"
            rows[match[1]] = match[2].strip()
    return rows


def is_test_or_bench(name: str) -> bool:
    return name.startswith(NOT_SETTINGS)


def test_every_setting_has_a_row() -> None:
    rows = documented_rows()
    assert SETTING_NAMES - set(rows) == set(), "settings missing from docs/configuration.md"


def test_every_variable_the_doc_names_is_a_setting() -> None:
    named = {name for name in _NAME.findall(doc_text()) if not is_test_or_bench(name)}
    assert named - SETTING_NAMES == set(), "docs/configuration.md names unknown settings"


def test_test_and_bench_variables_are_read_somewhere() -> None:
    named = {name for name in _NAME.findall(doc_text()) if is_test_or_bench(name)}
    assert named, "the test and benchmark variables have no section"
    sources = "\n".join(
        path.read_text() for folder in ("tests", "bench") for path in (REPO / folder).rglob("*.py")
    )
    unread = {name for name in named if f'"{name}"' not in sources}
    assert unread == set(), "documented but read by no test or benchmark"


def test_documented_defaults_are_the_real_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each default cell, read back as the variable's value, gives the default."""
    rows = {name: cell for name, cell in documented_rows().items() if name in SETTING_NAMES}
    values: dict[str, str] = {}
    unset: set[str] = set()
    for name, cell in rows.items():
        if cell.startswith("unset"):
            unset.add(name)
        elif cell == "empty":
            values[name] = ""
        else:
            match = re.fullmatch(r"`([^`]*)`", cell)
            assert match, f"{name}: default cell {cell!r} is neither `value`, empty nor unset"
            values[name] = match[1]
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    defaults = load_settings()
    assert unset == {
        ENV_PREFIX + field.upper()
        for field in Settings.model_fields
        if getattr(defaults, field) is None
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    assert load_settings().model_dump() == defaults.model_dump()
