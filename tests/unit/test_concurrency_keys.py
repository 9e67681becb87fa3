"""Properties of key admission on top of the fair plan: no key over its limit,
no workspace over its plan (so over its quota or the capacity), deterministic."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from fairbeat.scheduling.concurrency import (
    GLOBAL_SCOPE,
    KeyedCandidate,
    ScopedKey,
    admit,
    full_keys,
    limit_of,
    scope_of,
)
from fairbeat.scheduling.fair import FairState, WorkspaceDemand, plan_fair
from fairbeat.scheduling.reasons import BACKPRESSURE, KEY_LIMIT

WORKSPACES = ("a", "b", "c", "d")
KEYS = ("user:1", "user:2", "global:provider-x", "global:provider-y")


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[list[WorkspaceDemand], list[KeyedCandidate], dict[ScopedKey, int], dict[str, int], int]:
    demands, candidates = [], []
    next_id = 1
    for w in WORKSPACES:
        jobs = draw(
            st.lists(
                st.dictionaries(st.sampled_from(KEYS), st.integers(1, 3), max_size=3), max_size=12
            )
        )
        demands.append(
            WorkspaceDemand(
                w, due=len(jobs), in_flight=draw(st.integers(0, 4)), quota=draw(st.integers(0, 8))
            )
        )
        for keys in jobs:
            scoped = {(scope_of(w, k), k): n for k, n in keys.items()}
            candidates.append(KeyedCandidate(next_id, w, scoped))
            next_id += 1
    scoped_keys = st.tuples(st.sampled_from((*WORKSPACES, GLOBAL_SCOPE)), st.sampled_from(KEYS))
    in_flight = draw(st.dictionaries(scoped_keys, st.integers(0, 3), max_size=6))
    named = draw(st.dictionaries(st.sampled_from(KEYS), st.integers(1, 4), max_size=2))
    capacity = draw(st.integers(0, 30))
    return demands, draw(st.permutations(candidates)), in_flight, named, capacity


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_no_key_goes_over_its_limit_and_no_workspace_over_its_plan(
    scenario: tuple[
        list[WorkspaceDemand], list[KeyedCandidate], dict[ScopedKey, int], dict[str, int], int
    ],
) -> None:
    demands, candidates, in_flight, named, capacity = scenario
    total = sum(d.in_flight for d in demands)
    plan = plan_fair(
        demands,
        capacity=capacity,
        in_flight_total=total,
        batch=50,
        partition_cap=50,
        state=FairState(),
    )
    admission = admit(candidates, plan.allocations, in_flight, named)
    by_id = {c.job_id: c for c in candidates}
    chosen = [by_id[i] for i in admission.admitted]
    used: Counter[ScopedKey] = Counter()
    for c in chosen:
        used.update(c.keys.keys())
        for k, own in c.keys.items():
            # The admitted job's own limit (or the named one) holds with everything in flight.
            assert in_flight.get(k, 0) + used[k] <= limit_of(k, own, named)
    per_ws = Counter(c.workspace_id for c in chosen)
    for d in demands:
        assert per_ws[d.workspace_id] <= plan.allocations.get(d.workspace_id, 0)
        assert d.in_flight + per_ws[d.workspace_id] <= max(d.quota, d.in_flight)
    assert total + len(chosen) <= max(capacity, total)
    assert admission == admit(candidates, plan.allocations, in_flight, named)
    assert bool(admission.held) == (admission.reason_code == KEY_LIMIT)


@given(st.dictionaries(st.sampled_from(KEYS), st.integers(0, 5)), st.integers(1, 5))
def test_a_key_is_full_exactly_when_its_count_reaches_its_limit(
    counts: dict[str, int], limit: int
) -> None:
    scoped = {("a", k): n for k, n in counts.items()}
    full = full_keys(scoped, dict.fromkeys(scoped, limit), {})
    assert full == {k for k, n in scoped.items() if n >= limit}


def test_key_limit_is_a_backpressure_reason_and_keys_scope_as_documented() -> None:
    assert KEY_LIMIT in BACKPRESSURE
    assert scope_of("acme", "user:7") == "acme"
    assert scope_of("acme", "global:provider-x") == GLOBAL_SCOPE
