"""A Spark driver in a process of its own, for faults where the driver must really die.

The test session shares one SparkSession, which a fault must not kill. Faults
that end the driver itself run the transform in a separate pyspark process
(its own driver JVM) on the harness' topic, checkpoint and staging schema:

* ``kill_at="before_write"`` / ``"after_write"``: the process group (the
  Python driver and its JVM) is SIGKILLed while a micro-batch is in flight,
  either before the sink writes or after the warehouse COMMIT and before Spark
  commits the batch to its checkpoint. Nothing runs after the signal: no
  shutdown hook, no ``query.stop()``, no checkpoint write.
* ``ballast_headroom_mb``: the driver's heap is first filled with live
  ballast until that much is free, and an OutOfMemoryError ends the JVM at
  once (``-XX:+ExitOnOutOfMemoryError``): memory pressure.

The recovery is the same for both: the harness reruns the query in the normal
session on the same checkpoint, which replays the batch; the sink's ledger
makes a replay of a committed batch a no-op.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from pipeline_props.errors import InfrastructureError, UsageError

#: Where a separate driver can be killed, and the marker line its sink prints there.
KILL_POINTS: tuple[str, ...] = ("before_write", "after_write")
_MARK = "PP-AT "

_DRIVER = """
import json, sys, time
from pyspark.sql import SparkSession
from pipeline_props.config import load_settings
from pipeline_props.infra.spark import spark_conf
from pipeline_props.pipeline import staging, streaming_query, transform

cfg = json.loads(sys.argv[1])
conf = spark_conf(load_settings().infrastructure)
conf["spark.driver.memory"] = cfg["memory"]
# An OutOfMemoryError ends the driver JVM at once (a loud crash, not a half-dead driver).
conf["spark.driver.extraJavaOptions"] += " -XX:+ExitOnOutOfMemoryError"
builder = SparkSession.builder
for k, v in conf.items():
    builder = builder.config(k, v)
spark = builder.getOrCreate()
ballast = []
if cfg["headroom_mb"] is not None:
    jvm = spark._jvm
    rt = jvm.java.lang.Runtime.getRuntime()

    def free_mb():
        return (rt.maxMemory() - rt.totalMemory() + rt.freeMemory()) >> 20

    jvm.java.lang.System.gc()
    while free_mb() > cfg["headroom_mb"] + 8:  # live heap arrays the driver cannot reclaim
        ballast.append(jvm.java.nio.ByteBuffer.allocate(4 << 20))
    print(f"PP-BALLAST {len(ballast) * 4} MB held, {free_mb()} MB of {rt.maxMemory() >> 20} MB heap free",
          file=sys.stderr, flush=True)


def wait_for_the_signal(where, batch_id):
    print(f"PP-AT {where} batch {batch_id}", file=sys.stderr, flush=True)
    time.sleep(3600)  # the harness SIGKILLs the process group now


inner = staging.StagingSink(cfg["dsn"], cfg["schema"], after_commit=(
    (lambda b: wait_for_the_signal("after_write", b)) if cfg["kill_at"] == "after_write" else None))


def sink(df, batch_id):
    if cfg["kill_at"] == "before_write":
        wait_for_the_signal("before_write", batch_id)
    inner(df, batch_id)


streaming_query.run_available_now(spark, bootstrap_servers=cfg["bootstrap"], topic=cfg["topic"],
                            checkpoint_dir=cfg["checkpoint"], sink=sink)
print(f"PP-DONE {inner.batches_written} batch(es) written", file=sys.stderr, flush=True)
"""


@dataclass
class DriverRun:
    """How a separate driver process ended."""

    returncode: int | None
    seconds: float
    #: where the driver was signalled (the sink's marker, e.g. "after_write batch 0"),
    #: or None when it ended by itself
    killed_at: str | None = None
    #: it neither ended nor reached its kill point in time, and was killed
    timed_out: bool = False
    lines: list[str] = field(default_factory=list)

    def line(self, prefix: str) -> str | None:
        """The first output line starting with ``prefix``."""
        return next((ln for ln in self.lines if ln.startswith(prefix)), None)

    @property
    def why(self) -> str:
        """The line that best says how it ended (an OutOfMemoryError, else the first error)."""
        return (next((ln for ln in self.lines if "OutOfMemoryError" in ln), None)
                or next((ln for ln in self.lines if "Error" in ln or "Exception" in ln), None)
                or (self.lines[-1] if self.lines else "?"))


def run_separate_driver(
    *,
    bootstrap: str,
    topic: str,
    checkpoint: str,
    dsn: str,
    schema: str,
    memory: str = "1g",
    kill_at: str | None = None,
    ballast_headroom_mb: int | None = None,
    timeout_s: float = 600.0,
) -> DriverRun:
    """Run the transform (availableNow) in its own driver process; see the module docstring.

    A driver that neither ends nor reaches its kill point within
    ``timeout_s`` (a network fault it waits out, say) is killed, with
    ``timed_out`` set.
    """
    if kill_at is not None and kill_at not in KILL_POINTS:
        raise UsageError(f"run_separate_driver: kill_at={kill_at!r}; known: {', '.join(KILL_POINTS)}")
    cfg = {"bootstrap": bootstrap, "topic": topic, "checkpoint": checkpoint, "dsn": dsn, "schema": schema,
           "memory": memory, "kill_at": kill_at, "headroom_mb": ballast_headroom_mb}
    t0 = time.monotonic()
    # A session of its own: the Python driver and its JVM form one process group, ours to kill.
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, json.dumps(cfg)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", start_new_session=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for ln in proc.stdout:
            lines.put(ln.strip())
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    run = DriverRun(None, 0.0)
    deadline = t0 + timeout_s
    try:
        while True:
            try:
                ln = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                if run.timed_out:  # killed, and the pipe is still not closed: give up reading
                    break
                _kill_group(proc)
                run.timed_out = True
                deadline = time.monotonic() + 10
                continue
            if ln is None:
                break
            run.lines.append(ln)
            if kill_at and ln.startswith(_MARK + kill_at):
                _kill_group(proc)
                run.killed_at = ln.removeprefix(_MARK)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
        run.returncode = proc.wait(30)
        run.seconds = time.monotonic() - t0
    return run


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the process group of a driver this module started; wait until it is empty."""
    pgid = proc.pid  # start_new_session: the leader's pid is the group id
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    proc.wait(30)  # reap the leader; the JVM, its child, goes to init, which reaps it
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise InfrastructureError("spark", f"the separate driver's process group {pgid} survived SIGKILL for 30 s")


__all__ = ["KILL_POINTS", "DriverRun", "run_separate_driver"]
