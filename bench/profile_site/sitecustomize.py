"""Python imports this at start when bench.profile puts this folder on PYTHONPATH.

Only the processes of a profile run see it; it installs bench.probe's counters.
"""

from bench import probe

probe.install_from_env()
