"""Structured logs: one JSON object per line, with a stable ``action`` key.

Every tick, decision, recovery and alert logs with ``extra={"action": ...}``
and its figures; this formatter puts them all on one line an operator can
grep and a log pipeline can count. FAIRBEAT_LOG_FORMAT=text keeps Celery's
own format.

fairbeat's loggers keep their own level (FAIRBEAT_LOG_LEVEL, INFO by default)
whatever Celery's ``--loglevel`` is: Celery's default WARNING would hide every
tick summary and decision an operator reads the logs for. Dispatch ticks, which
a busy system runs many times a second, are summarised at a bounded rate.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from celery.signals import after_setup_logger, after_setup_task_logger

# Attributes every LogRecord has; anything else came in through ``extra``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "task_id",
    "task_name",
    "data",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "action": getattr(record, "action", None),
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def use_json(logger: logging.Logger) -> None:
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())


class TickSummary(logging.Filter):
    """Lets one ``dispatch.tick`` record through per ``every_s`` seconds, carrying
    how many ticks it stands for and what they claimed; the rest pass only at DEBUG."""

    def __init__(self, every_s: float) -> None:
        super().__init__()
        self.every_s = every_s
        self._last = float("-inf")
        self._ticks = 0
        self._claimed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "action", None) != "dispatch.tick":
            return True
        self._ticks += 1
        self._claimed += int(getattr(record, "claimed", 0) or 0)
        if record.created - self._last < self.every_s:
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        record.ticks_summarised = self._ticks
        record.claimed_summarised = self._claimed
        self._last, self._ticks, self._claimed = record.created, 0, 0
        return True


def install(log_format: str, level: str = "INFO", tick_every_s: float = 10.0) -> None:
    """Set fairbeat's log level and tick summary now, and have Celery's worker and
    beat loggers write JSON lines once Celery has set them up."""
    logging.getLogger("fairbeat").setLevel(level)
    # A line per finished job belongs to the job list (fairbeat jobs, Flower);
    # the log keeps the run logger's warnings (dropped deliveries, failures).
    logging.getLogger("fairbeat.run").setLevel(level if level == "DEBUG" else "WARNING")
    dispatch = logging.getLogger("fairbeat.dispatch")
    for old in [f for f in dispatch.filters if isinstance(f, TickSummary)]:
        dispatch.removeFilter(old)
    dispatch.addFilter(TickSummary(tick_every_s))
    if log_format != "json":
        return

    def _setup(logger: logging.Logger, *args: Any, **kwargs: Any) -> None:
        use_json(logger)

    after_setup_logger.connect(_setup, weak=False)
    after_setup_task_logger.connect(_setup, weak=False)
