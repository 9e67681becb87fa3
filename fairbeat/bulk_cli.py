"""``fairbeat enqueue --from-file``: a JSON Lines file of jobs for ``enqueue_many``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from fairbeat.cli_errors import EXIT_TEMPFAIL, CliError
from fairbeat.cli_output import console
from fairbeat.cli_support import check_imports, emit_json, runtime


def read_jobs(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """The jobs of a JSON Lines file and each one's line number; blank lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"--from-file {path}: cannot be read: {exc}") from None
    jobs: list[dict[str, Any]] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            jobs.append(_parse(path, number, line))
            lines.append(number)
    if not jobs:
        raise CliError(f"--from-file {path}: holds no jobs (one JSON object per line)")
    return jobs, lines


def _parse(path: Path, number: int, line: str) -> dict[str, Any]:
    where = f"{path} line {number}"
    try:
        spec = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CliError(f"{where}: not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise CliError(f"{where}: must be a JSON object, got {type(spec).__name__}")
    run_at = spec.get("run_at")
    if run_at is not None:
        if not isinstance(run_at, str):
            raise CliError(f"{where}: run_at must be an ISO 8601 time string with a zone")
        try:
            spec["run_at"] = datetime.fromisoformat(run_at)
        except ValueError as exc:
            raise CliError(f"{where}: run_at is not an ISO 8601 time: {exc}") from None
    return spec


def enqueue_file(path: Path | None, workspace: str | None, kind: str | None, as_json: bool) -> None:
    """Enqueue every job of ``path``, all or none; a bad line is named by its number."""
    from fairbeat.tasks.bulk import enqueue_many
    from fairbeat.tasks.errors import EnqueueError, WorkspaceBacklogFull

    if path is None:
        raise CliError("WORKSPACE and KIND are required (or pass --from-file jobs.jsonl)")
    if workspace is not None or kind is not None:
        raise CliError("pass either WORKSPACE KIND or --from-file, not both")
    specs, lines = read_jobs(path)
    check_imports(runtime().settings.imports)
    try:
        done = enqueue_many(specs)
    except EnqueueError as exc:
        line = "" if exc.index is None else f"{path} line {lines[exc.index]}: "
        code = EXIT_TEMPFAIL if isinstance(exc, WorkspaceBacklogFull) else 2
        raise CliError(f"{line}{exc}; nothing was enqueued", code) from None
    created = sum(j.created for j in done)
    if as_json:
        ids = [j.job_id for j in done]
        emit_json({"enqueued": created, "existing": len(done) - created, "job_ids": ids})
    else:
        console.print(f"{created} jobs enqueued, {len(done) - created} already enqueued")
