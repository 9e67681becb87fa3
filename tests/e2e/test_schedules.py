"""Per-workspace schedules on a real fleet with TWO beats: one job per slot."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import select

from fairbeat.scheduling.schedules import SLOT_FORMAT
from fairbeat.store import schedules as store
from fairbeat.store.models import job_table
from tests.e2e.conftest import Fleet, module_fleet, wait_for
from tests.handlers import LEDGER_KEY

pytestmark = pytest.mark.e2e

# Slots looked at: enough for both beats to have raced on most of them.
SLOTS = 10


two_beats = module_fleet("two_beats", "schedule-logs", 2)


def cli_json(fleet: Fleet, *args: str) -> dict[str, Any]:
    result = fleet.run_cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def scheduled_jobs(fleet: Fleet, schedule_id: int) -> list[dict[str, Any]]:
    query = select(job_table).where(job_table.c.dedupe_key.like(f"schedule:{schedule_id}:%"))
    with fleet.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def slot_of(job: dict[str, Any]) -> datetime:
    """The slot a job's dedupe key names: ``schedule:ID:2026-12-01T12:00:00Z``."""
    text = job["dedupe_key"].split(":", 2)[2]
    return datetime.strptime(text, SLOT_FORMAT).replace(tzinfo=UTC)


def test_two_beats_enqueue_each_slot_of_an_every_second_schedule_once(
    two_beats: Fleet,
) -> None:
    fleet = two_beats
    # Given an every-second schedule added through the command line
    added = cli_json(fleet, "schedule", "add", "acme", "test.noop", "--every", "1")
    schedule_id = int(added["id"])
    first = datetime.fromisoformat(added["next_slot"])
    last_looked_at = first + timedelta(seconds=SLOTS - 1)
    # And, meanwhile, an innocent workspace's job
    innocent = cli_json(fleet, "enqueue", "beta", "test.send", "--payload", '{"tag": "bystander"}')

    # When both beats have fired ticks past SLOTS slots
    def advanced() -> bool:
        with fleet.engine.connect() as conn:
            row = store.get(conn, schedule_id)
        return row is not None and row.last_slot is not None and row.last_slot >= last_looked_at

    try:
        wait_for(advanced, f"schedule {schedule_id} to pass {SLOTS} slots")
    except AssertionError:
        fleet.dump_logs()
        raise
    # Then every slot has exactly one job: unique keys, consecutive slots, none skipped
    found = scheduled_jobs(fleet, schedule_id)
    keys = [j["dedupe_key"] for j in found]
    assert len(keys) == len(set(keys))
    slots = sorted(slot_of(j) for j in found)
    assert slots[0] == first
    assert all(b - a == timedelta(seconds=1) for a, b in pairwise(slots))
    assert len([s for s in slots if s <= last_looked_at]) == SLOTS
    # And each ran, once, through the normal path
    ids = [j["id"] for j in found if slot_of(j) <= last_looked_at]
    for job_id in ids:
        row = fleet.wait_status(job_id, "SUCCEEDED", "FAILED")
        assert row["status"] == "SUCCEEDED" and row["attempts"] == 1
    # And the bystander's job succeeded, its effect done once
    assert fleet.wait_status(int(innocent["job_id"]), "SUCCEEDED")["attempts"] == 1
    sends = fleet.redis.lrange(LEDGER_KEY, 0, -1)
    assert sends.count(b"bystander") == 1
    # And both beats really were firing the scheduler tick
    for n in range(2):
        assert "fairbeat.schedule" in (fleet.logs / f"beat{n}.log").read_text()
    paused = cli_json(fleet, "schedule", "pause", str(schedule_id))
    assert paused["paused"] is True


def test_bad_schedule_input_is_one_line_naming_the_argument(two_beats: Fleet) -> None:
    cases = [
        (["--cron", "61 * * * *"], "--cron: bad cron expression '61 * * * *'"),
        (["--every", "0"], "--every: must be from 1"),
        (["--cron", "* * * * *", "--timezone", "Mars/Base"], "--timezone: unknown time zone"),
        (["--every", "5", "--missed", "often"], "--missed: must be one of skip, catch_up_once"),
        (["--every", "5", "--cron", "* * * * *"], "give exactly one of --cron"),
    ]
    for args, message in cases:
        result = two_beats.run_cli("schedule", "add", "acme", "test.noop", *args)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    unknown = two_beats.run_cli("schedule", "add", "acme", "no.such", "--every", "5")
    assert unknown.returncode == 2 and "KIND: no task named 'no.such'" in unknown.stderr
    listed = cli_json(two_beats, "schedule", "list", "--workspace", "acme")
    assert all(s["kind"] == "test.noop" for s in listed["schedules"])
