"""fairbeat's decisions reach the log whatever Celery's level; ticks at a bounded rate."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from fairbeat.tasks import logs


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected() -> Iterator[Collect]:
    # Given Celery's default: the root logger at WARNING, one handler on it.
    root = logging.getLogger()
    handler, level = Collect(), root.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)
    logs.install("text")


def tick(created: float, claimed: int) -> logging.LogRecord:
    log = logging.getLogger("fairbeat.dispatch")
    record = logging.LogRecord(log.name, logging.INFO, __file__, 0, "dispatch tick", None, None)
    record.action = "dispatch.tick"
    record.claimed = claimed
    record.created = created
    return record


def test_decisions_show_at_info_under_a_warning_root(collected: Collect) -> None:
    logs.install("text", "INFO")
    logging.getLogger("fairbeat.gate").info("gate decision", extra={"action": "gate.decision"})
    logging.getLogger("fairbeat.run").info("job 1 succeeded")
    logging.getLogger("fairbeat.run").warning("delivery dropped")
    assert [r.getMessage() for r in collected.records] == ["gate decision", "delivery dropped"]


def test_ticks_are_summarised_once_per_interval(collected: Collect) -> None:
    logs.install("text", "INFO", tick_every_s=10.0)
    log = logging.getLogger("fairbeat.dispatch")
    for second in range(25):  # 25 ticks, one a second, each claiming 2
        log.handle(tick(1000.0 + second, claimed=2))
    shown = [r for r in collected.records if getattr(r, "action", None) == "dispatch.tick"]
    assert [r.created for r in shown] == [1000.0, 1010.0, 1020.0]
    assert [getattr(r, "ticks_summarised", None) for r in shown] == [1, 10, 10]
    assert [getattr(r, "claimed_summarised", None) for r in shown] == [2, 20, 20]


def test_debug_shows_every_tick(collected: Collect) -> None:
    logs.install("text", "DEBUG", tick_every_s=10.0)
    log = logging.getLogger("fairbeat.dispatch")
    for second in range(5):
        log.handle(tick(2000.0 + second, claimed=0))
    assert len(collected.records) == 5
