"""Every Lua script fairbeat runs in Redis, each headed by its KEYS/ARGV contract.

The lease-holder check is written once (``store/lease.py``) and every script
that must only act for the current holder is built on it: KEYS[1] is the
lease, ARGV[1] the caller's fence, and the script returns 0, having changed
nothing, when the lease is not held under that fence.
"""

from __future__ import annotations

from fairbeat.store.lease import DELETE_IF_UNCHANGED, holder_only

__all__ = [
    "ACQUIRE_LEASE",
    "DELETE_IF_UNCHANGED",
    "KICK",
    "RELEASE_LEASE",
    "RENEW_LEASE",
    "SAVE_FAIR_STATE",
    "SET_IF_HOLDER",
    "WRITE_LADDER",
]


# KEYS[1] lock, KEYS[2] fence counter; ARGV[1] lease in ms, ARGV[2] fence floor.
# Takes the lease if free and returns its new fence (> 0); 0 when held. The
# floor (the highest fence the run ledger has seen) keeps fences rising even
# when Redis lost its counter.
ACQUIRE_LEASE = """
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

# KEYS[1] kick sequence, KEYS[2] debounce key, KEYS[3] dispatch lock;
# ARGV[1] debounce in ms. Bumps the sequence; 1 when the caller should send
# dispatch messages: no run holds the lease (a holder re-reads the sequence
# after each tick, and on release sends a run for any kick it has not seen)
# and none went out within the debounce.
KICK = """
redis.call('INCR', KEYS[1])
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if redis.call('SET', KEYS[2], 1, 'NX', 'PX', ARGV[1]) then return 1 end
return 0
"""

# KEYS[1] lock; ARGV[1] fence, ARGV[2] lease in ms. 1 if extended, 0 if lost.
RENEW_LEASE = holder_only("return redis.call('PEXPIRE', KEYS[1], ARGV[2])")

# KEYS[1] lock; ARGV[1] fence. Releases only the holder's own lease; 1 or 0.
RELEASE_LEASE = DELETE_IF_UNCHANGED

# KEYS[1] lock, KEYS[2] deficits hash, KEYS[3] cursor; ARGV[1] fence,
# ARGV[2] cursor JSON, ARGV[3..] workspace, deficit pairs.
# Replaces the fair-share state, so a superseded dispatcher cannot write over
# its successor's. 1 written, 0 not.
SAVE_FAIR_STATE = holder_only(
    """redis.call('DEL', KEYS[2])
if #ARGV > 2 then redis.call('HSET', KEYS[2], unpack(ARGV, 3)) end
redis.call('SET', KEYS[3], ARGV[2])
return 1
"""
)

# KEYS[1] lock, KEYS[2] the key to set; ARGV[1] fence, ARGV[2] value. 1 or 0.
SET_IF_HOLDER = holder_only("redis.call('SET', KEYS[2], ARGV[2])\nreturn 1")

# DELETE_IF_UNCHANGED (store/lease.py): KEYS[1] key; ARGV[1] value. Deletes the
# key only if it still holds that value (a one-shot setting not replaced since).

# KEYS[1] gate window marker, KEYS[2] ladder quota hash, KEYS[3] gate state hash;
# ARGV[1] window; ARGV[2..] triples: workspace, quota ('' removes it from the
# ladder: back to its tier base), gate state JSON.
# Writes all of it, or nothing when this window (or a later one) was written
# already: a gate run repeated for one window changes nothing. 1 written, 0 not.
WRITE_LADDER = """
local last = redis.call('GET', KEYS[1])
if last and last >= ARGV[1] then return 0 end
for i = 2, #ARGV, 3 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[2], ARGV[i])
  else
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 2])
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""

# KEYS[1] run-time estimates hash; ARGV[1] alpha, ARGV[2] seconds one finished
# job took, ARGV[3..] the fields it updates (its workspace, and workspace+kind).
# Atomic, so two workers finishing at once both count. Returns 1.
UPDATE_RUN_TIME = """
local sample = tonumber(ARGV[2])
for i = 3, #ARGV do
  local old = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  local new = sample
  if old then new = old + tonumber(ARGV[1]) * (sample - old) end
  redis.call('HSET', KEYS[1], ARGV[i], tostring(new))
end
return 1
"""
