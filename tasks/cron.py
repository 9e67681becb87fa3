"""The cron library at the edge: a schedule's slots, as ``scheduling.schedules`` wants them.

cronsim evaluates the expression in the schedule's time zone (with Debian
cron's behaviour across DST changes); the slots leave here as UTC instants.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from fairbeat.scheduling.schedules import EverySeries, SlotSeries
from fairbeat.store.models import CRON_MAX, TIMEZONE_MAX

# A guard against an answer that is not strictly after (or before) the asked
# time, which a DST fold could give: step on, at most this often.
MAX_SAME_INSTANT_STEPS = 4


class BadSchedule(ValueError):
    """A cron expression, time zone or interval that cannot make a schedule."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_timezone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name or len(name) > TIMEZONE_MAX:
        raise BadSchedule(
            "timezone", f"must be an IANA time zone name of 1 to {TIMEZONE_MAX} characters"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadSchedule(
            "timezone", f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin or UTC"
        ) from None


@dataclass(frozen=True)
class CronSeries:
    """The slots of a cron expression (five fields, or six with seconds first) in ``zone``."""

    expr: str
    zone: ZoneInfo

    def after(self, t: datetime) -> datetime | None:
        return self._step(t, reverse=False)

    def before(self, t: datetime) -> datetime | None:
        return self._step(t, reverse=True)

    def _step(self, t: datetime, *, reverse: bool) -> datetime | None:
        try:
            it = CronSim(self.expr, t.astimezone(self.zone), reverse=reverse)
        except CronSimError as exc:
            raise BadSchedule("cron", f"bad cron expression {self.expr!r} ({exc})") from None
        for _ in range(MAX_SAME_INSTANT_STEPS):
            try:
                found = next(it).astimezone(UTC)
            except StopIteration:  # no match within cronsim's 50-year horizon
                return None
            if (found < t) if reverse else (found > t):
                return found
        return None


def cron_series(expr: str, timezone: str, now: datetime) -> CronSeries:
    """A checked cron series: the expression parses and fires at least once after ``now``."""
    if not isinstance(expr, str) or not expr.strip() or len(expr) > CRON_MAX:
        raise BadSchedule("cron", f"must be a cron expression of 1 to {CRON_MAX} characters")
    series = CronSeries(expr.strip(), parse_timezone(timezone))
    try:
        first = series.after(now)
    except BadSchedule as exc:
        raise BadSchedule("cron", f"{exc.message}; use five fields, e.g. '*/5 * * * *'") from None
    if first is None:
        raise BadSchedule("cron", f"{expr!r} never fires in the next 50 years")
    return series


def series_for(cron: str | None, every_s: int | None, timezone: str) -> SlotSeries:
    """The series of a stored schedule (checked when it was added)."""
    if cron is not None:
        return CronSeries(cron, parse_timezone(timezone))
    if every_s is None:
        raise BadSchedule("every_s", "a schedule needs a cron expression or an interval")
    return EverySeries(every_s)
