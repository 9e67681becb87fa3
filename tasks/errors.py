"""Errors users see. Each says what was wrong; nothing was written when one is raised."""

from __future__ import annotations

import difflib


class EnqueueError(ValueError):
    """A job was refused at enqueue; ``field`` names the argument at fault.

    From ``enqueue_many()``, ``index`` is the position of the job at fault.
    """

    index: int | None = None

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class UnknownKind(EnqueueError):
    def __init__(self, kind: str, known: list[str]) -> None:
        # A near miss first: a typo is the usual cause, and the list is cut at ten.
        close = difflib.get_close_matches(kind, known, n=3)
        hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
        ordered = close + [k for k in known if k not in close]
        shown = ", ".join(ordered[:10]) + (", ..." if len(ordered) > 10 else "")
        super().__init__(
            "kind",
            f"no task named {kind!r} is registered ({hint}set FAIRBEAT_IMPORTS to the "
            f"modules that define your handlers); known kinds: {shown or 'none'}",
        )
        self.kind = kind


class WorkspaceBacklogFull(EnqueueError):
    """The workspace has its limit of PENDING jobs; try again after ``retry_after_s``."""

    def __init__(self, workspace_id: str, limit: int, retry_after_s: float) -> None:
        super().__init__(
            "workspace_id",
            f"workspace {workspace_id!r} has {limit} pending jobs, its limit "
            f"(FAIRBEAT_PENDING_LIMIT); retry after {retry_after_s:g} s",
        )
        self.retry_after_s = retry_after_s


class LeaseLost(RuntimeError):
    """This run no longer holds its job: it was recovered and may run elsewhere."""
