"""The Celery app: serialisation, events, queues and routing, built from Settings.

Nothing is built at import. ``default_app()`` builds the process's app from the
``FAIRBEAT_*`` environment on first use; tests and benchmarks call
``create_app(Settings(...))`` for apps of their own.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from celery import Celery
from celery.app.amqp import AMQP
from kombu import Exchange, Queue

from fairbeat.beat_schedule import build_schedule
from fairbeat.tasks import logs
from fairbeat.tasks.control_consumer import ControlPlane
from fairbeat.tasks.runtime import Runtime
from fairbeat.tasks.settings import Settings, SettingsError, load_settings

FAIRBEAT_TASK_MODULES = [
    "fairbeat.tasks.dispatch",
    "fairbeat.tasks.run",
    "fairbeat.tasks.maintenance",
    "fairbeat.tasks.gate",
    "fairbeat.tasks.canary_jobs",
    "fairbeat.tasks.schedule",
]


class ShownNameAMQP(AMQP):
    """Celery's message building, with the task-sent event named as shown.

    A run is shown under its job's kind (``shadow``), but Celery names its
    task-sent event by the real task (``fairbeat.run``); a sent event that
    reaches Flower after the worker's events would rename the task back.
    """

    def as_task_v2(self, task_id: str, name: str, *args: Any, **kwargs: Any) -> Any:
        message = super().as_task_v2(task_id, name, *args, **kwargs)
        shadow = message.headers.get("shadow")
        if shadow and message.sent_event:
            message.sent_event["name"] = shadow
        return message


def _queue(name: str) -> Queue:
    # Each queue on its own direct exchange and key: sharing the default
    # exchange and key would copy a message into every queue bound to it.
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def check_imports(modules: list[str]) -> None:
    """Import each FAIRBEAT_IMPORTS module now, so that one that does not import
    stops the process at start with one line, not a worker with no handlers."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise SettingsError(
                f"invalid fairbeat settings: FAIRBEAT_IMPORTS: cannot import {name!r} ({problem})"
            ) from None


def create_app(settings: Settings) -> Celery:
    """The Celery app for ``settings``. Raises ``SettingsError`` (naming
    FAIRBEAT_IMPORTS) when a handler module does not import."""
    check_imports(settings.imports)
    app = Celery("fairbeat", set_as_current=True, amqp=ShownNameAMQP)
    app.fairbeat_runtime = Runtime(settings)  # type: ignore[attr-defined]
    queues = [_queue(name) for name in [settings.control_queue, *settings.job_queues]]
    app.conf.update(
        broker_url=settings.broker,
        broker_connection_retry_on_startup=True,
        # Job state lives in SQL; Celery results would be a second, unfenced copy.
        task_ignore_result=True,
        result_backend=None,
        # JSON only: a broker message can never execute code on a worker.
        task_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        enable_utc=True,
        timezone="UTC",
        # Flower and the event stream see every task.
        worker_send_task_events=True,
        task_send_sent_event=True,
        # With no -Q a worker consumes every queue listed here.
        task_queues=queues,
        task_default_queue=settings.control_queue,
        task_routes={"fairbeat.*": {"queue": settings.control_queue}},
        # Ack after the task returns: a worker that dies mid-job leaves its
        # message to be redelivered. The fence makes a redelivery harmless.
        task_acks_late=True,
        # Requeue (not ack) the message of a child killed mid-task; a poison
        # job cannot loop on this, because its redelivery finds it RUNNING and
        # is dropped, and recovery counts its attempts.
        task_reject_on_worker_lost=True,
        # Take one message at a time: a prefetched message is a job claimed but
        # held by a busy worker, which would undo the dispatcher's fair order.
        worker_prefetch_multiplier=1,
        worker_concurrency=settings.worker_concurrency,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        imports=[*FAIRBEAT_TASK_MODULES, *settings.imports],
        beat_schedule=build_schedule(settings),
    )
    # Dispatch, gate and maintenance never wait behind job slots, and the
    # dispatcher learns the fleet's slots (tasks/control_consumer.py).
    app.steps["worker"].add(ControlPlane)
    logs.install(settings.log_format, settings.log_level, settings.log_tick_every_s)
    return app


@functools.cache
def default_app() -> Celery:
    """The app of this process, built once from the environment.

    Raises ``SettingsError`` (naming the variable) when a setting is invalid.
    """
    return create_app(load_settings())


def app_for_command() -> Celery:
    """``default_app()`` for a process that is starting (``celery -A fairbeat``):
    a bad setting ends it with one line naming the variable, not a traceback."""
    try:
        return default_app()
    except SettingsError as exc:
        raise SystemExit(f"fairbeat: {exc}") from None
