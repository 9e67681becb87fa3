"""fairbeat's live state in Redis: dispatch lease, kicks, fair-share state, quotas.

Nothing here is the source of truth; SQL is. Losing Redis means safe defaults
(base quotas, fresh fair-share state), never a stall, and callers say so with
a reason code. Methods raise ``redis.RedisError``; the caller chooses the
fallback.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis

from fairbeat.scheduling.fair import FairState
from fairbeat.scheduling.fleet import WorkerSlots
from fairbeat.store import lua
from fairbeat.store.keys import Keys


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class LiveState:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._acquire = client.register_script(lua.ACQUIRE_LEASE)
        self._renew = client.register_script(lua.RENEW_LEASE)
        self._release = client.register_script(lua.RELEASE_LEASE)
        self._save_fair = client.register_script(lua.SAVE_FAIR_STATE)
        self._run_time = client.register_script(lua.UPDATE_RUN_TIME)
        self._kick = client.register_script(lua.KICK)

    # Dispatch lease ---------------------------------------------------------

    def acquire_dispatch(self, lease_ms: int, floor: int = 0) -> int | None:
        keys = [self.keys.dispatch_lock, self.keys.dispatch_fence]
        fence = int(self._acquire(keys=keys, args=[lease_ms, floor]))
        return fence or None

    def renew_dispatch(self, fence: int, lease_ms: int) -> bool:
        return bool(self._renew(keys=[self.keys.dispatch_lock], args=[fence, lease_ms]))

    def release_dispatch(self, fence: int) -> bool:
        return bool(self._release(keys=[self.keys.dispatch_lock], args=[fence]))

    def back_off(self, ms: int) -> None:
        """After a failed run: kicks wait ``ms`` (beat keeps ticking meanwhile)."""
        self.client.set(self.keys.dispatch_backoff, 1, px=ms)

    def backing_off(self) -> bool:
        return bool(self.client.exists(self.keys.dispatch_backoff))

    def clear_backoff(self) -> None:
        self.client.delete(self.keys.dispatch_backoff)

    # Kicks ------------------------------------------------------------------

    def kick(self, debounce_ms: int) -> bool:
        """Record a kick; True when it needs dispatch messages: no dispatch run
        holds the lease (the holder sees the kick) and none went out in the
        last ``debounce_ms``."""
        keys = [self.keys.kick_seq, self.keys.kick_debounce, self.keys.dispatch_lock]
        return bool(self._kick(keys=keys, args=[debounce_ms]))

    def kick_seq(self) -> int:
        return int(self.client.get(self.keys.kick_seq) or 0)

    def mark_kicks_seen(self, seq: int) -> None:
        self.client.set(self.keys.kick_seen, seq)

    def unseen_kicks(self) -> bool:
        """Has a kick come in since the last tick that started after one?"""
        seq, seen = self.client.mget(self.keys.kick_seq, self.keys.kick_seen)
        return int(seq or 0) > int(seen or 0)

    # Fair-share state -------------------------------------------------------

    def load_fair_state(self) -> FairState:
        pipe = self.client.pipeline()
        pipe.hgetall(self.keys.drr_deficits)
        pipe.get(self.keys.drr_cursor)
        raw_deficits, raw_cursor = pipe.execute()
        deficits = {k.decode(): float(v) for k, v in raw_deficits.items()}
        where = json.loads(raw_cursor) if raw_cursor else {}
        by_class = {
            name: FairState(
                {str(w): float(d) for w, d in (raw.get("deficits") or {}).items()},
                raw.get("cursor"),
                bool(raw.get("resume")),
            )
            for name, raw in (where.get("classes") or {}).items()
        }
        return FairState(
            deficits,
            where.get("cursor"),
            bool(where.get("resume")),
            turn=int(where.get("turn") or 0),
            by_class=by_class,
            class_credit={str(c): float(v) for c, v in (where.get("credit") or {}).items()},
        )

    def save_fair_state(self, fence: int, state: FairState) -> bool:
        pairs: list[str | float] = []
        for workspace, deficit in sorted(state.deficits.items()):
            pairs.extend([workspace, deficit])
        # The per-class states of priority classes ride in the cursor's JSON: small,
        # and written by the same fenced script.
        classes = {
            name: {"deficits": dict(s.deficits), "cursor": s.cursor, "resume": s.resume}
            for name, s in state.by_class.items()
        }
        where: dict[str, Any] = {"cursor": state.cursor, "resume": state.resume}
        if state.turn or classes or state.class_credit:
            where |= {"turn": state.turn, "classes": classes, "credit": dict(state.class_credit)}
        cursor = json.dumps(where)
        keys = [self.keys.dispatch_lock, self.keys.drr_deficits, self.keys.drr_cursor]
        return bool(self._save_fair(keys=keys, args=[fence, cursor, *pairs]))

    # Run-time estimates (fairness by worker time) -----------------------------

    def record_run_time(self, workspace_id: str, kind: str, seconds: float, alpha: float) -> None:
        """Fold one finished job's run time into its workspace's and kind's estimates."""
        fields = [
            self.keys.run_time_field(workspace_id),
            self.keys.run_time_field(workspace_id, kind),
        ]
        self._run_time(keys=[self.keys.run_time], args=[alpha, max(0.0, seconds), *fields])

    def run_time_estimates(
        self, workspace_ids: Iterable[str], pairs: Iterable[tuple[str, str]] = ()
    ) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
        """(per workspace, per (workspace, kind)) estimates in seconds, for those that have one."""
        ids, kinds = list(workspace_ids), list(pairs)
        fields = [self.keys.run_time_field(w) for w in ids]
        fields += [self.keys.run_time_field(w, k) for w, k in kinds]
        if not fields:
            return {}, {}
        raw = self.client.hmget(self.keys.run_time, fields)
        head, tail = raw[: len(ids)], raw[len(ids) :]
        by_ws = {w: float(v) for w, v in zip(ids, head, strict=True) if v is not None}
        by_kind = {p: float(v) for p, v in zip(kinds, tail, strict=True) if v is not None}
        return by_ws, by_kind

    # Quotas -----------------------------------------------------------------

    def quotas(self, workspace_ids: Iterable[str]) -> tuple[dict[str, int], dict[str, int]]:
        """(ladder quota, operator pin) per workspace, for those that have one."""
        ids = list(workspace_ids)
        if not ids:
            return {}, {}
        pipe = self.client.pipeline()
        pipe.hmget(self.keys.ladder_quota, ids)
        pipe.hmget(self.keys.quota_pins, ids)
        ladder, pins = pipe.execute()
        return (
            {w: int(v) for w, v in zip(ids, ladder, strict=True) if v is not None},
            {w: int(v) for w, v in zip(ids, pins, strict=True) if v is not None},
        )

    # The fleet ----------------------------------------------------------------

    def publish_worker(self, worker: WorkerSlots, ttl_ms: int) -> None:
        """Report a live worker's job slots; the report lapses unless renewed."""
        value = json.dumps({"slots": worker.slots, "queues": list(worker.queues)})
        pipe = self.client.pipeline()
        pipe.sadd(self.keys.fleet_workers, worker.hostname)
        pipe.set(self.keys.fleet_worker(worker.hostname), value, px=ttl_ms)
        pipe.execute()

    def withdraw_worker(self, hostname: str) -> None:
        pipe = self.client.pipeline()
        pipe.srem(self.keys.fleet_workers, hostname)
        pipe.delete(self.keys.fleet_worker(hostname))
        pipe.execute()

    def worker_slots(self) -> list[WorkerSlots]:
        """The workers whose report has not lapsed; lapsed ones are forgotten."""
        names = sorted(_text(m) for m in self.client.smembers(self.keys.fleet_workers))
        if not names:
            return []
        raw = self.client.mget([self.keys.fleet_worker(n) for n in names])
        gone = [n for n, v in zip(names, raw, strict=True) if v is None]
        if gone:
            self.client.srem(self.keys.fleet_workers, *gone)
        out = []
        for name, value in zip(names, raw, strict=True):
            if value is not None:
                data = json.loads(value)
                out.append(WorkerSlots(name, int(data["slots"]), tuple(data["queues"])))
        return out
