"""The one Lua check behind every write made for a lease holder.

A Redis script that acts for the dispatch lease (renew it, release it, save
the fair-share state, set the autoscale state) first checks that KEYS[1]
still holds the caller's fence, ARGV[1], and otherwise returns 0 without
touching anything. That check is written here once; each script is its body.
"""

from __future__ import annotations

HOLDER_CHECK = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"


def holder_only(body: str) -> str:
    """A Lua script running ``body`` only while KEYS[1] holds ARGV[1]; 0 otherwise."""
    return HOLDER_CHECK + body.strip() + "\n"


# KEYS[1] key; ARGV[1] value. Deletes the key only if it still holds that value
# (a lease its holder gives back, or a one-shot setting not replaced since).
DELETE_IF_UNCHANGED = holder_only("return redis.call('DEL', KEYS[1])")
