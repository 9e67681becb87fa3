"""What the ``fairbeat`` commands share: the app and runtime, checks of
command-line values, and output. Heavy modules load inside the functions, so
``fairbeat --help`` imports none of them."""

from __future__ import annotations

import functools
import importlib
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fairbeat.cli_errors import EXIT_FAILURE, CliError, one_line

if TYPE_CHECKING:
    from celery import Celery

    from fairbeat.scheduling.jobstate import JobStatus
    from fairbeat.tasks.runtime import Runtime

# The job id column is a signed 64-bit integer.
JOB_ID_MAX = 2**63 - 1
WORKSPACE_ID_MAX = 128  # as fairbeat.store.models, which the CLI does not import to start


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def app() -> Celery:
    """This process's app; a bad ``FAIRBEAT_*`` setting raises SettingsError."""
    from fairbeat.tasks.application import default_app

    return default_app()


@functools.cache
def _runtime() -> Runtime:
    # Settings, engine and Redis only: reading the store needs no Celery app,
    # and building one would double the command's start-up.
    from fairbeat.tasks.runtime import Runtime
    from fairbeat.tasks.settings import load_settings

    return Runtime(load_settings())


def runtime(*, schema: bool = True) -> Runtime:
    """The runtime; with ``schema``, refuse a SQLite file that does not exist,
    rather than let the first connection create it empty."""
    from fairbeat.store.db import missing_sqlite_file

    rt = _runtime()
    missing = missing_sqlite_file(rt.settings.database_url) if schema else None
    if missing is not None:
        raise CliError(
            f"no database at {missing} (FAIRBEAT_DATABASE_URL): run `fairbeat migrate` first",
            EXIT_FAILURE,
        )
    return rt


def check_imports(names: list[str]) -> None:
    """Import each FAIRBEAT_IMPORTS module here, so a bad one is one line now,
    not a traceback in a worker later."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise CliError(
                f"FAIRBEAT_IMPORTS names {name!r}, which does not import: "
                f"{type(exc).__name__}: {one_line(str(exc))}"
            ) from exc


def parse_time(value: str, option: str) -> datetime:
    """An ISO 8601 time with a zone, for ``option``."""
    example = "e.g. 2026-11-22T14:45:00Z"
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option} {value!r}: not an ISO 8601 time, {example}") from None
    if when.tzinfo is None:
        raise CliError(f"{option} {value!r}: give it a timezone, {example}")
    return when


def check_job_ids(ids: list[int]) -> list[int]:
    wrong = [i for i in ids if not 1 <= i <= JOB_ID_MAX]
    if wrong:
        shown = ", ".join(str(i) for i in wrong[:10])
        raise CliError(f"JOB_IDS out of range (1 to {JOB_ID_MAX}): {shown}")
    return ids


def refuse_unknown(ids: list[int], known: set[int], verb: str) -> None:
    unknown = [i for i in ids if i not in known]
    if unknown:
        shown = ", ".join(str(i) for i in unknown[:20])
        raise CliError(f"no job with id {shown}; nothing was {verb}")


def check_workspace(workspace: str) -> str:
    if not workspace.strip() or len(workspace) > WORKSPACE_ID_MAX:
        raise CliError(f"WORKSPACE must be 1 to {WORKSPACE_ID_MAX} characters, got {workspace!r}")
    return workspace


def parse_status(value: str) -> JobStatus:
    """A job status, in any case: ``failed``, ``FAILED``, ``Failed``."""
    from fairbeat.scheduling.jobstate import JobStatus

    try:
        return JobStatus(value.strip().upper())
    except ValueError:
        known = ", ".join(s.value.lower() for s in JobStatus)
        raise CliError(f"--status {value!r} is not a job status; one of {known}") from None
