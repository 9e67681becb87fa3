"""The worker bootstep's choice: which worker serves the control queue on its own
thread, and which job queues its slots are reported for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from fairbeat.beat_schedule import build_schedule
from fairbeat.tasks.application import create_app
from fairbeat.tasks.control_consumer import ControlPlane, ControlThread, _expired
from fairbeat.tasks.settings import Settings


def step_for(select: list[str] | None) -> tuple[ControlPlane, list[str]]:
    settings = Settings(
        database_url="sqlite://",
        redis_url="redis://127.0.0.1:1/0",
        routes=[("mail.*", "jobs.mail")],
    )
    app = create_app(settings)
    if select:
        app.amqp.queues.select(select)
    step = ControlPlane(SimpleNamespace(app=app, hostname="w1@test"))
    return step, sorted(app.amqp.queues.consume_from)


def test_a_worker_of_every_queue_serves_control_on_its_own_thread() -> None:
    step, pool_queues = step_for(None)
    assert step.thread is not None
    assert pool_queues == ["jobs.default", "jobs.mail"]  # the pool no longer takes control messages
    assert step.job_queues == ("jobs.default", "jobs.mail")


@pytest.mark.parametrize(
    ("select", "thread", "job_queues"),
    [
        (["fairbeat.control"], False, ()),  # a control worker: Celery's own pool serves it
        (["jobs.default"], False, ("jobs.default",)),  # a job worker: nothing to take over
        (["fairbeat.control", "jobs.mail"], True, ("jobs.mail",)),
    ],
)
def test_only_a_mixed_worker_changes_hands(
    select: list[str], thread: bool, job_queues: tuple[str, ...]
) -> None:
    step, _ = step_for(select)
    assert (step.thread is not None, step.job_queues) == (thread, job_queues)


def test_an_expired_control_message_is_recognised() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert _expired((now - timedelta(seconds=1)).isoformat(), now)
    assert not _expired((now + timedelta(seconds=1)).isoformat(), now)
    assert not _expired(None, now) and not _expired("not a time", now)


def test_maintenance_messages_never_expire_and_dispatch_ones_do() -> None:
    schedule = build_schedule(Settings(database_url="sqlite://"))
    assert "expires" not in schedule["fairbeat.maintenance"]["options"]
    assert schedule["fairbeat.dispatch"]["options"]["expires"] > 0


class StubMessage:
    def __init__(self, headers: dict[str, object], body: object = None) -> None:
        self.headers = headers
        self.body = body
        self.acked = False

    def decode(self) -> object:
        if isinstance(self.body, Exception):
            raise self.body
        return self.body

    def ack(self) -> None:
        self.acked = True


def test_a_control_message_that_cannot_run_is_acked_not_redelivered_for_ever() -> None:
    settings = Settings(database_url="sqlite://", redis_url="redis://127.0.0.1:1/0")
    thread = ControlThread(settings, create_app)
    thread.app = create_app(settings)
    past = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    messages = [
        StubMessage({"task": "user.task"}),  # not ours: never run in the worker's main process
        StubMessage({"task": "fairbeat.dispatch", "expires": past}),
        StubMessage({"task": "fairbeat.dispatch"}, ValueError("not JSON")),
    ]
    for message in messages:
        thread._on_message(None, message)  # type: ignore[arg-type]  # a stub of kombu Message
    assert all(m.acked for m in messages)
