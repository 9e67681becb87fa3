"""What an operator sees, with real processes: Flower lists jobs by kind and
workspace behind basic auth."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Fleet, wait_for

pytestmark = pytest.mark.e2e

FLOWER_AUTH = "ops:flower-test-secret"


def enqueue(live: Fleet, *args: str) -> dict[str, Any]:
    result = live.run_cli("enqueue", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def flower(live: Fleet) -> Iterator[str]:
    """A real Flower on the fleet's broker, behind basic auth; its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "fairbeat", "flower", f"--port={port}"]
        + ["--address=127.0.0.1"],
        env={**live.env, "FLOWER_BASIC_AUTH": FLOWER_AUTH},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(base, "/api/workers?refresh=1") is not None, "Flower to answer")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def get(base: str, path: str, auth: str | None = FLOWER_AUTH) -> Any:
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    request = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read()) or None
    except urllib.error.HTTPError:
        raise
    except OSError:
        return None


def test_flower_finds_a_workspace_job_by_its_kind(live: Fleet, flower: str) -> None:
    job = enqueue(live, "flower-ws", "test.send", "--payload", '{"tag": "flower"}')
    job_id = int(job["job_id"])
    live.wait_status(job_id, "SUCCEEDED")

    def listed() -> dict[str, Any] | None:
        tasks = get(flower, "/api/tasks?taskname=test.send") or {}
        for task in tasks.values():
            if f"'job_id': {job_id}," in (task.get("kwargs") or ""):
                return task  # type: ignore[no-any-return]
        return None

    task = wait_for(listed, "Flower to list the job under its kind")
    assert task["name"] == "test.send"
    assert "'workspace': 'flower-ws'" in task["kwargs"] and "'attempt': 1" in task["kwargs"]
    assert "flower-ws" in task["args"]


def test_flower_refuses_a_request_without_credentials(flower: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(flower, "/api/tasks", auth=None)
    assert refused.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as wrong:
        get(flower, "/api/tasks", auth="ops:wrong")
    assert wrong.value.code == 401
