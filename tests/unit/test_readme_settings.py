"""The README's configuration table names every setting, and only settings."""

from __future__ import annotations

import re
from pathlib import Path

from fairbeat.tasks.settings import ENV_PREFIX, Settings

README = Path(__file__).resolve().parents[2] / "README.md"
SETTING_NAMES = {ENV_PREFIX + field.upper() for field in Settings.model_fields}
# | `FAIRBEAT_X` | ... or | `FAIRBEAT_X_MIN` / `_MAX` | ...
_ROW = re.compile(r"^\|\s*`(FAIRBEAT_[A-Z0-9_]+)`(?:\s*/\s*`(_[A-Z0-9_]+)`)?\s*\|")


def readme_rows() -> set[str]:
    """Every variable in a table row; ``/ `_SUFFIX` `` replaces as many trailing parts."""
    names: set[str] = set()
    for line in README.read_text().splitlines():
        if match := _ROW.match(line.strip()):
            first, short = match[1], match[2]
            names.add(first)
            if short:
                parts = short.strip("_").split("_")
                names.add("_".join(first.split("_")[: -len(parts)] + parts))
    return names


def test_the_readme_table_lists_every_setting_and_no_other() -> None:
    rows = readme_rows()
    assert SETTING_NAMES - rows == set(), "settings missing from the README's table"
    assert rows - SETTING_NAMES == set(), "the README's table names unknown settings"
