"""Human output of the ``fairbeat`` commands: rich tables, never Python reprs.

:func:`show` lays out any report the commands build (``--json`` prints the
same data as JSON): scalars as one figure/value table, a mapping of mappings
as one table with a row per key, a list of mappings as one table with a row
per item, and mappings that share their keys (per-workspace figures, say)
side by side in one table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value) or "-"
    return str(value)


def _is_record(value: Any) -> bool:
    return isinstance(value, Mapping) and not any(isinstance(v, Mapping) for v in value.values())


def _records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_record(v) for v in value)


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    return columns


def rows_table(title: str, key: str, rows: Mapping[str, Mapping[str, Any]]) -> Table:
    """A row per key of ``rows``; a column per field of the rows."""
    columns = _columns(list(rows.values()))
    table = Table(key, *columns, title=title)
    for name, row in rows.items():
        table.add_row(str(name), *[cell(row.get(c)) for c in columns])
    return table


def list_table(title: str, rows: Sequence[Mapping[str, Any]]) -> Table:
    columns = _columns(rows)
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*[cell(row.get(c)) for c in columns])
    return table


def _side_by_side(title: str, series: dict[str, Mapping[str, Any]]) -> Table:
    """Mappings with the same keys (``{"done": {"a": 1}, "failed": {"a": 0}}``):
    a row per mapping, a column per key."""
    keys = _columns(list(series.values()))
    table = Table("", *[str(k) for k in keys], title=title)
    for name, values in series.items():
        table.add_row(name, *[cell(values.get(k)) for k in keys])
    return table


def _figures(title: str, values: Mapping[str, Any]) -> Table:
    table = Table("figure", "value", title=title)
    for key, value in values.items():
        table.add_row(str(key), cell(value))
    return table


# A lone mapping of more figures than this gets a table of its own.
INLINE_FIGURES = 3


def tables(data: Mapping[str, Any], title: str) -> list[Table]:
    scalars = Table("figure", "value", title=title)
    out: list[Table] = [scalars]
    grouped: dict[frozenset[str], dict[str, Mapping[str, Any]]] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value and all(_is_record(v) for v in value.values()):
            out.append(rows_table(f"{title}: {key}", "key", value))
        elif _records(value):
            out.append(list_table(f"{title}: {key}", value))
        elif isinstance(value, Mapping) and len(value) > 1 and _is_record(value):
            grouped.setdefault(frozenset(value), {})[key] = value
        elif isinstance(value, Mapping) and value and not _is_record(value):
            out += tables(value, f"{title}: {key}")
        else:
            scalars.add_row(key, cell(value))
    for series in grouped.values():
        if len(series) == 1:
            ((key, value),) = series.items()
            if len(value) > INLINE_FIGURES:
                out.append(_figures(f"{title}: {key}", value))
            else:
                scalars.add_row(key, cell(value))
        else:
            out.append(_side_by_side(title, series))
    return [t for t in out if t.row_count]


def show(data: Mapping[str, Any], title: str) -> None:
    for table in tables(data, title):
        console.print(table)
