"""The worker's bootstep: a control plane that never waits behind job slots,
and the worker's job slots reported for the dispatcher's fleet bound.

On a worker that consumes the control queue *and* job queues (``celery -A
fairbeat worker`` with no ``-Q``), the control queue is taken off the pool's
consumer and served by a thread of the worker's main process instead:
dispatch, gate and maintenance run there one at a time, whatever the pool's
slots are doing. A worker that consumes only the control queue, or only job
queues, keeps Celery's own behaviour.

The thread runs on an app of its own (its own engine, Redis and broker
connections), built inside the thread: the pool's children are forked from
this process and must never touch, or garbage-collect, a connection the
thread is using. The thread keeps a reference to that app for the process's
lifetime for the same reason.

Every worker that consumes a job queue reports its slots and queues to Redis
from the worker's timer (so a worker whose main loop is stuck stops
reporting), with an expiry a few reports long, and withdraws them on a warm
shutdown.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from celery import Celery, bootsteps
from kombu import Message
from redis import RedisError

from fairbeat.scheduling.fleet import WorkerSlots
from fairbeat.store.keys import Keys
from fairbeat.store.live import LiveState
from fairbeat.tasks.runtime import runtime_of
from fairbeat.tasks.settings import Settings

log = logging.getLogger("fairbeat.control")

REPORT_EVERY_S = 5.0
REPORT_TTL_MS = 20_000  # four reports: one late report does not drop the worker
REPORT_TIMEOUT_S = 0.5  # the worker's main loop never waits long on Redis
DRAIN_TIMEOUT_S = 1.0
RECONNECT_S = 2.0
STOP_WAIT_S = 10.0


def _expired(expires: Any, now: datetime) -> bool:
    if not expires:
        return False
    try:
        when = datetime.fromisoformat(str(expires))
    except ValueError:
        return False
    return (when if when.tzinfo else when.replace(tzinfo=UTC)) <= now


class ControlThread(threading.Thread):
    """Consumes the control queue and runs each fairbeat task in this thread."""

    def __init__(self, settings: Settings, build: Callable[[Settings], Celery]) -> None:
        super().__init__(name="fairbeat-control", daemon=True)
        self.settings = settings
        self._build = build  # create_app, passed in: application imports this module
        self.stopping = threading.Event()
        self.app: Celery | None = None

    def run(self) -> None:
        self.app = self._build(self.settings)
        queue = self.app.amqp.queues[self.settings.control_queue]
        while not self.stopping.is_set():
            try:
                with self.app.connection_for_read() as conn:
                    self._consume(conn, queue)
            except Exception as exc:  # the broker went away: reconnect, never die
                log.warning(
                    "control consumer reconnecting: %s", exc, extra={"action": "control.reconnect"}
                )
                self.stopping.wait(RECONNECT_S)

    def _consume(self, conn: Any, queue: Any) -> None:
        with conn.Consumer(
            [queue], callbacks=[self._on_message], accept=["json"], prefetch_count=1
        ):
            log.info("control consumer ready", extra={"action": "control.ready"})
            while not self.stopping.is_set():
                try:
                    conn.drain_events(timeout=DRAIN_TIMEOUT_S)
                except TimeoutError:
                    conn.heartbeat_check()

    def _on_message(self, body: Any, message: Message) -> None:
        # Acked whatever happens: a control message that cannot run must not
        # come back for ever; beat sends the next one.
        try:
            self._run(message)
        except Exception:
            log.exception("control message not run", extra={"action": "control.error"})
        finally:
            message.ack()

    def _run(self, message: Message) -> None:
        assert self.app is not None
        headers = message.headers or {}
        name = str(headers.get("task", ""))
        task = self.app.tasks.get(name) if name.startswith("fairbeat.") else None
        if task is None:
            log.error("not a fairbeat task: %r; dropped", name, extra={"action": "control.unknown"})
            return
        if _expired(headers.get("expires"), datetime.now(UTC)):
            log.info("%s expired unrun", name, extra={"action": "control.expired", "task": name})
            return
        args, kwargs, _ = message.decode()
        result = task.apply(args=args, kwargs=kwargs, task_id=headers.get("id"))
        if result.failed():
            log.error(
                "%s failed: %s",
                name,
                result.result,
                extra={"action": "control.failed", "task": name, "exc": result.traceback},
            )

    def stop(self) -> None:
        self.stopping.set()
        self.join(STOP_WAIT_S)


class ControlPlane(bootsteps.StartStopStep):
    """Worker bootstep: the control thread, and the job-slot reports."""

    # Start after the pool has forked its children: a fork while the thread is
    # mid-import or holds a lock would leave a child waiting on it forever.
    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        app = worker.app
        self.settings = runtime_of(app).settings
        control = self.settings.control_queue
        consumed = set(app.amqp.queues.consume_from)
        self.thread: ControlThread | None = None
        if control in consumed and consumed - {control}:
            app.amqp.queues.deselect([control])
            from fairbeat.tasks.application import create_app

            self.thread = ControlThread(self.settings, create_app)
        self.job_queues = tuple(sorted(set(app.amqp.queues.consume_from) - {control}))
        client = redis.Redis.from_url(
            self.settings.redis_url,
            socket_timeout=REPORT_TIMEOUT_S,
            socket_connect_timeout=REPORT_TIMEOUT_S,
        )
        self.live = LiveState(client, Keys(self.settings.redis_prefix))
        self.hostname = str(worker.hostname)
        self._timer: Any = None

    def start(self, worker: Any) -> None:
        if self.thread is not None:
            self.thread.start()
        if self.job_queues:
            slots = int(getattr(worker.pool, "limit", None) or worker.concurrency or 1)
            self.slots = WorkerSlots(self.hostname, slots, self.job_queues)
            self.report()
            self._timer = worker.timer.call_repeatedly(REPORT_EVERY_S, self.report)

    def report(self) -> None:
        try:
            self.live.publish_worker(self.slots, REPORT_TTL_MS)
        except RedisError as exc:
            log.warning("slots not reported: %s", exc, extra={"action": "control.no_report"})

    def stop(self, worker: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(RedisError):  # else the report lapses by itself
                self.live.withdraw_worker(self.hostname)
        if self.thread is not None:
            self.thread.stop()
