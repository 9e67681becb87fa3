"""``once()`` and the effects ledger on both backends: a sent effect is never
sent again because its record failed, and a stale attempt never starts one."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine, select

from fairbeat.store import effects, transitions
from fairbeat.store.models import job_effect_table
from fairbeat.tasks.context import JobContext
from fairbeat.tasks.errors import LeaseLost
from fairbeat.tasks.runtime import runtime_of
from tests.store.test_execute import claim_one, reasons
from tests.store.test_time_limits import context, started

UNSTORABLE = [datetime(2026, 12, 2, tzinfo=UTC), math.nan, math.inf, object(), {"at": {1, 2}}]


class Effect:
    """A customer-visible send the test counts."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.sent = 0

    def __call__(self) -> Any:
        self.sent += 1
        return self.result


def attempt(app: Celery, engine: Engine) -> JobContext:
    return context(app, started(app, engine), deadline=None)


def test_the_key_length_is_the_columns() -> None:
    assert effects.EFFECT_KEY_MAX == 400
    assert job_effect_table.c.effect_key.type.length == effects.EFFECT_KEY_MAX  # type: ignore[attr-defined]


@pytest.mark.parametrize("result", UNSTORABLE, ids=repr)
def test_an_unstorable_result_is_recorded_as_done_and_suppresses_later_attempts(
    app: Celery, engine: Engine, result: Any
) -> None:
    effect = Effect(result)
    first, second = attempt(app, engine), attempt(app, engine)
    # The first attempt sends and gets its result back
    assert first.once("send:x", effect) is result
    # A later attempt does not send again; the result could not be kept
    assert second.once("send:x", effect) is None
    assert effect.sent == 1
    assert reasons(engine) == [effects.EFFECT_SUPPRESSED]
    with engine.connect() as conn:
        (stored,) = conn.execute(select(job_effect_table.c.result)).scalars()
    assert stored["value"] is None and stored["unstored"]


def test_a_storable_result_comes_back(app: Celery, engine: Engine) -> None:
    effect = Effect({"id": "msg-1", "n": 2})
    first, second = attempt(app, engine), attempt(app, engine)
    assert first.once("send:y", effect) == {"id": "msg-1", "n": 2}
    assert second.once("send:y", effect) == {"id": "msg-1", "n": 2}
    assert effect.sent == 1


@pytest.mark.parametrize("key", ["", "k" * 401, None])
def test_a_key_the_ledger_cannot_hold_is_refused_before_the_send(
    app: Celery, engine: Engine, key: Any
) -> None:
    effect = Effect("r")
    with pytest.raises(ValueError, match="once\\(\\) key"):
        attempt(app, engine).once(key, effect)
    assert effect.sent == 0


def test_a_key_at_the_columns_length_is_recorded(app: Celery, engine: Engine) -> None:
    effect = Effect("r")
    key = "é" * effects.EFFECT_KEY_MAX  # characters, not bytes
    assert attempt(app, engine).once(key, effect) == "r"
    assert attempt(app, engine).once(key, effect) == "r"
    assert effect.sent == 1


def test_a_stale_attempt_never_starts_the_effect(app: Celery, engine: Engine) -> None:
    job = started(app, engine)
    stale = context(app, job, deadline=None)
    # The job was taken over: returned to PENDING and claimed again
    rt = runtime_of(app)
    with engine.begin() as conn:
        assert transitions.retry_later(conn, job.job_id, job.fence, rt.now(), "taken over")
    claim_one(app, engine)
    effect = Effect("r")
    with pytest.raises(LeaseLost):
        stale.once("send:z", effect)
    assert effect.sent == 0


def test_record_reports_a_race_on_both_backends(engine: Engine) -> None:
    now = datetime.now(UTC)
    args: dict[str, Any] = {"workspace_id": "acme", "effect_key": "k", "job_id": 1, "now": now}
    with engine.begin() as conn:
        assert effects.record(conn, value=math.nan, **args) is True
        assert effects.record(conn, value=1, **args) is False
        assert effects.recorded(conn, "acme", "k") is None
        assert effects.is_missing(effects.recorded(conn, "acme", "other"))
