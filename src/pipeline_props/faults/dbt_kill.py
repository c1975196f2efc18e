"""dbt killed mid-run: the incremental models' ``dbt run`` in a process of its own, SIGKILLed between two models.

The test session runs dbt in process, which a fault must not kill. Here
``dbt run`` (incremental mode) runs in a child process (its own session and
process group), and the harness makes sure the kill lands mid-run: before
starting it, the harness takes an ACCESS EXCLUSIVE lock on one model's table
(``gate``, daily_sales by default) in a connection of its own. dbt builds the
models upstream of it (int_staged_rows, int_duplicate_events,
int_accepted_events: each committed in its own transaction), maybe some
models beside it (two threads), and then waits on the lock. The harness sees
the waiting backend, records every model's watermark (which models applied
the new run and which did not), SIGKILLs the process group, releases the
lock and waits until the dead process's Postgres backend is gone: it never
sent COMMIT, so its open transaction is rolled back.

The recovery is the pipeline's next ``model()``: each model applies the runs
its watermark misses (docs/architecture.md, "Incremental marts").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field

import psycopg
from psycopg import sql

from pipeline_props.errors import InfrastructureError, UsageError
from pipeline_props.pipeline import model

__all__ = ["DbtKill", "run_killed_dbt"]

#: The incremental models whose watermark (max(pp_run)) the kill report lists.
MODELS = ("int_staged_rows", "int_duplicate_events", "int_accepted_events", "daily_sales",
          "customer_summary", "product_performance", "rejected_rows", "ingestion_audit")
_PASSWORD_ENV = "PP_DBT_KILL_PASSWORD"

_CHILD = """
import json, os, sys
from pipeline_props.pipeline import model
from pipeline_props.pipeline.compiled_incremental import INCREMENTAL_VARS

cfg = json.loads(sys.argv[1])
target = model.WarehouseTarget(password=os.environ.get(cfg["password_env"], ""), **cfg["target"])
print("PP-DBT started", flush=True)
result = model.run_dbt(target, command="run", dbt_vars=INCREMENTAL_VARS)
print(f"PP-DBT finished success={result.success}", flush=True)
"""


@dataclass
class DbtKill:
    """What a kill left: the run dbt was applying, each model's watermark at the kill, and timings."""

    run: int
    watermarks: dict[str, int | None]
    gate: str
    seconds_to_kill: float
    log: list[str] = field(default_factory=list)

    @property
    def applied(self) -> list[str]:
        """Models that had committed the run when dbt died."""
        return [m for m, w in self.watermarks.items() if w is not None and w >= self.run]

    @property
    def pending(self) -> list[str]:
        """Models whose watermark was behind the run when dbt died: not reached, not committed, or
        committed without a row stamped with the run (a run that touched none of its keys)."""
        return [m for m, w in self.watermarks.items() if w is None or w < self.run]

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "applied": self.applied, "pending": self.pending}


def _watermarks(conn: psycopg.Connection, schema: str, gate: str) -> dict[str, int | None]:
    """max(pp_run) per model; None for a missing table and for the gate (locked, and not applied)."""
    out: dict[str, int | None] = {}
    for name in MODELS:
        table = sql.Identifier(schema, name)
        missing = conn.execute("SELECT to_regclass(%s)", (table.as_string(conn),)).fetchone()[0] is None
        out[name] = None if missing or name == gate else conn.execute(
            sql.SQL("SELECT max(pp_run) FROM {}").format(table)).fetchone()[0]
    return out


def _waiting_on(conn: psycopg.Connection, table: str) -> list[int]:
    """Backends waiting for a lock on ``table`` (a quoted, qualified name)."""
    rows = conn.execute("SELECT pid FROM pg_locks WHERE NOT granted AND relation = to_regclass(%s)",
                        (table,)).fetchall()
    return [int(r[0]) for r in rows]


def run_killed_dbt(dsn: str, target: model.WarehouseTarget, *, gate: str = "daily_sales",
                   timeout_s: float = 180.0) -> DbtKill:
    """Start ``dbt run`` (incremental mode) for ``target`` in a child process and SIGKILL it mid-run.

    The ``gate`` model's table must exist (an incremental run, not the first
    build). Raises InfrastructureError when dbt does not reach the gate within
    ``timeout_s`` (its output is in the message) or its backend outlives it.
    """
    if gate not in MODELS:
        raise UsageError(f"run_killed_dbt: gate={gate!r} must be one of {MODELS}")
    started = time.monotonic()
    watch = psycopg.connect(dsn, autocommit=True)
    lock = psycopg.connect(dsn, autocommit=False)
    proc: subprocess.Popen[str] | None = None
    try:
        table = sql.Identifier(target.schema, gate).as_string(lock)
        if lock.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
            raise UsageError(f"run_killed_dbt: {table} does not exist yet; build the marts once first")
        lock.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(target.schema, gate)))
        cfg = {"target": {k: v for k, v in asdict(target).items() if k != "password"},
               "password_env": _PASSWORD_ENV}
        env = {**os.environ, _PASSWORD_ENV: target.password}
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(cfg)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", start_new_session=True, env=env)
        output: list[str] = []
        threading.Thread(target=lambda: output.extend(line.rstrip() for line in proc.stdout),  # type: ignore[union-attr]
                         daemon=True, name="pp-dbt-kill-output").start()
        blocked: list[int] = []
        while not blocked:
            if proc.poll() is not None:
                raise InfrastructureError("postgres", f"dbt ended (exit {proc.returncode}) before reaching "
                                          f"{gate}: " + " | ".join(output[-15:]))
            if time.monotonic() - started > timeout_s:
                raise InfrastructureError("postgres", f"dbt did not reach {gate} within {timeout_s:.0f} s: "
                                          + " | ".join(output[-15:]))
            blocked = _waiting_on(watch, table)
            time.sleep(0.05)
        watermarks = _watermarks(watch, target.schema, gate)
        run = watch.execute(sql.SQL("SELECT coalesce(max(pp_run), 0) FROM {}").format(
            sql.Identifier(target.schema, "int_staged_rows"))).fetchone()[0]
        _kill_group(proc)
        killed_at = time.monotonic() - started
        lock.rollback()  # the gate opens: the dead process's backend runs on, cannot commit, ends
        deadline = time.monotonic() + 30
        while _alive(watch, blocked):
            if time.monotonic() > deadline:
                raise InfrastructureError("postgres", f"the killed dbt's backend(s) {blocked} still run 30 s "
                                          "after the kill")
            time.sleep(0.1)
        return DbtKill(run=int(run), watermarks=watermarks, gate=gate, seconds_to_kill=round(killed_at, 2),
                       log=output[-20:])
    finally:
        if proc is not None and proc.poll() is None:
            _kill_group(proc)
        lock.close()
        watch.close()


def _alive(conn: psycopg.Connection, pids: list[int]) -> bool:
    return bool(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchone()[0])


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the child's process group (start_new_session: its pid is the group id) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        raise InfrastructureError("postgres", f"the dbt process {proc.pid} did not die within 30 s of SIGKILL") from None
