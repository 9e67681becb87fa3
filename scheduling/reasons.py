"""Reason codes: why a due job was left unclaimed in a tick, and where a quota came from.

Every due job a tick does not claim is counted under exactly one of the
backpressure codes, so an operator can always answer "why is this waiting?".
"""

from __future__ import annotations

# Backpressure: why a due job was not claimed in this tick.
GLOBAL_CAPACITY = "GLOBAL_CAPACITY"  # the fleet-wide in-flight capacity is used up
FLEET_SLOTS = "FLEET_SLOTS"  # the live workers' slots have their next jobs waiting already
CLAIM_BATCH = "CLAIM_BATCH"  # capacity is free, but one tick claims at most a batch; continued
WORKSPACE_QUOTA = "WORKSPACE_QUOTA"  # the workspace has its quota of jobs in flight
PARTITION_CAP = "PARTITION_CAP"  # past the per-workspace selection cap of one tick
WORKSPACE_PAUSED = "WORKSPACE_PAUSED"  # an operator paused the workspace
# Held: the workspace's row holds a weight or rate limit no arithmetic can use
# (NaN, inf, negative, out of range); fix it with `fairbeat workspace set`.
WORKSPACE_MISCONFIGURED = "WORKSPACE_MISCONFIGURED"
LADDER_UNAVAILABLE = "LADDER_UNAVAILABLE"  # held at base quota because Redis could not be read
GUARDRAIL_STEP_DOWN = "GUARDRAIL_STEP_DOWN"  # capacity was stepped down by a guardrail
RATE_LIMITED = "RATE_LIMITED"  # the workspace's start rate limit is reached
LOST_CLAIM = "LOST_CLAIM"  # planned, but another claimer took the row first
RECLAIMED = "RECLAIMED"  # held: the workspace is over its quota on borrowed slots
KEY_LIMIT = "KEY_LIMIT"  # one of the job's concurrency keys has its limit of jobs in flight
# Priority classes: the tick's room went to a higher class, or was kept for a lower one.
CLASS_BUDGET = "CLASS_BUDGET"

# Not a backpressure reason: claims above a workspace's quota while capacity idled.
BORROWED = "BORROWED"

BACKPRESSURE = (
    GLOBAL_CAPACITY,
    FLEET_SLOTS,
    CLAIM_BATCH,
    WORKSPACE_QUOTA,
    PARTITION_CAP,
    WORKSPACE_PAUSED,
    WORKSPACE_MISCONFIGURED,
    LADDER_UNAVAILABLE,
    GUARDRAIL_STEP_DOWN,
    RATE_LIMITED,
    LOST_CLAIM,
    RECLAIMED,
    KEY_LIMIT,
    CLASS_BUDGET,
)

# Where a workspace's quota came from.
QUOTA_TIER_BASE = "TIER_BASE"
QUOTA_LADDER = "LADDER"
QUOTA_OPERATOR_PIN = "OPERATOR_PIN"
QUOTA_LADDER_UNAVAILABLE = LADDER_UNAVAILABLE
