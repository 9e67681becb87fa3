"""Reports as tables: every shape the commands build, never a Python repr."""

from __future__ import annotations

import io

from rich.console import Console

from fairbeat.cli_output import tables


def render(data: dict[str, object]) -> str:
    out = Console(file=io.StringIO(), width=120)
    for table in tables(data, "report"):
        out.print(table)
    return out.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def test_every_shape_is_a_table_without_reprs() -> None:
    text = render(
        {
            "capacity": 32,
            "override": {"step": -8},
            "done": {"a": 1, "b": 2},
            "failed": {"a": 0, "b": 1},
            "health": {"due_pending": 0, "running": 1, "in_flight": 2, "stale_runs": 0},
            "states": {"ws1": {"rung": 1, "streak": 2}},
            "decisions": [{"workspace": "ws1", "verdict": "PROMOTED"}],
            "empty": [],
            "none": None,
            "on": True,
        }
    )
    assert "{" not in text and "[" not in text and "None" not in text
    for shown in ("step=-8", "PROMOTED", "due_pending", "ws1", "yes"):
        assert shown in text
