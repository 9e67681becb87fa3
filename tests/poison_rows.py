"""Poison written the way an app in another language would: plain SQL into the contract's tables.

On PostgreSQL, migration 0010's CHECK constraints refuse such rows; ``without_checks``
drops them for a block, as a database holding rows from before that migration.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, text

# The constraint names and conditions of migration 0010.
CHECKS = {
    "job": {
        "ck_job_run_at_loadable": (
            "run_at >= '0001-01-02 00:00:00+00' AND run_at < '9999-12-30 00:00:00+00'"
        ),
        "ck_job_attempts_nonnegative": "attempts >= 0",
        "ck_job_max_attempts_positive": "max_attempts >= 1",
        "ck_job_fence_nonnegative": "fence >= 0",
    },
    "workspace": {
        "ck_workspace_weight_usable": "weight >= 0.1 AND weight <= 100",
        "ck_workspace_rate_limit_usable": (
            "rate_limit_per_s IS NULL OR rate_limit_per_s = 0"
            " OR (rate_limit_per_s >= 0.001 AND rate_limit_per_s <= 1000000)"
        ),
    },
}

# Values of run_at no driver can load, as each database takes them.
POSTGRES_BAD_RUN_AT = ["-infinity", "infinity", "4713-01-01 00:00:00+00 BC", "20000-01-01 00:00+00"]
SQLITE_BAD_RUN_AT: list[Any] = [
    "-infinity",
    "infinity",
    "garbage",
    1_700_000_000,
    "0000-01-01 00:00:00",
    "2026-02-30 00:00:00",  # SQLite's own date functions take this
    "2026-01-01 24:00:00",
    b"\x00",
]


def bad_run_ats_for(dialect: str) -> list[Any]:
    return POSTGRES_BAD_RUN_AT if dialect == "postgresql" else SQLITE_BAD_RUN_AT


def bad_run_ats(engine: Engine) -> list[Any]:
    return bad_run_ats_for(engine.dialect.name)


def insert_job(engine: Engine, workspace_id: str, run_at: Any, **columns: Any) -> int:
    """One row by the SQL contract; ``run_at`` goes in as the database takes it."""
    values = {"workspace_id": workspace_id, "kind": "test.noop", "payload": "{}", **columns}
    names = [*values, "run_at"]
    if engine.dialect.name == "postgresql":
        run_at_sql = "CAST(:run_at AS timestamptz)" if isinstance(run_at, str) else ":run_at"
        placeholders = [f":{n}" for n in values] + [run_at_sql]
    else:
        placeholders = [f":{n}" for n in names]
    sql = f"INSERT INTO job ({', '.join(names)}) VALUES ({', '.join(placeholders)}) RETURNING id"
    with engine.begin() as conn:
        return int(conn.execute(text(sql), {**values, "run_at": run_at}).scalar_one())


def set_workspace(engine: Engine, workspace_id: str, **columns: Any) -> None:
    """A workspace row by SQL, with whatever its columns are given (NaN and inf as floats)."""
    names = ["id", *columns]
    sql = f"INSERT INTO workspace ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
    with engine.begin() as conn:
        conn.execute(text(sql), {"id": workspace_id, **columns})


def drop_checks(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        for table, checks in CHECKS.items():
            for name in checks:
                conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}"))


def add_checks(engine: Engine) -> None:
    """Put the constraints back, validated (the tables are empty by then)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        for table, checks in CHECKS.items():
            for name, condition in checks.items():
                conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition})"))


@contextmanager
def without_checks(engine: Engine) -> Iterator[None]:
    drop_checks(engine)
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM job"))
            conn.execute(text("DELETE FROM workspace"))
        add_checks(engine)
