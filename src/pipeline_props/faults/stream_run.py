"""One availableNow run of the real transform under the armed faults, in this driver or in a driver process of its own.

A failed run is a :class:`StreamOutcome`, not an exception: a failure under a
fault is the loud, wanted outcome. Only a query that cannot be stopped raises.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_props.errors import PipelineStageError
from pipeline_props.faults.driver import run_separate_driver
from pipeline_props.faults.injector import ErrorInjector, InjectedCrash
from pipeline_props.infra import InfrastructureManager
from pipeline_props.protocol import FaultHooks

#: Spark Kafka-source options that make a dead or hung broker fail a query in seconds.
KAFKA_SOURCE_FAULT_OPTIONS: dict[str, str] = {
    "kafka.request.timeout.ms": "5000",
    "kafka.default.api.timeout.ms": "10000",
    "kafka.socket.connection.setup.timeout.ms": "3000",
    "kafka.reconnect.backoff.max.ms": "1000",
    "fetchOffset.numRetries": "2",
    "fetchOffset.retryIntervalMs": "500",
}

#: Bound on one micro-batch's Postgres write under the harness: past it the sink
#: cuts its connection and the batch fails loudly (StagingSink.write_timeout_s).
SINK_WRITE_TIMEOUT_S = 60.0
#: Bound on query.stop() (spark.sql.streaming.stopTimeout): longer than the sink's
#: write bound, so a callback stuck on Postgres is unstuck by the sink first.
QUERY_STOP_TIMEOUT_S = 90.0


@dataclass
class StreamOutcome:
    """One availableNow run of the streaming query."""

    ok: bool
    seconds: float
    error: str = ""


def fault_sink(pipeline: FaultHooks, injector: ErrorInjector, schema: str,
               stop_requested: threading.Event) -> Callable[[Any, int], None]:
    """The pipeline's sink for ``schema``, wrapped to crash or stop where the injector's armed faults say."""
    inner = pipeline.sink_factory(injector.postgres_dsn, schema)
    if hasattr(inner, "write_timeout_s"):
        inner.write_timeout_s = SINK_WRITE_TIMEOUT_S
    armed = injector.armed

    def sink(df: Any, batch_id: int) -> None:
        if armed.crash_before_write:
            armed.fired.append("spark_crash_before_write")
            raise InjectedCrash(f"injected driver crash in batch {batch_id} before the write")
        if armed.query_stop:
            armed.fired.append("spark_query_stop")
            stop_requested.set()
            time.sleep(3.0)  # the query is stopped while this batch is in flight
        inner(df, batch_id)
        if armed.crash_after_write:
            armed.fired.append("spark_crash_after_write")
            raise InjectedCrash(f"injected driver crash in batch {batch_id} after the warehouse "
                                "commit, before the checkpoint commit")

    return sink


def run_available_now(infra: InfrastructureManager, injector: ErrorInjector, *, topic: str, checkpoint_dir: Path,
                      sink: Callable[[threading.Event], Callable[[Any, int], None]],
                      timeout_s: float, stop_timeout_s: float) -> StreamOutcome:
    """One availableNow run of the real transform over ``topic`` on ``checkpoint_dir``, through the injector's proxy.

    ``sink`` makes the foreachBatch sink from the event it sets to have the
    query stopped mid-batch (see :func:`fault_sink`).
    """
    from pipeline_props.pipeline import streaming_query

    t0 = time.monotonic()
    stop_requested = threading.Event()
    try:
        spark = infra.spark
        streaming_query._keep_progress(spark)
        spark.conf.set("spark.sql.streaming.stopTimeout", f"{int(stop_timeout_s * 1000)}ms")
        reader = (spark.readStream.format("kafka")
                  .option("kafka.bootstrap.servers", injector.kafka_bootstrap)
                  .option("subscribe", topic).option("startingOffsets", "earliest"))
        for k, v in KAFKA_SOURCE_FAULT_OPTIONS.items():
            reader = reader.option(k, v)
        query = streaming_query.start_query(reader.load(), checkpoint_dir=str(checkpoint_dir),
                                      sink=sink(stop_requested), trigger="available_now")
    except Exception as exc:  # noqa: BLE001
        return StreamOutcome(False, time.monotonic() - t0, f"start: {short_error(exc)}")
    deadline = t0 + timeout_s
    try:
        while True:
            if query.awaitTermination(0.5):
                break
            if stop_requested.is_set():
                stop_query(query, stop_timeout_s)
                return StreamOutcome(False, time.monotonic() - t0, "query stopped mid-batch")
            if time.monotonic() > deadline:
                stop_query(query, stop_timeout_s)
                return StreamOutcome(False, time.monotonic() - t0, "timed out; query stopped")
        failure = query.exception()
        if failure is not None:
            return StreamOutcome(False, time.monotonic() - t0, short_error(failure))
    except PipelineStageError:
        raise
    except Exception as exc:  # noqa: BLE001 - StreamingQueryException, py4j errors
        stop_query(query, stop_timeout_s)
        return StreamOutcome(False, time.monotonic() - t0, short_error(exc))
    return StreamOutcome(True, time.monotonic() - t0)


def run_killed_driver(injector: ErrorInjector, *, topic: str, checkpoint_dir: Path, schema: str, kill_at: str,
                      timeout_s: float) -> StreamOutcome:
    """The stream run in a driver process of its own, SIGKILLed at ``kill_at`` (faults/driver.py).

    It writes through the reference StagingSink (a ``sink_factory`` of the
    pipeline is not used in that process).
    """
    run = run_separate_driver(bootstrap=injector.kafka_bootstrap, topic=topic, checkpoint=str(checkpoint_dir),
                              dsn=injector.postgres_dsn, schema=schema, kill_at=kill_at, timeout_s=timeout_s)
    if run.killed_at:
        injector.armed.fired.append(f"spark_driver_kill_{kill_at}")
        return StreamOutcome(False, run.seconds, f"driver process SIGKILLed ({run.killed_at})")
    if run.timed_out:
        return StreamOutcome(False, run.seconds, f"separate driver killed after {run.seconds:.0f} s: {run.why}")
    if run.returncode != 0:
        return StreamOutcome(False, run.seconds, f"separate driver exited {run.returncode}: {run.why}")
    return StreamOutcome(True, run.seconds)


def stop_query(query: Any, within_s: float) -> None:
    """query.stop(), bounded by spark.sql.streaming.stopTimeout; PipelineStageError when it times out."""
    try:
        query.stop()
    except Exception as exc:  # noqa: BLE001 - py4j wraps java.util.concurrent.TimeoutException
        # isActive is already False here (stop() marks the query terminated before it waits)
        if "TimeoutException" in str(exc):
            raise PipelineStageError(
                "spark", f"the streaming query did not stop within {within_s:g} s (its "
                f"foreachBatch callback does not return): {short_error(exc)}") from None


def short_error(exc: BaseException, limit: int = 600) -> str:
    """One line for a report: our own error raised inside foreachBatch if there is one, else the first line."""
    text = [t.strip() for t in str(exc).strip().splitlines()]
    ours = [t for t in text if t.startswith("pipeline_props.")]  # from the Python traceback Spark wraps
    first = next((t for t in text if t), type(exc).__name__)
    return (ours[-1] if ours else first)[:limit]


__all__ = ["KAFKA_SOURCE_FAULT_OPTIONS", "QUERY_STOP_TIMEOUT_S", "SINK_WRITE_TIMEOUT_S", "StreamOutcome",
           "fault_sink", "run_available_now", "run_killed_driver", "short_error", "stop_query"]
