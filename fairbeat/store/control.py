"""Control-loop state in Redis: the quota ladder and gate state, the promotion
switch, capacity overrides, autoscale state, rate-limit arrival times.

Methods raise ``redis.RedisError``; callers choose the fallback (the
dispatcher falls back to safe defaults, the gate fails loudly).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from fairbeat.scheduling.gate import GateState
from fairbeat.store import lua
from fairbeat.store.keys import Keys


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class ControlState:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._write_ladder = client.register_script(lua.WRITE_LADDER)
        self._set_if_holder = client.register_script(lua.SET_IF_HOLDER)
        self._delete_if_unchanged = client.register_script(lua.DELETE_IF_UNCHANGED)

    # Ladder and gate ---------------------------------------------------------

    def gate_states(self, workspace_ids: Iterable[str]) -> dict[str, GateState]:
        ids = list(workspace_ids)
        if not ids:
            return {}
        raw = self.client.hmget(self.keys.gate_state, ids)
        return {
            w: GateState.from_dict(json.loads(v)) if v else GateState()
            for w, v in zip(ids, raw, strict=True)
        }

    def ladder_workspaces(self) -> list[str]:
        return sorted(_text(k) for k in self.client.hkeys(self.keys.ladder_quota))

    def write_ladder(
        self, window: str, entries: Mapping[str, tuple[int | None, GateState]]
    ) -> bool:
        """Atomically set each workspace's ladder quota (None: off the ladder) and state."""
        args: list[str] = [window]
        for workspace, (quota, state) in sorted(entries.items()):
            args += [workspace, "" if quota is None else str(quota), json.dumps(state.to_dict())]
        keys = [self.keys.gate_window, self.keys.ladder_quota, self.keys.gate_state]
        return bool(self._write_ladder(keys=keys, args=args))

    def reset_gate(
        self, workspace_ids: Iterable[str] | None, latest_window: str
    ) -> tuple[dict[str, GateState], bool]:
        """Clear the streaks and last-evaluated window of these workspaces (None:
        every one with gate state), keeping each rung; drop the window marker
        when every workspace is reset, or when it names a window after
        ``latest_window`` (one that had not finished). Gives back the states
        before, and whether the marker was dropped. One MULTI/EXEC."""
        if workspace_ids is None:
            ids = sorted(_text(k) for k in self.client.hkeys(self.keys.gate_state))
        else:
            ids = list(workspace_ids)
        before = self.gate_states(ids)
        marker = self.last_window()
        drop_marker = marker is not None and (workspace_ids is None or marker > latest_window)
        pipe = self.client.pipeline(transaction=True)
        for workspace, state in before.items():
            fresh = GateState(rung=state.rung)
            pipe.hset(self.keys.gate_state, workspace, json.dumps(fresh.to_dict()))
        if drop_marker:
            pipe.delete(self.keys.gate_window)
        pipe.execute()
        return before, drop_marker

    def ladder(self) -> dict[str, int]:
        return {_text(k): int(v) for k, v in self.client.hgetall(self.keys.ladder_quota).items()}

    def last_window(self) -> str | None:
        raw = self.client.get(self.keys.gate_window)
        return _text(raw) if raw else None

    # Operator switches -------------------------------------------------------

    def promotion_enabled(self) -> bool:
        return self.client.get(self.keys.promotion) != b"off"

    def set_promotion(self, enabled: bool) -> None:
        self.client.set(self.keys.promotion, "on" if enabled else "off")

    def quota_pins(self) -> dict[str, int]:
        return {_text(k): int(v) for k, v in self.client.hgetall(self.keys.quota_pins).items()}

    def pin_quota(self, workspace_id: str, quota: int | None) -> None:
        if quota is None:
            self.client.hdel(self.keys.quota_pins, workspace_id)
        else:
            self.client.hset(self.keys.quota_pins, workspace_id, quota)

    def capacity_override(self) -> dict[str, int]:
        raw = self.client.get(self.keys.capacity_override)
        return json.loads(raw) if raw else {}

    def set_capacity_override(self, override: Mapping[str, int] | None) -> None:
        if override:
            self.client.set(self.keys.capacity_override, json.dumps(dict(override)))
        else:
            self.client.delete(self.keys.capacity_override)

    def route_overrides(self) -> list[tuple[str, str]]:
        """The operator's routes, newest first; they come before FAIRBEAT_ROUTES."""
        raw = self.client.hgetall(self.keys.route_overrides)
        entries = [(_text(p), json.loads(v)) for p, v in raw.items()]
        entries.sort(key=lambda e: (-float(e[1]["seq"]), e[0]))
        return [(pattern, str(entry["queue"])) for pattern, entry in entries]

    def set_route_override(self, pattern: str, queue: str | None) -> list[tuple[str, str]]:
        """Route ``pattern`` to ``queue``, ahead of every older route, or drop it."""
        key = self.keys.route_overrides
        if queue is None:
            self.client.hdel(key, pattern)
        else:
            # One HSET per route: two operators setting different patterns never lose one.
            seq = int(self.client.incr(self.keys.route_seq))
            self.client.hset(key, pattern, json.dumps({"queue": queue, "seq": seq}))
        return self.route_overrides()

    def autoscale_inputs(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(autoscale state, capacity override, health signals) in one round trip."""
        keys = (self.keys.autoscale_state, self.keys.capacity_override, self.keys.health_signals)
        state, override, signals = (
            json.loads(raw) if raw else {} for raw in self.client.mget(keys)
        )
        return state, override, signals

    def clear_capacity_step(self, override: Mapping[str, Any]) -> None:
        """A one-shot step is applied once; a newer override set meanwhile stays."""
        keys = [self.keys.capacity_override]
        self._delete_if_unchanged(keys=keys, args=[json.dumps(dict(override))])

    # Autoscale and rate limits ----------------------------------------------

    def autoscale_state(self) -> dict[str, Any]:
        raw = self.client.get(self.keys.autoscale_state)
        return json.loads(raw) if raw else {}

    def save_autoscale_state(self, state: Mapping[str, Any], fence: int | None = None) -> bool:
        """With ``fence``, only while that dispatch run still holds the lease."""
        value = json.dumps(dict(state))
        if fence is None:
            return bool(self.client.set(self.keys.autoscale_state, value))
        keys = [self.keys.dispatch_lock, self.keys.autoscale_state]
        return bool(self._set_if_holder(keys=keys, args=[fence, value]))

    def rate_tats(self, workspace_ids: Iterable[str]) -> dict[str, float]:
        ids = list(workspace_ids)
        if not ids:
            return {}
        raw = self.client.hmget(self.keys.rate_tat, ids)
        return {w: float(v) for w, v in zip(ids, raw, strict=True) if v is not None}

    def save_rate_tats(self, tats: Mapping[str, float]) -> None:
        pipe = self.client.pipeline()
        for workspace, tat in tats.items():
            pipe.hset(self.keys.rate_tat, workspace, tat)
        pipe.execute()

    def health_signals(self) -> dict[str, Any]:
        raw = self.client.get(self.keys.health_signals)
        return json.loads(raw) if raw else {}

    def save_health_signals(self, signals: Mapping[str, Any]) -> None:
        self.client.set(self.keys.health_signals, json.dumps(dict(signals)))
