"""enqueue(): validation before any write, dedupe, and the caller's own transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from fairbeat.store.models import job_table
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.errors import EnqueueError, UnknownKind


def job_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(job_table)).scalar_one())


def test_a_job_is_written_pending(app: Celery, engine: Engine) -> None:
    job = enqueue("acme", "test.send", {"tag": "a"}, app=app)
    assert job.created and job.kind == "test.send"
    with engine.connect() as conn:
        row = conn.execute(select(job_table).where(job_table.c.id == job.job_id)).one()
    assert row.status == "PENDING" and row.payload == {"tag": "a"} and row.max_attempts == 5


def test_the_same_dedupe_key_returns_the_existing_job(app: Celery, engine: Engine) -> None:
    first = enqueue("acme", "test.send", {"tag": "a"}, dedupe_key="k1", app=app)
    second = enqueue("acme", "test.send", {"tag": "b"}, dedupe_key="k1", app=app)
    assert second.job_id == first.job_id and not second.created
    assert job_count(engine) == 1


def test_inside_the_callers_transaction_the_job_follows_its_fate(
    app: Celery, engine: Engine
) -> None:
    with Session(engine) as session:
        enqueue("acme", "test.send", {"tag": "rolled-back"}, session=session, app=app)
        session.rollback()
    assert job_count(engine) == 0
    with Session(engine) as session, session.begin():
        enqueue("acme", "test.send", {"tag": "committed"}, session=session, app=app)
    assert job_count(engine) == 1


NAIVE = datetime(2030, 1, 1, 9, 0)

BAD_INPUTS: list[tuple[str, dict[str, Any], str]] = [
    ("empty workspace", {"workspace_id": ""}, "workspace_id"),
    ("blank workspace", {"workspace_id": "   "}, "workspace_id"),
    ("oversized workspace", {"workspace_id": "w" * 129}, "workspace_id"),
    ("control character", {"workspace_id": "ac\nme"}, "workspace_id"),
    ("workspace not a string", {"workspace_id": 42}, "workspace_id"),
    ("payload a list", {"payload": [1, 2]}, "payload"),
    ("payload a string", {"payload": '{"tag": "a"}'}, "payload"),
    ("payload not JSON", {"payload": {"tag": object()}}, "payload"),
    ("payload NaN", {"payload": {"tag": float("nan")}}, "payload"),
    ("payload too big", {"payload": {"tag": "x" * 70_000}}, "payload"),
    ("payload misses an argument", {"payload": {}}, "payload"),
    ("payload has an extra argument", {"payload": {"tag": "a", "nope": 1}}, "payload"),
    ("naive run_at", {"run_at": NAIVE}, "run_at"),
    ("run_at a string", {"run_at": "2030-01-01T09:00:00Z"}, "run_at"),
    ("empty dedupe key", {"dedupe_key": ""}, "dedupe_key"),
    ("priority a float", {"priority": 1.5}, "priority"),
    ("max_attempts zero", {"max_attempts": 0}, "max_attempts"),
]


@pytest.mark.parametrize(
    ("case", "change", "field"), BAD_INPUTS, ids=[case for case, _, _ in BAD_INPUTS]
)
def test_bad_input_is_refused_by_name_and_writes_nothing(
    app: Celery, engine: Engine, case: str, change: dict[str, Any], field: str
) -> None:
    args: dict[str, Any] = {"workspace_id": "acme", "kind": "test.send", "payload": {"tag": "a"}}
    args.update(change)
    with pytest.raises(EnqueueError) as raised:
        enqueue(app=app, **args)
    assert raised.value.field == field
    assert job_count(engine) == 0


@pytest.mark.parametrize("kind", ["no.such.task", "fairbeat.run", "fairbeat.dispatch", ""])
def test_an_unknown_kind_is_refused(app: Celery, engine: Engine, kind: str) -> None:
    with pytest.raises(EnqueueError, match="kind") as raised:
        enqueue("acme", kind, {}, app=app)
    if kind:
        assert isinstance(raised.value, UnknownKind)
        known = str(raised.value).split("known kinds: ")[1]  # it lists what is known
        assert "test." in known
    assert job_count(engine) == 0


def test_a_mistyped_kind_names_the_kind_it_resembles(app: Celery, engine: Engine) -> None:
    with pytest.raises(UnknownKind) as raised:
        enqueue("acme", "test.sned", {"tag": "a"}, app=app)
    assert "did you mean 'test.send'" in str(raised.value)
    assert job_count(engine) == 0


def test_an_aware_run_at_is_kept_in_utc(app: Celery) -> None:
    later = datetime(2030, 1, 1, 9, 0, tzinfo=UTC) + timedelta(hours=1)
    job = enqueue("acme", "test.send", {"tag": "later"}, run_at=later, app=app)
    assert job.run_at == later
