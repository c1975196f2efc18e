"""Running the transform as a Structured Streaming query: Kafka source -> transform() -> foreachBatch sink.

* :func:`start_stream` / :func:`start_query`: the query over a Kafka topic (or
  any streaming DataFrame with a ``value`` column), availableNow or a
  processingTime trigger, checkpointed;
* :func:`run_available_now` and :func:`await_query`: drain the topic and stop;
* :func:`await_caught_up`: for a query started before ingest, wait until it
  has finished a micro-batch at the topic's end offsets, then stop it.

The expressions themselves (parse and validate) are in pipeline/transform.py.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from pipeline_props.errors import PipelineStageError, UsageError
from pipeline_props.pipeline import transform as expressions
from pipeline_props.pipeline.transform import STAGE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransformStats:
    """What one run of the transform did: input rows, micro-batches, wall time."""

    rows: int
    batches: int
    seconds: float


#: Options of every Kafka source here. The executor's consumer reads a batch's
#: offset range and then polls once more; with the client's default
#: fetch.max.wait.ms (500) that last poll held each small micro-batch for half
#: a second (measured: 0.6 s of a 0.65 s addBatch on 12 rows). A fetch with
#: data still returns as soon as it has data, so large batches are unaffected.
#: A large batch reads in 16 MB fetches per partition rather than the client's
#: 1 MB (200k messages: 1.3 s -> 0.4-0.8 s of Kafka read, lz4 batches).
KAFKA_SOURCE_OPTIONS: dict[str, str] = {"kafka.fetch.max.wait.ms": "10",
                                        "kafka.max.partition.fetch.bytes": str(16 << 20)}


def start_stream(
    spark: SparkSession,
    *,
    bootstrap_servers: str,
    topic: str,
    checkpoint_dir: str,
    sink: Callable[[DataFrame, int], None],
    trigger: Literal["available_now", "processing_time"] = "available_now",
    processing_time: str = "1 second",
    starting_offsets: str = "earliest",
    max_offsets_per_trigger: int | None = None,
    query_name: str | None = None,
) -> StreamingQuery:
    """Start the streaming query: Kafka topic -> transform -> ``sink`` per micro-batch.

    ``sink`` is called through foreachBatch (normally a
    :class:`pipeline_props.pipeline.staging.StagingSink`); progress is kept in
    ``checkpoint_dir``, so a restarted query replays only uncommitted batches.
    """
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap_servers)
        .option("subscribe", topic)
        .option("startingOffsets", starting_offsets)
    )
    if max_offsets_per_trigger is not None:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    for key, value in KAFKA_SOURCE_OPTIONS.items():
        reader = reader.option(key, value)
    return start_query(
        reader.load(),
        checkpoint_dir=checkpoint_dir,
        sink=sink,
        trigger=trigger,
        processing_time=processing_time,
        query_name=query_name,
    )


def start_query(
    messages: DataFrame,
    *,
    checkpoint_dir: str,
    sink: Callable[[DataFrame, int], None],
    trigger: Literal["available_now", "processing_time"] = "available_now",
    processing_time: str = "1 second",
    query_name: str | None = None,
) -> StreamingQuery:
    """Like :func:`start_stream` over any streaming DataFrame with a ``value`` column.

    Used by start_stream (Kafka) and by tests with a file source.
    """
    expressions.ensure_utc(messages.sparkSession)
    if trigger not in ("available_now", "processing_time"):
        raise UsageError(f"trigger must be 'available_now' or 'processing_time', not {trigger!r}")
    # Through the module, so that a test's monkeypatched expression is the one that runs.
    writer = expressions.transform(messages).writeStream.foreachBatch(sink).option("checkpointLocation", checkpoint_dir)
    if trigger == "available_now":
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=processing_time)
    if query_name:
        writer = writer.queryName(query_name)
    try:
        return writer.start()
    except Exception as exc:  # noqa: BLE001 - re-raised as our error with the cause
        raise PipelineStageError(STAGE, f"could not start the streaming query: {exc}") from exc


def _progress_stats(query: StreamingQuery) -> tuple[int, int]:
    rows_by_batch: dict[int, int] = {}
    for p in query.recentProgress:
        rows_by_batch[int(p.batchId)] = int(p.numInputRows)
    return sum(rows_by_batch.values()), len(rows_by_batch)


def await_query(query: StreamingQuery, started: float | None = None) -> TransformStats:
    """Wait for a query to end; PipelineStageError if it failed."""
    t0 = time.monotonic() if started is None else started
    try:
        query.awaitTermination()
    except Exception as exc:  # noqa: BLE001 - StreamingQueryException and py4j errors
        raise PipelineStageError(STAGE, f"streaming query failed: {_short(exc)}") from exc
    return _finished(query, t0)


def _finished(query: StreamingQuery, started: float) -> TransformStats:
    """The stats of a query that has ended; PipelineStageError when it ended with an error."""
    failure = query.exception()
    if failure is not None:
        raise PipelineStageError(STAGE, f"streaming query failed: {_short(failure)}")
    rows, batches = _progress_stats(query)
    stats = TransformStats(rows=rows, batches=batches, seconds=time.monotonic() - started)
    log.info("transform done: %d rows in %d batches, %.1f s", stats.rows, stats.batches, stats.seconds)
    return stats


def run_available_now(
    spark: SparkSession,
    *,
    bootstrap_servers: str,
    topic: str,
    checkpoint_dir: str,
    sink: Callable[[DataFrame, int], None],
    starting_offsets: str = "earliest",
    max_offsets_per_trigger: int | None = None,
    query_name: str | None = None,
) -> TransformStats:
    """Process everything in the topic now (availableNow trigger) and return stats.

    rows and batches come from the query's progress reports (rows read from
    Kafka, micro-batches run by this query, replays included).
    """
    _keep_progress(spark)
    t0 = time.monotonic()
    query = start_stream(
        spark,
        bootstrap_servers=bootstrap_servers,
        topic=topic,
        checkpoint_dir=checkpoint_dir,
        sink=sink,
        trigger="available_now",
        starting_offsets=starting_offsets,
        max_offsets_per_trigger=max_offsets_per_trigger,
        query_name=query_name,
    )
    return await_query(query, t0)


def await_caught_up(query: StreamingQuery, topic: str, targets: Mapping[int, int], *, started: float,
                    timeout: float = 600.0, poll_s: float = 0.05) -> TransformStats:
    """Wait until ``query`` has finished a micro-batch ending at ``targets`` (partition -> end offset of
    ``topic``), then stop it and return its stats.

    For a query started before ingest (processingTime trigger), so that the
    transform consumes while ingest produces. Raises PipelineStageError when
    the query fails or ``timeout`` passes first; the query is stopped either way.
    """
    deadline = time.monotonic() + timeout
    reached: dict[int, int] = {}
    try:
        while True:
            if not query.isActive:
                failure = query.exception()
                raise PipelineStageError(STAGE, "streaming query stopped before it caught up"
                                         + (f": {_short(failure)}" if failure is not None else ""))
            progress = query.lastProgress
            if progress is not None and progress.sources:
                ends = progress.sources[0].endOffset
                ends = json.loads(ends) if isinstance(ends, str) else (ends or {})
                reached = {int(p): int(o) for p, o in (ends.get(topic) or {}).items()}
            if all(reached.get(p, 0) >= end for p, end in targets.items() if end > 0):
                break
            if time.monotonic() > deadline:
                raise PipelineStageError(
                    STAGE, f"the streaming query did not catch up within {timeout:g} s (reached, wanted per "
                    f"partition: { {p: (reached.get(p, 0), end) for p, end in targets.items()} })",
                    hint="see the Spark log; `pipeline-props services status`")
            time.sleep(poll_s)
    finally:
        query.stop()
    return _finished(query, started)


def _keep_progress(spark: SparkSession, at_least: int = 100_000) -> None:
    # recentProgress keeps only the last N reports (default 100); stats need all.
    key = "spark.sql.streaming.numRecentProgressUpdates"
    if int(spark.conf.get(key, "100") or 100) < at_least:
        spark.conf.set(key, str(at_least))


def _short(exc: BaseException, limit: int = 2000) -> str:
    text = str(exc).strip()
    return text if len(text) <= limit else text[:limit] + " ..."
