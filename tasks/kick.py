"""Continuation: a due enqueue or a finished job kicks the dispatcher.

A kick bumps a sequence in Redis. The first kick in a debounce window sends
a dispatch message at once (low latency) and a trailing one at the window's
end, so every kick is followed by a tick that starts after it; the rest of
the window's kicks only bump the sequence. Beat stays the safety net: a kick
that cannot reach Redis or the broker is logged and otherwise ignored.
"""

from __future__ import annotations

import logging

from celery import Celery

from fairbeat.tasks.runtime import runtime_of

log = logging.getLogger("fairbeat.kick")

KICK = "kick"


def kick(app: Celery, why: str) -> None:
    rt = runtime_of(app)
    settings = rt.settings
    try:
        if not rt.live.kick(settings.kick_debounce_ms):
            return
        options = {"queue": settings.control_queue, "kwargs": {"trigger": KICK}}
        app.send_task("fairbeat.dispatch", **options)  # type: ignore[arg-type]
        app.send_task(
            "fairbeat.dispatch",
            countdown=settings.kick_debounce_ms / 1000,
            **options,  # type: ignore[arg-type]
        )
    except Exception as exc:  # never let a kick fail the enqueue or the job
        log.warning("kick failed: %s", exc, extra={"action": "kick.failed", "why": why})
