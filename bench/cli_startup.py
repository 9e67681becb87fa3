"""Wall time of ``fairbeat --help``, the command line's start-up, over N runs.

python -m bench.cli_startup --runs 20 --json
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from typing import Any

from fairbeat.scheduling.stats import percentile


def measure(runs: int, args: list[str]) -> dict[str, Any]:
    command = shutil.which("fairbeat")
    if command is None:
        raise SystemExit("no fairbeat command on PATH: pip install -e .")
    times, cpu = [], []
    for _ in range(runs):
        before = _children_cpu_s()
        started = time.perf_counter()
        subprocess.run([command, *args], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
        cpu.append(_children_cpu_s() - before)
    return {
        "command": " ".join(["fairbeat", *args]),
        "runs": runs,
        "min_s": round(min(times), 3),
        "median_s": round(percentile(times, 0.5) or 0.0, 3),
        "p95_s": round(percentile(times, 0.95) or 0.0, 3),
        "max_s": round(max(times), 3),
        # CPU time (user + system) depends less on other load than wall time.
        "cpu_median_s": round(percentile(cpu, 0.5) or 0.0, 3),
    }


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="(the output is always JSON)")
    parser.add_argument("args", nargs="*", default=["--help"])
    options = parser.parse_args()
    sys.stdout.write(json.dumps(measure(options.runs, options.args), indent=2) + "\n")


if __name__ == "__main__":
    main()
