"""SharedStream: one long-lived streaming query that serves every namespace, as production runs.

A production pipeline does not start a Spark query per dataset: one query runs
for days and the data of many producers flows through it. The property tests
run the reference pipeline that way, so an example costs a produce, one
micro-batch and a model run instead of a query's start-up (about 3 s):

    topics <prefix>p<N>  (shared; each message's namespace in its NAMESPACE_HEADER)
      -> Spark: transform + the sink's projection, processingTime trigger
      -> RoutingSink: per micro-batch, ONE Postgres transaction that claims the
         batch in the stream ledger (with the offsets it covers), writes each
         namespace's rows to that namespace's staging schema (its batch_ledger
         row included) and files rows of unknown namespaces as unrouted
      -> waiters: ``wait_for(offsets)`` returns once the ledger has committed them

Why a shared topic and not a topic per namespace: Spark's Kafka source fails
the query ("partitions are gone") when a subscribed topic is deleted, and a
subscription that only grows makes every micro-batch plan over every partition
ever created. A namespace is routed by a Kafka header, not a JSON field, so a
message too broken to parse still reaches its namespace's rejected rows.

Replays after a crash are exactly-once as in the one-query-per-dataset path:
the stream ledger row is claimed in the same transaction as the rows, so a
replayed batch is skipped whole, and rows also go in with ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from pipeline_props.errors import PipelineStageError, UsageError
from pipeline_props.pipeline import staging, streaming_query, transform
from pipeline_props.pipeline.messages import NAMESPACE_HEADER
from pipeline_props.pipeline.routing_sink import (
    LEDGER_DDL,
    Offsets,
    RoutingSink,
    SinkState,
)
from pipeline_props.pipeline.watermarks import read_watermarks

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger(__name__)

STAGE = "transform"

@dataclass(frozen=True)
class StreamSettings:
    """How the shared query runs.

    ``trigger`` is the processingTime interval. "0 seconds" starts the next
    micro-batch as soon as the last one ends, but an idle query then asks the
    broker for new offsets every 10 ms (``spark.sql.streaming.pollingDelay``):
    measured idle, 0.41 of a core in the JVM and 0.12 in the broker, taken
    from everything else on a 2-core machine for the whole session; 50 ms
    costs 0.13 and 0.04, and adds 25 ms to a batch's start on average.
    ``wait_timeout_s`` bounds every wait for the ledger; ``write_timeout_s``
    one micro-batch's write.
    """

    trigger: str = "50 milliseconds"
    wait_timeout_s: float = 120.0
    write_timeout_s: float = 120.0
    max_offsets_per_trigger: int | None = None

    def __post_init__(self) -> None:
        if self.wait_timeout_s <= 0:
            raise UsageError(f"StreamSettings: wait_timeout_s={self.wait_timeout_s} must be > 0")
        if self.write_timeout_s <= 0:
            raise UsageError(f"StreamSettings: write_timeout_s={self.write_timeout_s} must be > 0")


class SharedStream:
    """One long-lived streaming query over shared topics, routing rows to namespaces' schemas.

    ``spark``, ``bootstrap_servers`` and ``dsn`` are the services; the query's
    checkpoint lives under ``checkpoint_root``. Call :meth:`start` once,
    :meth:`register` a namespace before sending its data (with the
    :data:`NAMESPACE_HEADER` header, to :meth:`topic`), :meth:`end_offsets`
    after sending it, then :meth:`wait_for` those offsets. :meth:`stop` ends
    the query and drops its topics, ledger schema and checkpoint.
    """

    def __init__(self, spark: SparkSession, *, bootstrap_servers: str, dsn: str, checkpoint_root: Path | str,
                 admin: Any, settings: StreamSettings | None = None, stream_id: str | None = None) -> None:
        self.stream_id = stream_id or uuid.uuid4().hex[:10]
        if not re.fullmatch(r"[a-z0-9]{1,20}", self.stream_id):
            raise UsageError(f"SharedStream: stream_id={self.stream_id!r} must be 1-20 of [a-z0-9]")
        self.spark = spark
        self.bootstrap_servers = bootstrap_servers
        self.dsn = dsn
        self.settings = settings or StreamSettings()
        self.prefix = f"pp_s{self.stream_id}_"
        self.ledger_schema = f"pp_stream_{self.stream_id}"
        self.checkpoint_dir = Path(checkpoint_root) / f"stream_{self.stream_id}"
        self._admin = admin  # an InfrastructureManager-like object: setup/delete_kafka_topics
        self._state = SinkState()
        self._query: StreamingQuery | None = None
        self._topics: dict[int, str] = {}
        self._consumer: Any = None
        self._lock = threading.Lock()
        self.restarts = 0

    @classmethod
    def from_infra(cls, infra: Any, settings: StreamSettings | None = None) -> SharedStream:
        """A stream on an InfrastructureManager's services (checkpoint under its home)."""
        return cls(infra.spark, bootstrap_servers=infra.kafka_bootstrap, dsn=infra.postgres_dsn,
                   checkpoint_root=Path(infra.infra.home) / "checkpoints", admin=infra, settings=settings)

    # -- lifecycle -------------------------------------------------------------
    def topic(self, partitions: int) -> str:
        """The shared topic with ``partitions`` partitions (created on first use)."""
        if partitions < 1:
            raise UsageError(f"SharedStream.topic: partitions={partitions} must be >= 1")
        with self._lock:
            if partitions not in self._topics:
                name = f"{self.prefix}p{partitions}"
                self._admin.setup_kafka_topics(name, partitions=partitions)
                self._topics[partitions] = name
            return self._topics[partitions]

    def start(self) -> SharedStream:
        """Create the ledger, then start the query (idempotent while it runs)."""
        if self._query is not None and self._query.isActive:
            return self
        with staging._connect(self.dsn) as conn:  # noqa: SLF001
            for stmt in LEDGER_DDL:
                conn.execute(stmt.format(schema=sql.Identifier(self.ledger_schema)))
            conn.commit()
            self._load_committed(conn)
        self.topic(2)  # the pattern must match a topic before the query starts
        sink = RoutingSink(self.dsn, self.ledger_schema, self._state, self.settings.write_timeout_s)
        transform.ensure_utc(self.spark)
        reader = (self.spark.readStream.format("kafka")
                  .option("kafka.bootstrap.servers", self.bootstrap_servers)
                  .option("subscribePattern", re.escape(self.prefix) + ".*")
                  .option("startingOffsets", "earliest")
                  .option("includeHeaders", "true"))
        for key, value in streaming_query.KAFKA_SOURCE_OPTIONS.items():
            reader = reader.option(key, value)
        if self.settings.max_offsets_per_trigger is not None:
            reader = reader.option("maxOffsetsPerTrigger", str(self.settings.max_offsets_per_trigger))
        rows = transform.transform(reader.load()).selectExpr(*staging.SINK_PROJECTION, *transform.SOURCE_COLUMNS)
        writer = (rows.writeStream.foreachBatch(sink)
                  .option("checkpointLocation", str(self.checkpoint_dir))
                  .trigger(processingTime=self.settings.trigger)
                  .queryName(f"pp_stream_{self.stream_id}"))
        try:
            self._query = writer.start()
        except Exception as exc:  # noqa: BLE001 - re-raised as our error with the cause
            raise PipelineStageError(STAGE, f"could not start the shared streaming query: {exc}") from exc
        return self

    def restart(self) -> None:
        """Stop the query and start it again on the same checkpoint (uncommitted batches replay)."""
        self._stop_query()
        self.restarts += 1
        self.start()

    def stop(self, *, drop: bool = True) -> None:
        """Stop the query; with ``drop`` also delete its topics, ledger schema and checkpoint."""
        self._stop_query()
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if drop:
            if self._topics:
                self._admin.delete_kafka_topics(list(self._topics.values()))
            staging.drop_schema(self.dsn, self.ledger_schema)
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
            self._topics.clear()

    def pause(self) -> None:
        """Stop the query but keep its topics, ledger and checkpoint; the next
        :meth:`ensure_running` starts it again where it stopped (an idle query
        still polls the broker, so a session pauses it between its users)."""
        self._stop_query()

    def _stop_query(self) -> None:
        query, self._query = self._query, None
        if query is not None:
            try:
                query.stop()
            except Exception as exc:  # noqa: BLE001 - a dead query may fail to stop; it is gone either way
                log.warning("stopping the shared query: %s", exc)

    def _load_committed(self, conn: psycopg.Connection) -> None:
        rows = conn.execute(sql.SQL("SELECT offsets FROM {}.stream_ledger").format(
            sql.Identifier(self.ledger_schema))).fetchall()
        with self._state.cond:
            for (text,) in rows:
                for topic, parts in json.loads(text).items():
                    for part, end in parts.items():
                        key = (topic, int(part))
                        self._state.committed[key] = max(end, self._state.committed.get(key, -1))

    # -- namespaces ------------------------------------------------------------
    def set_after_commit(self, hook: Callable[[int], None] | None) -> None:
        """Tests only: call ``hook(batch_id)`` after each batch's COMMIT (raise there to crash)."""
        with self._state.cond:
            self._state.after_commit = hook

    def register(self, namespace: str, schema: str) -> None:
        """Route ``namespace``'s rows to the staging tables of ``schema`` from now on."""
        with self._state.cond:
            self._state.routes[namespace] = schema

    def unregister(self, namespace: str) -> None:
        """Stop routing ``namespace``: rows that still arrive are filed as unrouted, never written."""
        with self._state.cond:
            self._state.routes.pop(namespace, None)

    @staticmethod
    def message_headers(namespace: str) -> list[tuple[str, bytes]]:
        """The Kafka headers that route a message to ``namespace``."""
        return [(NAMESPACE_HEADER, namespace.encode("utf-8"))]

    # -- progress ---------------------------------------------------------------
    def end_offsets(self, topic: str, timeout: float = 30.0) -> Offsets:
        """The topic's high watermarks now: everything produced so far ends before them."""
        from confluent_kafka import Consumer, KafkaException

        if self._consumer is None:
            self._consumer = Consumer({"bootstrap.servers": self.bootstrap_servers,
                                       "group.id": f"pp-stream-{self.stream_id}",
                                       "enable.auto.commit": False, "log_level": 3})
        try:
            return {(topic, p): high for p, (_, high) in read_watermarks(self._consumer, topic, timeout).items()}
        except KafkaException as exc:
            raise PipelineStageError("ingest", f"cannot read the end offsets of {topic}: {exc}") from exc

    def committed(self) -> Offsets:
        """What the sink's ledger has committed so far."""
        with self._state.cond:
            return dict(self._state.committed)

    def wait_for(self, targets: Offsets, timeout: float | None = None) -> float:
        """Block until the ledger has committed every offset in ``targets``; return the seconds waited.

        Raises PipelineStageError when the query has stopped (with its error) or
        when ``timeout`` (default ``settings.wait_timeout_s``) passes first.
        """
        limit = self.settings.wait_timeout_s if timeout is None else timeout
        started = time.monotonic()
        deadline = started + limit

        def done() -> bool:
            return all(self._state.committed.get(k, 0) >= v for k, v in targets.items() if v > 0)

        with self._state.cond:
            while not done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                # Wake up now and then to notice a query that died without a batch.
                self._state.cond.wait(min(remaining, 0.25))
                if not done():
                    self._check_alive()
            if done():
                return time.monotonic() - started
            behind = {f"{t}[{p}]": (self._state.committed.get((t, p), 0), v)
                      for (t, p), v in targets.items() if self._state.committed.get((t, p), 0) < v}
        raise PipelineStageError(
            STAGE, f"the shared streaming query did not commit the data within {limit:g} s "
            f"(committed, wanted per partition: {behind}; last progress: {self._last_progress()})",
            hint="see the Spark log; `pipeline-props services status`")

    def _check_alive(self) -> None:
        query = self._query
        if query is None:
            raise PipelineStageError(STAGE, "the shared streaming query is not running (stopped or never started)")
        if not query.isActive:
            failure = query.exception()
            raise PipelineStageError(
                STAGE, "the shared streaming query stopped: " + (streaming_query._short(failure) if failure  # noqa: SLF001
                                                                   else "without an error"))

    def ensure_running(self) -> bool:
        """Restart a query that died (a failed batch replays); True when it had to."""
        query = self._query
        if query is not None and query.isActive:
            return False
        if query is not None:
            log.warning("the shared streaming query had stopped (%s): restarting it on its checkpoint",
                        query.exception())
            self.restart()
        else:
            self.start()
        return True

    def _last_progress(self) -> str:
        try:
            progress = self._query.lastProgress if self._query is not None else None
        except Exception:  # noqa: BLE001 - only for a message
            return "unavailable"
        if not progress:
            return "none yet"
        return json.dumps({k: progress.get(k) for k in ("batchId", "numInputRows", "durationMs")})

    def progress_ms(self) -> dict[str, float]:
        """Median of each phase of Spark's recent progress reports (durationMs), batches with rows only."""
        query = self._query
        if query is None:
            return {}
        phases: dict[str, list[float]] = {}
        for report in query.recentProgress:
            if report.numInputRows:
                for phase, ms in (report.durationMs or {}).items():
                    phases.setdefault(phase, []).append(float(ms))
        return {k: sorted(v)[len(v) // 2] for k, v in sorted(phases.items())}

    def stats(self) -> dict[str, Any]:
        """Batches run and skipped as replays, rows filed as unrouted, restarts, the sink's medians per batch."""
        with self._state.cond:
            seconds = list(self._state.batch_seconds)
            collect = sorted(c for c, _ in seconds)
            write = sorted(w for _, w in seconds)
            return {"batches": self._state.batches, "skipped": self._state.skipped,
                    "unrouted": self._state.unrouted, "restarts": self.restarts,
                    "sink_collect_seconds_median": collect[len(collect) // 2] if collect else None,
                    "sink_write_seconds_median": write[len(write) // 2] if write else None}
