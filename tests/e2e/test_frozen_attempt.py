"""An attempt frozen (SIGSTOP) past the stale cutoff never starts its effect on
waking: ``once()`` checks the fence right before the send.

A module of its own: its fleet has fast recovery, and two fleets at once would
share the test broker.
"""

from __future__ import annotations

import os
import signal

import pytest

from fairbeat.tasks.api import enqueue
from tests.e2e.conftest import Fleet, module_fleet, wait_for
from tests.e2e.test_effects_once import sends

pytestmark = pytest.mark.e2e


fast_recovery = module_fleet(
    "fast_recovery",
    "once-stale-logs",
    stale_after_s="3",
    maintenance_interval_s="1",
    delivery_timeout_s="5",
)


def test_an_attempt_frozen_past_the_cutoff_never_starts_its_effect(fast_recovery: Fleet) -> None:
    live = fast_recovery
    # Given a job whose handler works 4 s before its send, its worker child frozen mid-way
    job = enqueue("acme", "test.sleep", {"seconds": 4, "tag": "frozen"}, app=live.client)
    pid = int(live.wait_status(job.job_id, "RUNNING")["locked_by"].rsplit(":", 1)[1])
    os.kill(pid, signal.SIGSTOP)
    try:
        # When recovery hands the job to a successor attempt
        wait_for(lambda: live.job(job.job_id)["attempts"] == 2, "a successor attempt")
        innocent = enqueue("innocent", "test.send", {"tag": "bystander-frozen"}, app=live.client)
    finally:
        # And the frozen attempt resumes, its own 4 s long over, before the successor sends
        os.kill(pid, signal.SIGCONT)
    # Then the resumed attempt saw its fence taken and did not send; the successor sent once
    done = live.wait_status(job.job_id, "SUCCEEDED", "FAILED")
    assert done["status"] == "SUCCEEDED" and done["fence"] == 2
    assert sends(live, "frozen") == 1
    assert live.wait_status(innocent.job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    assert sends(live, "bystander-frozen") == 1
