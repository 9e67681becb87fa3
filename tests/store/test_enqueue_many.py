"""enqueue_many(): one transaction, one kick, all or nothing, errors by index."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from fairbeat.bulk_cli import read_jobs
from fairbeat.cli_errors import CliError
from fairbeat.store.models import job_table
from fairbeat.tasks.bulk import enqueue_many
from fairbeat.tasks.errors import EnqueueError, UnknownKind, WorkspaceBacklogFull
from fairbeat.tasks.runtime import runtime_of
from tests.conftest import AppFactory


def rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(job_table).order_by(job_table.c.id)))


def job_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(job_table)).scalar_one())


def spec(workspace: str = "acme", tag: str = "a", **extra: Any) -> dict[str, Any]:
    return {"workspace_id": workspace, "kind": "test.send", "payload": {"tag": tag}, **extra}


def test_a_batch_is_written_pending_in_order_with_one_kick(app: Celery, engine: Engine) -> None:
    later = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    done = enqueue_many(
        [spec("acme", "a"), spec("beta", "b", priority=5, max_attempts=2), spec(run_at=later)],
        app=app,
    )
    assert [j.created for j in done] == [True, True, True]
    written = rows(engine)
    assert [r.id for r in written] == [j.job_id for j in done]
    assert [r.payload["tag"] for r in written] == ["a", "b", "a"]
    assert written[1].priority == 5 and written[1].max_attempts == 2
    assert done[2].run_at == later and all(r.status == "PENDING" for r in written)
    assert runtime_of(app).live.kick_seq() == 1


def test_dedupe_keys_find_existing_jobs_and_repeats_within_the_batch(
    app: Celery, engine: Engine
) -> None:
    first = enqueue_many([spec(tag="old", dedupe_key="k1")], app=app)[0]
    done = enqueue_many(
        [
            spec(tag="again", dedupe_key="k1"),
            spec(tag="new", dedupe_key="k2"),
            spec(tag="repeat", dedupe_key="k2"),
            spec("beta", "other", dedupe_key="k1"),  # another workspace's key
        ],
        app=app,
    )
    assert done[0].job_id == first.job_id and not done[0].created
    assert done[1].created and done[2].job_id == done[1].job_id and not done[2].created
    assert done[3].created and done[3].job_id != first.job_id
    assert job_count(engine) == 3


BAD: list[tuple[str, Any, str]] = [
    ("bad payload", spec(tag="x") | {"payload": [1]}, "jobs[1].payload"),
    ("unknown kind", spec() | {"kind": "no.such.task"}, "jobs[1].kind"),
    ("naive run_at", spec(run_at=datetime(2030, 1, 1)), "jobs[1].run_at"),
    ("missing payload", {"workspace_id": "acme", "kind": "test.send"}, "jobs[1].payload"),
    ("unknown field", spec(colour="red"), "jobs[1]"),
    ("not a mapping", ["acme"], "jobs[1]"),
]


@pytest.mark.parametrize(("case", "bad", "field"), BAD, ids=[c for c, _, _ in BAD])
def test_one_bad_job_refuses_the_batch_by_index_and_writes_nothing(
    app: Celery, engine: Engine, case: str, bad: Any, field: str
) -> None:
    with pytest.raises(EnqueueError) as raised:
        enqueue_many([spec(), bad, spec()], app=app)
    assert raised.value.field == field and raised.value.index == 1
    assert str(raised.value).startswith(field + ": ")
    if case == "unknown kind":
        assert isinstance(raised.value, UnknownKind)
    assert job_count(engine) == 0
    assert runtime_of(app).live.kick_seq() == 0


def test_the_pending_limit_counts_the_batch_and_refuses_it_whole(
    make_app: AppFactory, engine: Engine
) -> None:
    app = make_app(pending_limit=3, pending_retry_after_s=12)
    enqueue_many([spec(tag="1"), spec("beta", "b")], app=app)
    with pytest.raises(WorkspaceBacklogFull) as raised:
        enqueue_many([spec(tag="2"), spec("beta", "c"), spec(tag="3"), spec(tag="4")], app=app)
    assert raised.value.index == 3 and raised.value.retry_after_s == 12
    assert job_count(engine) == 2


def test_inside_the_callers_transaction_the_batch_follows_its_fate(
    app: Celery, engine: Engine
) -> None:
    with Session(engine) as session:
        enqueue_many([spec(), spec("beta")], session=session, app=app)
        session.rollback()
    assert job_count(engine) == 0 and runtime_of(app).live.kick_seq() == 0
    with Session(engine) as session, session.begin():
        enqueue_many([spec(), spec("beta")], session=session, app=app)
        assert runtime_of(app).live.kick_seq() == 0  # not before the commit
    assert job_count(engine) == 2 and runtime_of(app).live.kick_seq() == 1


def test_a_jobs_file_is_read_by_line_and_a_bad_line_is_named(tmp_path: Path) -> None:
    good = tmp_path / "jobs.jsonl"
    good.write_text(
        '{"workspace_id": "acme", "kind": "test.send", "payload": {"tag": "a"}}\n\n'
        '{"workspace_id": "beta", "kind": "test.send", "payload": {},'
        ' "run_at": "2030-01-01T09:00:00+00:00"}\n'
    )
    jobs, lines = read_jobs(good)
    assert lines == [1, 3] and jobs[1]["run_at"] == datetime(2030, 1, 1, 9, tzinfo=UTC)
    for text, said in [
        ('{"workspace_id": "acme"}\nnot json\n', "line 2: not valid JSON"),
        ("[1]\n", "line 1: must be a JSON object"),
        ('{"run_at": 5}\n', "line 1: run_at must be"),
        ("\n", "holds no jobs"),
    ]:
        bad = tmp_path / "bad.jsonl"
        bad.write_text(text)
        with pytest.raises(CliError, match=said):
            read_jobs(bad)
