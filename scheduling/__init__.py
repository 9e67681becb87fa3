"""Pure policy: every decision is a deterministic function of its inputs.

This package imports only the standard library. Nothing here reads a clock,
a database or Redis; callers pass ``now`` and the data in.
"""
