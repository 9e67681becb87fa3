"""The shell a test run starts from does not change what the tests see."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import KEPT_PREFIXES, REPO_ROOT


def ambient_settings() -> list[str]:
    return [n for n in os.environ if n.startswith("FAIRBEAT_") and not n.startswith(KEPT_PREFIXES)]


def test_no_fairbeat_setting_of_the_shell_reaches_the_tests() -> None:
    assert ambient_settings() == []


def test_a_run_started_with_settings_in_its_environment_removes_them() -> None:
    env = {
        **os.environ,
        "FAIRBEAT_GLOBAL_CAPACITY": "not a number",
        "FAIRBEAT_REDIS_URL": "redis://127.0.0.1:1/0",
    }
    this = f"{__file__}::test_no_fairbeat_setting_of_the_shell_reaches_the_tests"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", this],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:]
