"""Where alerts go: a Slack incoming webhook, or the log when none is set.

A sink never raises: a webhook that is down must not break the maintenance
run that noticed the problem. Delivery failures are logged and returned.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Protocol

from fairbeat.scheduling.alerts import FIRE, AlertAction
from fairbeat.tasks.redact import mask_urls

log = logging.getLogger("fairbeat.alerts")

WEBHOOK_TIMEOUT_S = 5.0

TITLES = {
    "STALE_RUN": "a fairbeat run went silent past the stale cutoff",
    "QUEUE_AGE_BREACH": "fairbeat queue-age p95 is over its limit",
}


class Sink(Protocol):
    def send(self, action: AlertAction, episode: str) -> str | None:
        """Deliver; None when delivered, else what went wrong."""


def message(action: AlertAction, episode: str) -> str:
    title = TITLES.get(action.kind, action.kind)
    evidence = ", ".join(f"{k}={v}" for k, v in sorted(action.evidence.items()))
    if action.action == FIRE:
        return f":rotating_light: FIRING {action.kind}: {title} ({evidence}) [{episode}]"
    return f":white_check_mark: RESOLVED {action.kind}: {title} ended ({evidence}) [{episode}]"


class LogSink:
    def send(self, action: AlertAction, episode: str) -> str | None:
        log.warning(
            message(action, episode),
            extra={
                "action": f"alert.{action.action.lower()}",
                "kind": action.kind,
                "episode": episode,
            },
        )
        return None


class SlackSink:
    def __init__(self, url: str) -> None:
        self.url = url

    def send(self, action: AlertAction, episode: str) -> str | None:
        body = json.dumps({"text": message(action, episode)}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problem = mask_urls(str(exc))  # the webhook's path is its secret
            log.error(
                "alert webhook failed: %s",
                problem,
                extra={"action": "alert.delivery_failed", "kind": action.kind, "episode": episode},
            )
            return problem
        LogSink().send(action, episode)
        return None


def sink_for(webhook_url: str | None) -> Sink:
    return SlackSink(webhook_url) if webhook_url else LogSink()
