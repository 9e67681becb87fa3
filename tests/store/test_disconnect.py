"""A connection the database server dropped: the fenced write runs again, once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fairbeat.store import claiming, job_queries, new_jobs, transitions
from fairbeat.store.db import autocommit, make_engine, retry_on_disconnect
from tests.store.test_jobs import T0, new_job


def terminate_other_backends(url: str) -> int:
    """What a database restart does to every pooled connection of the app."""
    admin = make_engine(url)
    with admin.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    admin.dispose()
    return int(killed)


def test_a_finish_survives_its_connection_being_terminated(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM job"))
        new_jobs.insert_job(conn, new_job())
        (claim,) = claiming.claim_oldest_due(conn, T0, 1)
    with autocommit(engine) as conn:
        assert transitions.start(conn, claim.job_id, claim.fence, T0, "w") is not None
    # Given the pooled connection was terminated by the server
    assert terminate_other_backends(pg_url) >= 1
    # When the worker finishes the job, then the write goes through on a fresh connection
    now = datetime.now(UTC)
    assert retry_on_disconnect(
        engine, lambda c: transitions.succeed(c, claim.job_id, claim.fence, now)
    )
    with engine.connect() as conn:
        assert job_queries.get_job(conn, claim.job_id)["status"] == "SUCCEEDED"  # type: ignore[index]
    engine.dispose()


def test_other_database_errors_are_not_retried(pg_url: str) -> None:
    engine = make_engine(pg_url)
    calls = []

    def broken(conn: object) -> None:
        calls.append(1)
        conn.execute(text("SELECT * FROM no_such_table"))  # type: ignore[attr-defined]

    with pytest.raises(DBAPIError):
        retry_on_disconnect(engine, broken)
    assert len(calls) == 1
    engine.dispose()
