"""Counters bench.profile puts in each process it measures, written where the driver reads them.

Installed at interpreter start by bench/profile_site/sitecustomize.py, only
in the processes of a profile run (it puts that folder on their PYTHONPATH
and sets FAIRBEAT_PROBE_DIR). What is counted, at the client library, so
that each process's share is known:

- SQL round trips, from psycopg: every statement executed, and the BEGIN,
  COMMIT and ROLLBACK that psycopg sends on a connection not in autocommit
  (judged by the connection's transaction status, so a commit of an idle
  connection, which sends nothing, is not counted); new connections apart.
- Redis commands and round trips, from redis-py's connection: a command sent
  alone is one round trip; a pipeline is one round trip of many commands.
  Kept per server port, so the benchmark's own results server is told apart.
- Broker messages published, from kombu's virtual channel (the Redis
  transport), by exchange and routing key.
- In a Celery process, each count is kept under the task running when it
  happened ("-" between tasks), and the wall time spent in each task name.

Every PERIOD_S a thread writes the counts to ``<dir>/<pid>.json``; the driver
takes the difference between two readings. A forked child (a prefork pool
process) starts from zero and writes its own file.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

PERIOD_S = 1.0  # often enough for readings seconds apart; cheap in CPU
IDLE_TASK = "-"
_VERB = re.compile(r"\s*(\w+)")
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.I)


def statement_kind(sql: str) -> str:
    """``SELECT job``, ``UPDATE job``: the verb and the first table named, for grouping."""
    verb = _VERB.match(sql)
    if not verb:
        return "?"
    table = _TABLE.search(sql)
    return f"{verb.group(1).upper()} {table.group(1)}" if table else verb.group(1).upper()


class Probe:
    """The counts of one process; every method may be called from any thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.task = IDLE_TASK
        self.task_started = 0.0
        self.forked = False
        self.reset()

    def reset(self) -> None:
        families = (
            "sql",
            "sql_transactions",
            "redis_commands",
            "redis_round_trips",
            "broker",
            "task_s",
            "tasks",
        )
        self.counts: dict[str, defaultdict[str, float]] = {
            family: defaultdict(float) for family in families
        }

    def add(self, family: str, key: str, n: float = 1) -> None:
        with self.lock:
            self.counts[family][f"{self.task}|{key}"] += n

    def task_begins(self, name: str) -> None:
        with self.lock:
            self.task, self.task_started = name, time.monotonic()
            self.counts["tasks"][name] += 1

    def task_ends(self) -> None:
        with self.lock:
            self.counts["task_s"][self.task] += time.monotonic() - self.task_started
            self.task = IDLE_TASK

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            counts = {family: dict(counter) for family, counter in self.counts.items()}
            if self.task != IDLE_TASK:  # the running task's time so far
                running = time.monotonic() - self.task_started
                counts["task_s"][self.task] = counts["task_s"].get(self.task, 0.0) + running
        return {
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "argv": sys.argv,
            "forked": self.forked,
            "monotonic": time.monotonic(),
            "counts": counts,
        }

    def write(self) -> None:
        path = self.folder / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        os.replace(tmp, path)

    def start_writer(self) -> None:
        def loop() -> None:
            while True:
                time.sleep(PERIOD_S)
                self.write()

        threading.Thread(target=loop, name="fairbeat-probe", daemon=True).start()

    def after_fork(self) -> None:
        self.lock = threading.Lock()
        self.forked = True
        self.task = IDLE_TASK
        self.reset()
        self.start_writer()


def message_kind(exchange: str, routing_key: str) -> str:
    """``exchange/routing key`` of a published message; replies (one key each) grouped."""
    if exchange == "reply.celery.pidbox":
        return exchange
    return f"{exchange or '(default)'}/{routing_key}"


def _query_text(query: Any) -> str:
    if isinstance(query, bytes):
        return query.decode(errors="replace")
    return query if isinstance(query, str) else "(composed)"


def _psycopg_sends(conn: Any, sql: str) -> bool:
    """Whether ``sql`` (BEGIN, or COMMIT/ROLLBACK) reaches the server on ``conn``."""
    from psycopg.pq import TransactionStatus

    idle = conn.info.transaction_status == TransactionStatus.IDLE
    return not conn.autocommit and (idle if sql == "BEGIN" else not idle)


