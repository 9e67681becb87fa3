"""How the ``fairbeat`` command reports a failure: one line naming what is wrong
and what to do, a non-zero exit, and the traceback only with ``--debug`` or
``FAIRBEAT_DEBUG=1``.

Every command raises; :func:`run` is the one place that turns an exception
into that line. Library types are recognised through ``sys.modules``, so the
command line never imports SQLAlchemy, Redis or kombu just to say that an
error did not come from them.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

# sysexits' EX_TEMPFAIL: the request was fine, try again later.
EXIT_TEMPFAIL = 75
EXIT_USAGE = 2
EXIT_FAILURE = 1
DEBUG_ENV = "FAIRBEAT_DEBUG"
DEBUG_HINT = "rerun with --debug for the traceback"
_TRUE = {"1", "true", "yes", "on"}


class CliError(Exception):
    """A refusal the command line reports as one line, exiting with ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class Debug:
    """Whether to show tracebacks: the global ``--debug`` option sets it."""

    enabled = False


def debug_enabled() -> bool:
    return Debug.enabled or os.environ.get(DEBUG_ENV, "").strip().lower() in _TRUE


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def _instance(exc: BaseException, module: str, name: str) -> bool:
    """``isinstance(exc, module.name)`` without importing ``module``."""
    loaded = sys.modules.get(module)
    kind = getattr(loaded, name, None) if loaded is not None else None
    return isinstance(kind, type) and isinstance(exc, kind)


def _settings_value(field: str) -> str:
    from fairbeat.tasks.settings import SettingsError, load_settings

    try:
        value = str(getattr(load_settings(), field))
    except SettingsError:
        return "?"
    from fairbeat.tasks.redact import mask_url

    return mask_url(value)


def _database(exc: BaseException) -> tuple[str, int]:
    url = _settings_value("database_url")
    text = _masked(one_line(str(getattr(exc, "orig", exc))))
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        return (
            f"the database at {url} has no fairbeat schema (never migrated): "
            "run `fairbeat migrate` (FAIRBEAT_DATABASE_URL)",
            EXIT_FAILURE,
        )
    return f"cannot reach the database at {url} (FAIRBEAT_DATABASE_URL): {text}", EXIT_FAILURE


def _redis(exc: BaseException) -> tuple[str, int]:
    url = _settings_value("redis_url")
    detail = _masked(one_line(str(exc)))
    return f"cannot reach Redis at {url} (FAIRBEAT_REDIS_URL): {detail}", EXIT_FAILURE


def _masked(text: str) -> str:
    from fairbeat.tasks.redact import mask_urls

    return mask_urls(text)


def _broker(exc: BaseException) -> tuple[str, int]:
    return (
        f"cannot reach the broker (FAIRBEAT_BROKER_URL, else FAIRBEAT_REDIS_URL): "
        f"{_masked(one_line(str(exc)))}",
        EXIT_FAILURE,
    )


def _own(exc: BaseException) -> tuple[str, int] | None:
    """fairbeat's own refusals: their message already names what is wrong."""
    if isinstance(exc, CliError):
        return one_line(str(exc)), exc.code
    if _instance(exc, "fairbeat.tasks.errors", "WorkspaceBacklogFull"):
        return one_line(str(exc)), EXIT_TEMPFAIL
    if _instance(exc, "fairbeat.tasks.errors", "EnqueueError"):
        return one_line(str(exc)), EXIT_USAGE
    if _instance(exc, "fairbeat.tasks.settings", "SettingsError"):
        return one_line(str(exc)), EXIT_USAGE
    if _instance(exc, "fairbeat.up", "UpError"):
        # The one message allowed several lines: it may end with a child's log.
        return str(exc), EXIT_FAILURE
    return None


_SERVICES: tuple[tuple[str, str, Callable[[BaseException], tuple[str, int]]], ...] = (
    ("sqlalchemy.exc", "OperationalError", _database),
    ("sqlalchemy.exc", "ProgrammingError", _database),
    ("redis.exceptions", "ConnectionError", _redis),
    ("redis.exceptions", "TimeoutError", _redis),
    ("kombu.exceptions", "OperationalError", _broker),
)


def explain(exc: BaseException) -> tuple[str, int]:
    """The line to print for ``exc``, and the exit code."""
    own = _own(exc)
    if own is not None:
        return own
    for module, name, describe in _SERVICES:
        if _instance(exc, module, name):
            return describe(exc)
    return f"unexpected {type(exc).__name__}: {one_line(str(exc))} ({DEBUG_HINT})", EXIT_FAILURE


def report(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")


def _click_error(exc: BaseException) -> bool:
    # Typer vendors click, so its exception classes are private; every one of
    # them (usage errors included) answers to click's ClickException interface.
    return hasattr(exc, "exit_code") and hasattr(exc, "format_message")


def run_typer(app: Any) -> None:
    """Run a Typer app with :func:`run`, so that what click refuses itself (a
    missing option, a value that is not a number) is one line too."""
    import typer
    import typer.main

    command = typer.main.get_command(app)

    def invoke() -> None:
        try:
            code = command.main(standalone_mode=False)
        except typer.Abort:
            raise KeyboardInterrupt from None
        except Exception as exc:
            if not _click_error(exc):
                raise
            if type(exc).__name__ == "NoArgsIsHelpError":
                sys.stdout.write(str(exc.format_message()) + "\n")  # type: ignore[attr-defined]
                sys.exit(int(exc.exit_code))  # type: ignore[attr-defined]
            ctx = getattr(exc, "ctx", None)
            where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            message = one_line(str(exc.format_message()))  # type: ignore[attr-defined]
            raise CliError(message + where, int(exc.exit_code)) from None  # type: ignore[attr-defined]
        if isinstance(code, int) and code:
            sys.exit(code)

    run(invoke)


def run(command: Callable[[], Any]) -> None:
    """Run ``command``; on an exception print one line (with ``--debug``: the
    traceback first) and exit non-zero."""
    try:
        command()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        message, code = explain(exc)
        if debug_enabled():
            traceback.print_exception(exc)
        report(message)
        sys.exit(code)
