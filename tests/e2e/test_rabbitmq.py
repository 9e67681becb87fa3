"""RabbitMQ as the broker: routing through real exchanges and queues."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from kombu import Connection, Exchange, Queue

from fairbeat.tasks.api import enqueue
from tests.conftest import PostgresDatabases
from tests.e2e.conftest import Fleet, running_fleet

pytestmark = pytest.mark.e2e

AMQP_URL = os.environ.get("FAIRBEAT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture(scope="module")
def rabbit_fleet(
    pg_databases: PostgresDatabases, e2e_redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    logs = tmp_path_factory.mktemp("rabbit-logs")
    with running_fleet(pg_databases, logs, redis_url=e2e_redis_url, broker_url=AMQP_URL) as started:
        started.client.control.purge()  # messages an earlier run left on the broker
        yield started


def test_jobs_run_through_rabbitmq_on_their_routed_queues(rabbit_fleet: Fleet) -> None:
    live = rabbit_fleet
    plain = enqueue("acme", "test.send", {"tag": "amqp"}, app=live.client)
    routed = enqueue("acme", "test.flaky", {"tag": "amqp-routed", "fail_times": 0}, app=live.client)
    assert live.wait_status(plain.job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    assert live.wait_status(routed.job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    # The queues are real RabbitMQ queues, each bound to its own direct exchange.
    with Connection(AMQP_URL) as conn:
        channel = conn.channel()
        for name in ("fairbeat.control", "jobs.default", "jobs.flaky"):
            # passive: fails unless the broker already has the queue
            declared = Queue(name, Exchange(name, type="direct"), routing_key=name)(channel)
            assert declared.queue_declare(passive=True)
