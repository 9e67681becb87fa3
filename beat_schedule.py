"""The one place that says what fires when."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery.schedules import crontab

if TYPE_CHECKING:
    from fairbeat.tasks.settings import Settings

# A dispatch message older than this is dropped unrun: after an outage the
# backlog of beat ticks collapses into the next one instead of a burst.
MIN_DISPATCH_EXPIRY_S = 10.0


def build_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    interval = settings.dispatch_interval_s
    maintenance = settings.maintenance_interval_s
    return {
        "fairbeat.gate": {
            "task": "fairbeat.gate",
            # On the quarter hour (or the configured window), for the window just ended.
            "schedule": crontab(minute=f"*/{max(1, settings.gate_window_s // 60)}"),
            "options": {"queue": settings.control_queue, "expires": settings.gate_window_s},
        },
        "fairbeat.maintenance": {
            "task": "fairbeat.maintenance",
            "schedule": maintenance,
            # No expiry: a late maintenance message still runs (its window key
            # collapses a backlog of them into one run); discarding it would stop
            # recovery and alerts exactly when the control plane is loaded.
            "options": {"queue": settings.control_queue},
        },
        "fairbeat.schedule": {
            "task": "fairbeat.schedule",
            "schedule": settings.schedule_interval_s,
            # A late tick is superseded by the next; the slots wait in the table.
            "options": {
                "queue": settings.control_queue,
                "expires": max(MIN_DISPATCH_EXPIRY_S, 5 * settings.schedule_interval_s),
            },
        },
        "fairbeat.dispatch": {
            "task": "fairbeat.dispatch",
            "schedule": interval,
            "options": {
                "queue": settings.control_queue,
                "expires": max(MIN_DISPATCH_EXPIRY_S, 5 * interval),
            },
        },
    }
