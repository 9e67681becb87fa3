"""The times fairbeat can load: the bounds, and the check SQLite runs as a SQL function."""

from __future__ import annotations

from datetime import UTC, datetime

# Python's datetime spans years 1 to 9999; a day's margin on each side keeps
# every value loadable in any session time zone.
LOWEST_TIME = datetime(1, 1, 2, tzinfo=UTC)
HIGHEST_TIME = datetime(9999, 12, 30, tzinfo=UTC)

# The SQL name of ``loadable`` on SQLite connections (registered in db.py).
SQLITE_TIME_OK = "fairbeat_time_ok"


def loadable(value: object) -> int:
    """1 when a SQLite DATETIME value loads as a time within the bounds, else 0.

    Parses exactly as loading the column does (``datetime.fromisoformat``), so
    it also catches what SQLite's own date functions let through (30 February,
    hour 24, numbers, blobs).
    """
    if not isinstance(value, str):
        return 0
    try:
        parsed = datetime.fromisoformat(value)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return 0
    return int(LOWEST_TIME <= parsed < HIGHEST_TIME)