def _wrap_psycopg_cursor(probe: Probe) -> None:
    import psycopg

    execute, executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany

    def count(conn: Any, kind: str) -> None:
        if "pg_stat" in kind:
            return  # the profile reading PostgreSQL's statistics, not the code it measures
        # A server transaction: one BEGIN, or each statement in autocommit.
        if conn.autocommit:
            probe.add("sql_transactions", "autocommit")
        elif _psycopg_sends(conn, "BEGIN"):
            probe.add("sql", "BEGIN")
            probe.add("sql_transactions", "begin")
        probe.add("sql", kind)

    def counted_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        count(self.connection, statement_kind(_query_text(query)))
        return execute(self, query, *args, **kwargs)

    def counted_executemany(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        count(self.connection, statement_kind(_query_text(query)) + " (many)")
        return executemany(self, query, *args, **kwargs)

    setattr(psycopg.Cursor, "execute", counted_execute)  # noqa: B010  # patched on purpose
    setattr(psycopg.Cursor, "executemany", counted_executemany)  # noqa: B010


def _wrap_psycopg_connection(probe: Probe) -> None:
    import psycopg

    commit, rollback = psycopg.Connection.commit, psycopg.Connection.rollback
    connect = vars(psycopg.Connection)["connect"].__func__  # the classmethod's function

    def counted_commit(self: Any) -> None:
        if _psycopg_sends(self, "COMMIT"):
            probe.add("sql", "COMMIT")
        commit(self)

    def counted_rollback(self: Any) -> None:
        if _psycopg_sends(self, "ROLLBACK"):
            probe.add("sql", "ROLLBACK")
        rollback(self)

    def counted_connect(cls: Any, *args: Any, **kwargs: Any) -> Any:
        probe.add("sql", "(new connection)")
        return connect(cls, *args, **kwargs)

    setattr(psycopg.Connection, "commit", counted_commit)  # noqa: B010
    setattr(psycopg.Connection, "rollback", counted_rollback)  # noqa: B010
    setattr(psycopg.Connection, "connect", classmethod(counted_connect))  # noqa: B010


def _wrap_redis(probe: Probe) -> None:
    from redis.connection import AbstractConnection

    # redis-py leaves these untyped.
    send: Any = AbstractConnection.send_command
    pack: Any = AbstractConnection.pack_commands

    def name(args: Any) -> str:
        first = args[0] if args else "?"
        return (first.decode() if isinstance(first, bytes) else str(first)).upper()

    def counted_send(self: Any, *args: Any, **kwargs: Any) -> None:
        port = str(getattr(self, "port", "?"))
        probe.add("redis_commands", f"{port}|{name(args)}")
        probe.add("redis_round_trips", port)
        send(self, *args, **kwargs)

    def counted_pack(self: Any, commands: Any) -> Any:
        commands = list(commands)
        port = str(getattr(self, "port", "?"))
        for args in commands:
            probe.add("redis_commands", f"{port}|{name(args)}")
        probe.add("redis_round_trips", port)
        return pack(self, commands)

    setattr(AbstractConnection, "send_command", counted_send)  # noqa: B010
    setattr(AbstractConnection, "pack_commands", counted_pack)  # noqa: B010


def _wrap_kombu(probe: Probe) -> None:
    from kombu.transport.virtual import base

    publish = base.Channel.basic_publish

    def counted_publish(self: Any, message: Any, exchange: str, routing_key: str, **kw: Any) -> Any:
        probe.add("broker", message_kind(exchange, routing_key))
        return publish(self, message, exchange, routing_key, **kw)

    setattr(base.Channel, "basic_publish", counted_publish)  # noqa: B010


def _hook_celery(probe: Probe) -> None:
    from celery import signals

    def begins(sender: Any = None, **_: Any) -> None:
        probe.task_begins(str(getattr(sender, "name", sender)))

    def ends(**_: Any) -> None:
        probe.task_ends()

    signals.task_prerun.connect(begins, weak=False)
    signals.task_postrun.connect(ends, weak=False)


def install(folder: Path) -> Probe:
    """Count in this process (and in the children it forks) from now on."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = Probe(folder)
    _wrap_psycopg_cursor(probe)
    _wrap_psycopg_connection(probe)
    _wrap_redis(probe)
    _wrap_kombu(probe)
    _hook_celery(probe)
    os.register_at_fork(after_in_child=probe.after_fork)
    probe.start_writer()
    return probe


def install_from_env() -> None:
    """``install`` into FAIRBEAT_PROBE_DIR, if it is set (the profile run's children)."""
    folder = os.environ.get("FAIRBEAT_PROBE_DIR")
    if folder:
        install(Path(folder))
