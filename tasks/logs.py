"""Structured logs: one JSON object per line, with a stable ``action`` key.

Every tick, decision, recovery and alert logs with ``extra={"action": ...}``
and its figures; this formatter puts them all on one line an operator can
grep and a log pipeline can count. FAIRBEAT_LOG_FORMAT=text keeps Celery's
own format.
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


def install(log_format: str) -> None:
    """Have Celery's worker and beat loggers write JSON lines."""
    if log_format != "json":
        return

    def _setup(logger: logging.Logger, *args: Any, **kwargs: Any) -> None:
        use_json(logger)

    after_setup_logger.connect(_setup, weak=False)
    after_setup_task_logger.connect(_setup, weak=False)
