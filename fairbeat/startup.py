"""``fairbeat up`` while its children start: a live table of what it waits for,
and a child that dies named with the end of its log."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from fairbeat.up import UpError

# A loaded two-core machine can take a minute to start a Celery worker.
START_DEADLINE_S = 180.0
LOG_TAIL_LINES = 15
POLL_S = 0.5


@dataclass
class Child:
    name: str  # worker, beat, flower
    proc: subprocess.Popen[bytes]
    log: Path
    ready: Callable[[], bool]
    waiting_for: str
    up: bool = False

    def state(self) -> str:
        code = self.proc.poll()
        if code is not None:
            return f"[red]exited with code {code}[/red]"
        return "[green]up[/green]" if self.up else f"starting: waiting for {self.waiting_for}"


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "  (no log)"
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(f"  {line}" for line in tail) or "  (its log is empty)"


def died(child: Child) -> UpError:
    return UpError(
        f"{child.name} (pid {child.proc.pid}) exited with code {child.proc.poll()}; "
        f"the end of its log {child.log}:\n{log_tail(child.log)}"
    )


def port_answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def port_taken(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _table(children: list[Child]) -> Table:
    table = Table("process", "pid", "state", title="fairbeat up: starting")
    for child in children:
        table.add_row(child.name, str(child.proc.pid), child.state())
    return table


def _check(children: list[Child], deadline: float) -> None:
    for child in children:
        if child.proc.poll() is not None:
            raise died(child)
        child.up = child.up or child.ready()
    if time.monotonic() > deadline and not all(c.up for c in children):
        late = next(c for c in children if not c.up)
        raise UpError(
            f"{late.name} (pid {late.proc.pid}) did not start within "
            f"{START_DEADLINE_S:.0f} s; the end of its log {late.log}:\n{log_tail(late.log)}"
        )


def wait_started(children: list[Child], console: Console) -> None:
    """Return once every child is ready; raise UpError naming a child that died
    or did not become ready by the deadline. A terminal sees a live table; a
    log or a pipe, one line per child as it comes up."""
    deadline = time.monotonic() + START_DEADLINE_S
    if not console.is_terminal:
        for child in children:
            console.print(f"{child.name} pid {child.proc.pid}: waiting for {child.waiting_for}")
        while not all(c.up for c in children):
            time.sleep(POLL_S)
            _check(children, deadline)
        return
    with Live(_table(children), console=console, auto_refresh=False, transient=True) as live:
        try:
            while not all(c.up for c in children):
                _check(children, deadline)
                live.update(_table(children), refresh=True)
                time.sleep(POLL_S)
        finally:
            live.update(_table(children), refresh=True)
    console.print(_table(children))
