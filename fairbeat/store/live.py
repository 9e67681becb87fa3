"""fairbeat's live state in Redis: dispatch lease, kicks, fair-share state, quotas.

Nothing here is the source of truth; SQL is. Losing Redis means safe defaults
(base quotas, fresh fair-share state), never a stall, and callers say so with
a reason code. Methods raise ``redis.RedisError``; the caller chooses the
fallback.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import redis

from fairbeat.scheduling.fair import FairState
from fairbeat.store.keys import Keys
from fairbeat.store.lease import DELETE_IF_UNCHANGED, holder_only

# KEYS[1] lock, KEYS[2] fence counter; ARGV[1] lease in ms, ARGV[2] fence floor.
# Takes the lease if free and returns its new fence (> 0); 0 when held. The
# floor (the highest fence the run ledger has seen) keeps fences rising even
# when Redis lost its counter.
ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fence = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[2])
if fence <= floor then
  fence = floor + 1
  redis.call('SET', KEYS[2], fence)
end
redis.call('SET', KEYS[1], fence, 'PX', ARGV[1])
return fence
"""

# KEYS[1] lock; ARGV[1] fence, ARGV[2] lease in ms.
# Extends the lease only for its holder; 1 if extended, 0 if lost.
RENEW = holder_only("return redis.call('PEXPIRE', KEYS[1], ARGV[2])")

# KEYS[1] lock; ARGV[1] fence. Releases only the holder's own lease.
RELEASE = DELETE_IF_UNCHANGED

# KEYS[1] lock, KEYS[2] deficits hash, KEYS[3] cursor; ARGV[1] fence,
# ARGV[2] cursor JSON, ARGV[3..] workspace, deficit pairs.
# Replaces the fair-share state only while the caller still holds the lease,
# so a superseded dispatcher cannot write over its successor's state.
SAVE_FAIR_STATE = holder_only("""
redis.call('DEL', KEYS[2])
if #ARGV > 2 then redis.call('HSET', KEYS[2], unpack(ARGV, 3)) end
redis.call('SET', KEYS[3], ARGV[2])
return 1
""")


class LiveState:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._acquire = client.register_script(ACQUIRE)
        self._renew = client.register_script(RENEW)
        self._release = client.register_script(RELEASE)
        self._save_fair = client.register_script(SAVE_FAIR_STATE)

    # Dispatch lease ---------------------------------------------------------

    def acquire_dispatch(self, lease_ms: int, floor: int = 0) -> int | None:
        keys = [self.keys.dispatch_lock, self.keys.dispatch_fence]
        fence = int(self._acquire(keys=keys, args=[lease_ms, floor]))
        return fence or None

    def renew_dispatch(self, fence: int, lease_ms: int) -> bool:
        return bool(self._renew(keys=[self.keys.dispatch_lock], args=[fence, lease_ms]))

    def release_dispatch(self, fence: int) -> bool:
        return bool(self._release(keys=[self.keys.dispatch_lock], args=[fence]))

    # Kicks ------------------------------------------------------------------

    def kick(self, debounce_ms: int) -> bool:
        """Record a kick; True when no dispatch message went out in the last ``debounce_ms``."""
        pipe = self.client.pipeline()
        pipe.incr(self.keys.kick_seq)
        pipe.set(self.keys.kick_debounce, 1, nx=True, px=debounce_ms)
        _, fresh = pipe.execute()
        return bool(fresh)

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
        return FairState(deficits, where.get("cursor"), bool(where.get("resume")))

    def save_fair_state(self, fence: int, state: FairState) -> bool:
        pairs: list[str | float] = []
        for workspace, deficit in sorted(state.deficits.items()):
            pairs.extend([workspace, deficit])
        cursor = json.dumps({"cursor": state.cursor, "resume": state.resume})
        keys = [self.keys.dispatch_lock, self.keys.drr_deficits, self.keys.drr_cursor]
        return bool(self._save_fair(keys=keys, args=[fence, cursor, *pairs]))

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
