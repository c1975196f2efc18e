"""Fault scenarios: the harness that runs the pipeline under faults, the scenario registry, the runner.

:class:`FaultHarness` drives one namespace through the real pipeline stages
(the ReferencePipeline's producer settings, sink and dbt project) with the
pipeline's clients behind the :class:`ErrorInjector`'s proxies. Datasets go in
as *batches*: batch k is file k of the dataset (header-only placeholder files
keep ``file_index = k`` for the real ingest stage), so the oracle over the
acknowledged batches, in order, is the expected warehouse.

An :class:`ErrorScenario` runs a dataset, injects its fault at its failure
point, recovers, resends what the producer could not confirm (same file_index
and record positions, so the sink's ON CONFLICT dedupes), lets the stream catch
up, runs dbt and checks: nothing lost, nothing duplicated, tables == oracle.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline_props import contract as C
from pipeline_props.compare import compare, normalise_table
from pipeline_props.errors import InfrastructureError, PipelinePropsError, PipelineStageError, UsageError
from pipeline_props.faults.driver import run_separate_driver
from pipeline_props.faults.findings import Findings, Position, classify
from pipeline_props.faults.injector import (
    PRODUCER_FAULT_CONFIG,
    ErrorInjector,
    InjectedCrash,
    TmpfsTablespace,
    mount_tmpfs,
    unmount_tmpfs,
)
from pipeline_props.infra import InfrastructureManager
from pipeline_props.protocol import FaultHooks, missing_members, pipeline_name, require

PLAIN_HEADER = (",".join(C.COLUMNS) + "\n").encode()

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
#: The staging tables of a harness schema (pipeline/staging.py STAGING_DDL).
STAGING_TABLES = ("stg_events", "stg_rejects", "batch_ledger")


@dataclass
class Batch:
    """One produced file: its positions and what the producer knows about its delivery."""

    file_index: int
    name: str
    data: bytes
    positions: list[Position]
    status: str = "pending"  # acked | unknown
    error: str = ""


@dataclass
class StreamOutcome:
    """One availableNow run of the streaming query."""

    ok: bool
    seconds: float
    error: str = ""


class FaultHarness:
    """One namespace of the real pipeline run under an :class:`ErrorInjector`."""

    def __init__(self, infra: InfrastructureManager, injector: ErrorInjector, *,
                 pipeline: FaultHooks | None = None, namespace: str | None = None,
                 stream_timeout_s: float = 300.0, stop_timeout_s: float = QUERY_STOP_TIMEOUT_S) -> None:
        from pipeline_props.pipeline.reference import ReferencePipeline

        if pipeline is not None:
            require(pipeline, FaultHooks, "the fault harness")
        self.infra = infra
        self.injector = injector
        self.pipeline: FaultHooks = pipeline or ReferencePipeline(infra, partitions=1)
        self.ns = namespace or f"pp_f{uuid.uuid4().hex[:10]}"
        self.stream_timeout_s = stream_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.batches: list[Batch] = []
        self.sends: Counter[Position] = Counter()
        self.event_ids: dict[Position, str | None] = {}
        #: (offset, text) of messages injected straight into the topic (data faults).
        self.foreign: list[tuple[int, str]] = []
        self.tmpfs: Path | None = None
        #: The tmpfs tablespace the staging tables were moved onto (see :meth:`prepare`).
        self.tablespace: TmpfsTablespace | None = None
        self.log: list[str] = []
        #: End offset per partition when the last catch-up started (see :meth:`catch_up`).
        self.caught_up_to: dict[int, int] | None = None

    # -- lifecycle -------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.pipeline.checkpoint_dir(self.ns))

    @property
    def schema(self) -> str:
        """The warehouse schema of this namespace (a pipeline may put every namespace in one schema)."""
        schema_for = getattr(self.pipeline, "schema_for", None)
        return schema_for(self.ns) if schema_for else self.ns

    def prepare(self, *, checkpoint_tmpfs: str | None = None, staging_tablespace: str | None = None) -> None:
        """Create topic and staging tables; optionally put the checkpoint on a small tmpfs
        (``checkpoint_tmpfs``: its size) or the staging tables on a tablespace on one
        (``staging_tablespace``: its size; see :meth:`ErrorInjector.tmpfs_tablespace`)."""
        self.pipeline.prepare(self.ns)
        if checkpoint_tmpfs:
            mount_tmpfs(self.checkpoint_dir, checkpoint_tmpfs)
            self.tmpfs = self.checkpoint_dir
        if staging_tablespace:
            self.tablespace = self.injector.tmpfs_tablespace(self.schema, STAGING_TABLES,
                                                             size=staging_tablespace)

    def cleanup(self) -> None:
        """Drop topic, schema and checkpoint (and the tmpfs, the tablespace), best effort."""
        if self.tmpfs is not None:
            unmount_tmpfs(self.tmpfs)
            self.tmpfs = None
        problems: list[str] = []
        if self.tablespace is not None:
            # tables back to pg_default first: a pipeline's shared schema outlives this harness
            problems += self.injector.drop_tmpfs_tablespace(self.tablespace)
        try:
            self.pipeline.cleanup(self.ns)
        except Exception as exc:  # noqa: BLE001 - cleanup must not hide the verdict
            problems.append(str(exc))
        if self.tablespace is not None:
            if self.tablespace.created:  # its tables could not be moved back: the schema is gone now
                problems += self.injector.drop_tmpfs_tablespace(self.tablespace, force=True)
            self.tablespace = None
        self.log.extend(f"cleanup: {p}" for p in problems)

    # -- ingest ----------------------------------------------------------------------
    @property
    def acked(self) -> set[Position]:
        return {p for b in self.batches if b.status == "acked" for p in b.positions}

    def _producer_config(self) -> dict[str, Any]:
        return {**PRODUCER_FAULT_CONFIG, **(self.pipeline.producer_config or {})}

    def produce(self, data: bytes, name: str | None = None) -> Batch:
        """Send one file as the next batch (file_index = batch number) through the real ingest stage."""
        from pipeline_props.pipeline.reader import iter_records

        k = len(self.batches)
        name = name or f"batch_{k:03d}.csv"
        positions = []
        for rec in iter_records(data, source_file=name, file_index=k):
            pos = (k, rec.record_number)
            positions.append(pos)
            self.event_ids[pos] = rec.event_id
        batch = Batch(k, name, data, positions)
        self.batches.append(batch)
        self._send(batch)
        return batch

    def resend(self, batch: Batch) -> Batch:
        """Rerun the producer for a batch whose outcome is unknown (same positions)."""
        self._send(batch)
        return batch

    def _send(self, batch: Batch) -> None:
        from pipeline_props.pipeline.ingest import ingest_files

        crash_after = self.injector.armed.producer_crash_after
        files = [(f"_placeholder_{i}.csv", PLAIN_HEADER) for i in range(batch.file_index)]
        files.append((batch.name, batch.data))
        limit = None if crash_after is None else min(crash_after, len(batch.positions))
        try:
            ingest_files(files, bootstrap_servers=self.injector.kafka_bootstrap, topic=self.ns,
                         run_id=self.ns, producer_config=self._producer_config(), retry_rounds=0,
                         stop_after=limit)
        except PipelinePropsError as exc:
            for p in batch.positions:  # every record may have been handed to the client
                self.sends[p] += 1
            batch.status, batch.error = "unknown", str(exc)[:300]
            return
        sent = batch.positions if limit is None else batch.positions[:limit]
        for p in sent:
            self.sends[p] += 1
        if limit is not None:
            self.injector.armed.fired.append("producer_crash")
            batch.status, batch.error = "unknown", f"producer killed after {limit} record(s)"
        else:
            batch.status, batch.error = "acked", ""

    def resend_unknown(self) -> int:
        """Rerun the producer for every batch whose outcome is unknown; how many were resent."""
        n = 0
        for b in self.batches:
            if b.status != "acked":
                self.resend(b)
                n += 1
        return n

    def inject_corrupt_messages(self, values: list[bytes] | None = None) -> list[tuple[int, str]]:
        """Write messages that are not pipeline messages straight into the topic (a data fault)."""
        from confluent_kafka import Producer

        values = values if values is not None else CORRUPT_VALUES
        offsets: list[int] = []
        prod = Producer({"bootstrap.servers": self.infra.kafka_bootstrap, "log_level": 3})

        def on_delivery(err: Any, msg: Any) -> None:
            if err is None:
                offsets.append(msg.offset())

        for v in values:
            prod.produce(self.ns, value=v, on_delivery=on_delivery)
            prod.flush(30)
        if len(offsets) != len(values):
            raise UsageError("corrupt messages were not all acknowledged")
        added = [(off, v.decode("utf-8", "replace")) for off, v in zip(offsets, values)]
        self.foreign.extend(added)
        return added

    # -- stream ----------------------------------------------------------------------
    def _sink(self, stop_requested: threading.Event) -> Callable[[Any, int], None]:
        inner = self.pipeline.sink_factory(self.injector.postgres_dsn, self.schema)
        if hasattr(inner, "write_timeout_s"):
            inner.write_timeout_s = SINK_WRITE_TIMEOUT_S
        armed = self.injector.armed

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

    def run_stream(self, timeout_s: float | None = None) -> StreamOutcome:
        """One availableNow run of the real transform on the real checkpoint.

        A failed run is an outcome, not an exception; only a query that cannot
        be stopped within ``stop_timeout_s`` raises (PipelineStageError).
        """
        from pipeline_props.pipeline import transform

        if self.injector.armed.driver_kill:
            return self._run_killed_driver(self.injector.armed.driver_kill, timeout_s)
        t0 = time.monotonic()
        stop_requested = threading.Event()
        try:
            spark = self.infra.spark
            transform._keep_progress(spark)  # noqa: SLF001
            spark.conf.set("spark.sql.streaming.stopTimeout", f"{int(self.stop_timeout_s * 1000)}ms")
            reader = (spark.readStream.format("kafka")
                      .option("kafka.bootstrap.servers", self.injector.kafka_bootstrap)
                      .option("subscribe", self.ns).option("startingOffsets", "earliest"))
            for k, v in KAFKA_SOURCE_FAULT_OPTIONS.items():
                reader = reader.option(k, v)
            query = transform.start_query(reader.load(), checkpoint_dir=str(self.checkpoint_dir),
                                          sink=self._sink(stop_requested), trigger="available_now")
        except Exception as exc:  # noqa: BLE001
            return StreamOutcome(False, time.monotonic() - t0, f"start: {_short(exc)}")
        deadline = t0 + (timeout_s or self.stream_timeout_s)
        try:
            while True:
                if query.awaitTermination(0.5):
                    break
                if stop_requested.is_set():
                    _stop_query(query, self.stop_timeout_s)
                    return StreamOutcome(False, time.monotonic() - t0, "query stopped mid-batch")
                if time.monotonic() > deadline:
                    _stop_query(query, self.stop_timeout_s)
                    return StreamOutcome(False, time.monotonic() - t0, "timed out; query stopped")
            failure = query.exception()
            if failure is not None:
                return StreamOutcome(False, time.monotonic() - t0, _short(failure))
        except PipelineStageError:
            raise
        except Exception as exc:  # noqa: BLE001 - StreamingQueryException, py4j errors
            _stop_query(query, self.stop_timeout_s)
            return StreamOutcome(False, time.monotonic() - t0, _short(exc))
        return StreamOutcome(True, time.monotonic() - t0)

    def _run_killed_driver(self, kill_at: str, timeout_s: float | None) -> StreamOutcome:
        """The stream run in a driver process of its own, SIGKILLed at ``kill_at`` (faults/driver.py).

        It writes through the reference StagingSink (a ``sink_factory`` of the
        pipeline is not used in that process).
        """
        run = run_separate_driver(bootstrap=self.injector.kafka_bootstrap, topic=self.ns,
                                  checkpoint=str(self.checkpoint_dir), dsn=self.injector.postgres_dsn,
                                  schema=self.schema, kill_at=kill_at,
                                  timeout_s=timeout_s or self.stream_timeout_s)
        if run.killed_at:
            self.injector.armed.fired.append(f"spark_driver_kill_{kill_at}")
            return StreamOutcome(False, run.seconds, f"driver process SIGKILLed ({run.killed_at})")
        if run.timed_out:
            return StreamOutcome(False, run.seconds, f"separate driver killed after {run.seconds:.0f} s: {run.why}")
        if run.returncode != 0:
            return StreamOutcome(False, run.seconds, f"separate driver exited {run.returncode}: {run.why}")
        return StreamOutcome(True, run.seconds)

    def catch_up(self, attempts: int = 3) -> StreamOutcome:
        """Run the stream until one run succeeds (faults must be healed).

        The topic's end offsets are read first: everything below them must be
        staged once a run succeeds (:meth:`check`). A message that lands later
        (a request a paused broker still held, say) is only due at the next catch-up.
        """
        self.caught_up_to = self.topic_end_offsets()
        out = StreamOutcome(False, 0.0, "not run")
        for _ in range(attempts):
            out = self.run_stream()
            if out.ok:
                return out
            self.log.append(f"catch-up attempt failed: {out.error}")
        return out

    def run_dbt(self) -> None:
        """dbt build of the marts (raises PipelineStageError when it fails)."""
        self.pipeline.model(self.ns)

    # -- observation -----------------------------------------------------------------
    def _consumer(self) -> Any:
        from confluent_kafka import Consumer

        return Consumer({"bootstrap.servers": self.infra.kafka_bootstrap,
                         "group.id": f"pp-faults-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "log_level": 3})

    def _watermarks(self, consumer: Any, within_s: float = 45.0) -> dict[int, tuple[int, int]]:
        from confluent_kafka import KafkaException, TopicPartition

        # A broker just restarted or resumed may not know its partitions for a few
        # seconds (UNKNOWN_PARTITION, leader not available, timeouts): ask again.
        deadline = time.monotonic() + within_s
        while True:
            try:
                md = consumer.list_topics(self.ns, timeout=10)
                return {pid: consumer.get_watermark_offsets(TopicPartition(self.ns, pid), timeout=10)
                        for pid in md.topics[self.ns].partitions}
            except (KafkaException, KeyError, TypeError) as exc:
                if time.monotonic() < deadline:
                    time.sleep(1.0)
                    continue
                # the harness' own read, with every fault healed: the broker is not answering
                raise InfrastructureError(
                    "kafka", f"cannot read the offsets of topic {self.ns} in {within_s:.0f} s: {exc}",
                    log_path=self.infra.kafka.log_path if self.infra.kafka else None) from None

    def topic_end_offsets(self) -> dict[int, int]:
        """The end (high watermark) offset of each partition of the topic now."""
        consumer = self._consumer()
        try:
            return {pid: high for pid, (_, high) in self._watermarks(consumer).items()}
        finally:
            consumer.close()

    def topic_messages(self) -> list[tuple[int, int, Position | None]]:
        """Every message in the topic as (partition, offset, position); position None for a foreign one."""
        from confluent_kafka import TopicPartition

        consumer = self._consumer()
        out: list[tuple[int, int, Position | None]] = []
        try:
            for pid, (low, high) in self._watermarks(consumer).items():
                if high <= low:
                    continue
                consumer.assign([TopicPartition(self.ns, pid, low)])
                seen = low
                deadline = time.monotonic() + 30
                while seen < high and time.monotonic() < deadline:
                    for msg in consumer.consume(1000, 1.0):
                        if msg.error():
                            continue
                        seen = msg.offset() + 1
                        try:
                            body = json.loads(msg.value())
                            pos: Position | None = (int(body["file_index"]), int(body["record"]))
                        except (ValueError, TypeError, KeyError):
                            pos = None
                        out.append((pid, msg.offset(), pos))
                if seen < high:
                    raise InfrastructureError(
                        "kafka", f"topic {self.ns} partition {pid}: read up to offset {seen} of {high} in 30 s")
        finally:
            consumer.close()
        return out

    def staging_positions(self) -> tuple[list[Position], int]:
        """Positions in stg_events and stg_rejects (one entry per row), and the count of foreign rejects."""
        import psycopg
        from psycopg import sql

        s = sql.Identifier(self.schema)
        try:
            with psycopg.connect(self.infra.postgres_dsn, connect_timeout=10) as conn:
                rows = conn.execute(sql.SQL(
                    "SELECT file_index, record_number FROM {}.stg_events UNION ALL "
                    "SELECT file_index, record_number FROM {}.stg_rejects").format(s, s)).fetchall()
        except psycopg.OperationalError as exc:  # the harness' own read, faults healed: not a finding
            raise InfrastructureError("postgres", f"cannot read the staging tables of {self.schema}: "
                                      f"{str(exc).strip()[:300]}") from None
        own = [(int(a), int(b)) for a, b in rows if a >= 0]
        return own, sum(1 for a, _ in rows if a < 0)

    def expected_tables(self) -> dict[str, list[tuple]]:
        """The oracle over the acknowledged batches (others as header-only files, to keep file_index)."""
        from pipeline_props.oracles import run_oracle

        files = [(b.name, b.data if b.status == "acked" else PLAIN_HEADER) for b in self.batches]
        tables = {k: list(v) for k, v in run_oracle(files).tables.items()}
        if self.foreign:
            # Messages that are no pipeline message: MALFORMED_ROW at the unknown position
            # (docs/architecture.md), record_number = partition * 10^12 + offset (one partition).
            tables[C.REJECTED_ROWS] = normalise_table(C.REJECTED_ROWS, tables[C.REJECTED_ROWS] + [
                ("<kafka>", off, None, C.MALFORMED_ROW, text) for off, text in self.foreign])
            cols = C.OUTPUT_TABLES[C.INGESTION_AUDIT]
            audit = dict(zip(cols, tables[C.INGESTION_AUDIT][0]))
            for key in ("rows_read", "rows_rejected", "rejected_malformed_row"):
                audit[key] += len(self.foreign)
            tables[C.INGESTION_AUDIT] = [tuple(audit[c] for c in cols)]
        return tables

    def check(self, *, marts: bool) -> Findings:
        """Findings at the topic, staging and (with ``marts``) mart stage."""
        messages = self.topic_messages()
        topic = [pos for _, _, pos in messages if pos is not None]
        foreign_topic = len(messages) - len(topic)
        marks = self.caught_up_to
        # what the last catch-up was due to stage: the messages below its end offsets
        reached = messages if marks is None else [m for m in messages if m[1] < marks.get(m[0], 0)]
        due = [pos for _, _, pos in reached if pos is not None]
        foreign_due = len(reached) - len(due)
        staged, foreign_staged = self.staging_positions()
        detail = ""
        if marts:
            div = compare(self.pipeline.read_tables(self.ns), self.expected_tables())
            if not div.ok:
                detail = "tables differ from the oracle:\n" + div.render(max_rows=8)
        f = classify(sends=self.sends, acked=self.acked, topic=topic, staging=staged,
                     event_ids=self.event_ids, marts_detail=detail, due_in_staging=due)
        if not foreign_due <= foreign_staged <= foreign_topic:
            f.stages["staging"].detail += (f"{foreign_topic} non-pipeline message(s) in the topic, "
                                           f"{foreign_staged} MALFORMED_ROW row(s) at the unknown position")
        return f


#: Data faults: values that are not pipeline messages (bad JSON, wrong schema, truncated).
CORRUPT_VALUES: list[bytes] = [
    b"{not json",
    b'{"v":1,"file":"x.csv"}',
    b'{"v":1,"file":"x.csv","file_index":"three","record":1,"raw":"a","malformed":null,"fields":null}',
    b'{"v":1,"run":"r","file":"s.csv","file_index":0,"rec',
    b"",
    b"[1,2,3]",
]


def _stop_query(query: Any, within_s: float) -> None:
    """query.stop(), bounded by spark.sql.streaming.stopTimeout; PipelineStageError when it times out."""
    try:
        query.stop()
    except Exception as exc:  # noqa: BLE001 - py4j wraps java.util.concurrent.TimeoutException
        # isActive is already False here (stop() marks the query terminated before it waits)
        if "TimeoutException" in str(exc):
            raise PipelineStageError(
                "spark", f"the streaming query did not stop within {within_s:g} s (its "
                f"foreachBatch callback does not return): {_short(exc)}") from None


def _short(exc: BaseException, limit: int = 600) -> str:
    """One line for a report: our own error raised inside foreachBatch if there is one, else the first line."""
    text = [t.strip() for t in str(exc).strip().splitlines()]
    ours = [t for t in text if t.startswith("pipeline_props.")]  # from the Python traceback Spark wraps
    first = next((t for t in text if t), type(exc).__name__)
    return (ours[-1] if ours else first)[:limit]


# ---------------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class ErrorScenario:
    """One named fault scenario (the seed's shape) and the function that runs it."""

    name: str
    description: str
    error_type: str  # service | network | data | resource
    component: str
    failure_point: str
    expected_behavior: str
    recovery_mechanism: str
    run: Callable[[ScenarioContext], None] = field(repr=False, compare=False, default=lambda ctx: None)


@dataclass
class ScenarioResult:
    """What one scenario run showed."""

    name: str
    recovered: bool
    recovery_seconds: float
    records_lost: int
    records_duplicated: int
    records_phantom: int
    tables_equal: bool
    fault_observed: str
    seconds: float
    findings: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    notes: list[str] = field(default_factory=list)
    #: Why the scenario did not run for this pipeline ("skipped: ..."); empty when it ran.
    skipped: str = ""

    @property
    def passed(self) -> bool:
        return (self.recovered and self.tables_equal and not self.error and self.records_lost == 0
                and self.records_duplicated == 0 and self.records_phantom == 0)


@dataclass
class ScenarioContext:
    """What a scenario function works with."""

    harness: FaultHarness
    injector: ErrorInjector
    rows: int
    seed: int
    notes: list[str] = field(default_factory=list)
    observed: list[str] = field(default_factory=list)
    recovery_started: float | None = None

    def dataset(self, k: int) -> bytes:
        from pipeline_props.strategies import DataGenerationConfig, DataGenerator

        gen = DataGenerator(DataGenerationConfig(seed=self.seed * 100 + k, num_customers=20,
                                                 num_products=10, error_rate=0.1))
        return gen.generate_csv_data(self.rows)

    def recover(self, error_id: str) -> None:
        if self.recovery_started is None:
            self.recovery_started = time.monotonic()
        self.injector.recover_from_error(error_id)

    def expect_failure(self, what: str, ok: bool, error: str = "") -> None:
        """Record whether the fault was visible (a failure under a fault is the loud, wanted outcome)."""
        self.observed.append(f"{what}: {'succeeded' if ok else 'failed: ' + error[:300]}")


SCENARIOS: dict[str, ErrorScenario] = {}


def register(scenario: ErrorScenario) -> ErrorScenario:
    """Add a scenario to the registry (name must be new)."""
    if scenario.name in SCENARIOS:
        raise UsageError(f"scenario {scenario.name!r} is already registered")
    SCENARIOS[scenario.name] = scenario
    return scenario


def _scenario(name: str, description: str, error_type: str, component: str, failure_point: str,
              expected: str, recovery: str) -> Callable[[Callable[[ScenarioContext], None]], Callable]:
    def deco(fn: Callable[[ScenarioContext], None]) -> Callable[[ScenarioContext], None]:
        register(ErrorScenario(name, description, error_type, component, failure_point, expected,
                               recovery, fn))
        return fn

    return deco


def _produce(ctx: ScenarioContext, k: int) -> Batch:
    b = ctx.harness.produce(ctx.dataset(k))
    ctx.expect_failure(f"produce batch {k}", b.status == "acked", b.error)
    return b


def _stream(ctx: ScenarioContext, label: str = "stream", timeout: float | None = None) -> StreamOutcome:
    out = ctx.harness.run_stream(timeout)
    ctx.expect_failure(label, out.ok, out.error)
    return out


@_scenario("kafka_service_stop", "Kafka broker SIGKILLed while a file is produced, restarted on the same log dir",
           "service", "kafka", "during produce", "produce fails loudly; acked data survives the crash",
           "restart the broker, rerun the producer for unconfirmed files")
def _kafka_service_stop(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    eid = ctx.injector.inject_service_failure("kafka", "kill")
    _produce(ctx, 1)
    ctx.recover(eid)


@_scenario("kafka_pause", "Kafka broker SIGSTOPped longer than the client timeouts, then SIGCONT",
           "service", "kafka", "during produce and stream", "producer and query time out loudly",
           "SIGCONT; rerun producer and query")
def _kafka_pause(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    eid = ctx.injector.inject_service_failure("kafka", "pause")
    _produce(ctx, 1)
    _stream(ctx, "stream while paused", timeout=40)
    ctx.recover(eid)


@_scenario("postgres_restart", "Postgres stopped in immediate mode (a crash) mid-stream, restarted",
           "service", "postgres", "staging write", "the micro-batch fails; nothing half-written",
           "restart Postgres; restart the query on its checkpoint")
def _postgres_restart(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    _produce(ctx, 1)
    eid = ctx.injector.inject_service_failure("postgres", "stop")
    _stream(ctx, "stream while Postgres is down")
    ctx.recover(eid)


@_scenario("spark_driver_crash", "driver-side crash in foreachBatch before the warehouse write",
           "service", "spark", "before the staging write", "the query fails; the batch is not committed",
           "restart the query on the same checkpoint: the batch is replayed")
def _spark_driver_crash(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    eid = ctx.injector.inject_service_failure("spark", "crash_before_write")
    _stream(ctx, "stream with a crashing driver")
    ctx.recover(eid)


@_scenario("spark_crash_after_write", "crash after the warehouse COMMIT, before Spark's checkpoint commit",
           "service", "spark", "after the staging commit, before the checkpoint commit",
           "the query fails; the batch is in the warehouse but not in the checkpoint",
           "restart the query: the batch is replayed and the ledger/ON CONFLICT make it a no-op")
def _spark_crash_after_write(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    eid = ctx.injector.inject_service_failure("spark", "crash_after_write")
    _stream(ctx, "stream crashing after the write")
    ctx.recover(eid)


@_scenario("spark_query_stop", "the streaming query is stopped while a micro-batch is in flight",
           "service", "spark", "mid-batch", "the query ends without committing the batch",
           "restart the query on the same checkpoint")
def _spark_query_stop(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    eid = ctx.injector.inject_service_failure("spark", "query_stop")
    _stream(ctx, "stream stopped mid-batch")
    ctx.recover(eid)


@_scenario("producer_crash", "the producer is killed mid-file (nothing flushed), then rerun",
           "service", "producer", "mid-file", "part of the file may be in Kafka, unconfirmed",
           "rerun the producer on the same file (same positions): the sink dedupes")
def _producer_crash(ctx: ScenarioContext) -> None:
    eid = ctx.injector.inject_service_failure("producer", "crash", after=max(1, ctx.rows // 2))
    _produce(ctx, 0)
    ctx.recover(eid)
    _stream(ctx, "stream over the partial file")


@_scenario("network_latency", "0.3 s added to every chunk between the pipeline and Kafka and Postgres",
           "network", "kafka+postgres", "produce and stream", "slower, still correct",
           "remove the delay")
def _network_latency(ctx: ScenarioContext) -> None:
    e1 = ctx.injector.inject_network_failure("kafka", "latency", delay_s=0.3)
    e2 = ctx.injector.inject_network_failure("postgres", "latency", delay_s=0.3)
    _produce(ctx, 0)
    _stream(ctx, "stream under latency", timeout=180)
    ctx.recover(e1)
    ctx.recover(e2)


@_scenario("network_partition", "full cut between the pipeline and Kafka and Postgres (connections reset)",
           "network", "kafka+postgres", "produce and stream", "producer and query fail loudly",
           "heal the network; rerun the producer for unconfirmed files and the query")
def _network_partition(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    e1 = ctx.injector.inject_network_failure("kafka", "cut")
    e2 = ctx.injector.inject_network_failure("postgres", "cut")
    _produce(ctx, 1)
    _stream(ctx, "stream while partitioned", timeout=40)
    ctx.recover(e1)
    ctx.recover(e2)


@_scenario("postgres_partition", "cut between the Spark sink and Postgres only, mid-stream",
           "network", "postgres", "staging write", "the micro-batch fails loudly",
           "heal; restart the query on its checkpoint")
def _postgres_partition(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    eid = ctx.injector.inject_network_failure("postgres", "cut")
    _stream(ctx, "stream while Postgres is unreachable")
    ctx.recover(eid)


@_scenario("packet_loss", "30% retransmission stalls and 2% connection resets to Kafka and Postgres",
           "network", "kafka+postgres", "produce and stream", "retries; possibly failures, never loss",
           "heal; rerun what failed")
def _packet_loss(ctx: ScenarioContext) -> None:
    e1 = ctx.injector.inject_network_failure("kafka", "packet_loss", rate=0.3, reset_rate=0.02)
    e2 = ctx.injector.inject_network_failure("postgres", "packet_loss", rate=0.3, reset_rate=0.02)
    _produce(ctx, 0)
    _stream(ctx, "stream under packet loss", timeout=120)
    ctx.recover(e1)
    ctx.recover(e2)


@_scenario("kafka_ack_loss", "every produce request reaches the broker twice, the second ack is lost",
           "network", "producer", "produce acks", "the idempotent producer's retries are deduplicated",
           "none needed: idempotence")
def _kafka_ack_loss(ctx: ScenarioContext) -> None:
    eid = ctx.injector.inject_network_failure("kafka", "ack_loss")
    _produce(ctx, 0)
    ctx.recover(eid)
    assert ctx.injector.kafka_proxy is not None
    ctx.notes.append(f"produce requests replayed: {ctx.injector.kafka_proxy.stats.replayed_requests}")


@_scenario("corrupt_messages", "bad JSON, wrong schema, truncated and empty values written into the topic",
           "data", "kafka topic", "between good messages", "MALFORMED_ROW rows; the stream never stops",
           "none needed")
def _corrupt_messages(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    added = ctx.harness.inject_corrupt_messages()
    ctx.observed.append(f"{len(added)} corrupt message(s) injected")
    _produce(ctx, 1)
    out = _stream(ctx, "stream over corrupt messages")
    if not out.ok:
        ctx.notes.append("the stream stopped on corrupt messages: that is a failure")
        raise AssertionError(f"corrupt messages stopped the stream: {out.error}")


@_scenario("disk_full", "the checkpoint folder's file system (a 4 MB tmpfs) is filled up",
           "resource", "spark checkpoint", "offset/commit log write", "the query fails loudly",
           "free the space; restart the query on its checkpoint")
def _disk_full(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    _stream(ctx, "stream before the disk fills")
    _produce(ctx, 1)
    eid = ctx.injector.inject_disk_full(ctx.harness.checkpoint_dir)
    _stream(ctx, "stream with a full disk")
    ctx.recover(eid)


@_scenario("postgres_disk_full", "the staging tables sit on a Postgres tablespace on an 8 MB tmpfs, "
           "which is filled up (WAL stays in the main data dir)",
           "resource", "postgres staging", "staging table extension in the sink's write",
           "the micro-batch fails loudly (could not extend file: No space left on device)",
           "free the space; restart the query on its checkpoint: the batch is replayed")
def _postgres_disk_full(ctx: ScenarioContext) -> None:
    ts = ctx.harness.tablespace
    if ts is None:
        raise UsageError("postgres_disk_full needs prepare(staging_tablespace=...)")
    _produce(ctx, 0)
    _stream(ctx, "stream before the tablespace fills")
    _produce(ctx, 1)
    server_log = ctx.injector.postgres.data_dir / "server.log"  # the live log (PostgresServer.start)
    log_start = _file_size(server_log)
    eid = ctx.injector.inject_disk_full(ts.directory)
    out = _stream(ctx, "stream with the tablespace full")
    enospc = [ln.strip() for ln in _read_from(server_log, log_start).splitlines()
              if "No space left on device" in ln]
    ctx.notes.append(f"postgres log while full: {len(enospc)} 'No space left on device' line(s)"
                     + (f", first: {enospc[0][:300]}" if enospc else ""))
    if out.ok:
        raise AssertionError(f"the stream succeeded with tablespace {ts.name} full: the fault did nothing")
    if not enospc and "No space left on device" not in out.error:
        raise AssertionError(f"the stream failed, but not on the full tablespace: {out.error[:300]}")
    ctx.recover(eid)


@_scenario("cpu_hog", "two busy processes compete for the 2 cores while the pipeline runs",
           "resource", "host cpu", "produce and stream", "slower, still correct", "kill the hogs")
def _cpu_hog(ctx: ScenarioContext) -> None:
    eid = ctx.injector.inject_cpu_hog(seconds=120, processes=2)
    _produce(ctx, 0)
    _stream(ctx, "stream under CPU pressure", timeout=240)
    ctx.recover(eid)


#: Driver heap and the free heap left to the transform under memory_pressure.
LOW_MEMORY_DRIVER = "480m"
LOW_MEMORY_HEADROOM_MB = 16


@_scenario("memory_pressure", f"the transform runs in a separate driver process with a {LOW_MEMORY_DRIVER} heap "
           f"filled with live ballast down to {LOW_MEMORY_HEADROOM_MB} MB free",
           "resource", "spark driver memory", "whole batch",
           "the driver dies of OutOfMemoryError (loudly) or gets through, never loses",
           "rerun the query with normal memory on the same checkpoint")
def _memory_pressure(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    h = ctx.harness
    run = run_separate_driver(bootstrap=ctx.injector.kafka_bootstrap, topic=h.ns,
                              checkpoint=str(h.checkpoint_dir), dsn=ctx.injector.postgres_dsn, schema=h.schema,
                              memory=LOW_MEMORY_DRIVER, ballast_headroom_mb=LOW_MEMORY_HEADROOM_MB)
    ballast = run.line("PP-BALLAST") or "PP-BALLAST: never reached"
    ctx.expect_failure("transform in a low-memory driver", run.returncode == 0, run.why)
    ctx.notes.append(f"low-memory driver: {ballast[len('PP-BALLAST '):]}; exit {run.returncode} after "
                     f"{run.seconds:.0f} s")
    ctx.recovery_started = time.monotonic()


@_scenario("spark_driver_kill", "the driver process (Python and its JVM) SIGKILLed mid-batch, before the write",
           "service", "spark", "mid-batch, before the staging write",
           "the driver is gone at once: no shutdown hook, no checkpoint commit",
           "rerun the query on the same checkpoint: the batch is replayed")
def _spark_driver_kill(ctx: ScenarioContext) -> None:
    _kill_driver(ctx, "before_write")


@_scenario("spark_driver_kill_after_write", "the driver process SIGKILLed after the warehouse COMMIT, "
           "before Spark's checkpoint commit", "service", "spark",
           "after the staging commit, before the checkpoint commit",
           "the driver is gone; the batch is in the warehouse but not in the checkpoint",
           "rerun the query on the same checkpoint: the replay is a no-op (ledger)")
def _spark_driver_kill_after_write(ctx: ScenarioContext) -> None:
    _kill_driver(ctx, "after_write")


def _kill_driver(ctx: ScenarioContext, kill_at: str) -> None:
    _produce(ctx, 0)
    eid = ctx.injector.inject_service_failure("spark", f"driver_kill_{kill_at}")
    out = _stream(ctx, f"stream in a driver killed {kill_at.replace('_', ' ')}")
    staged, _ = ctx.harness.staging_positions()
    ctx.notes.append(f"{len(staged)} record(s) staged when the driver died")
    if not out.error.startswith("driver process SIGKILLed"):
        raise AssertionError(f"the driver was not killed {kill_at}: the fault did nothing ({out.error})")
    ctx.recover(eid)


#: Scenarios that SIGKILL a driver process of their own (faults/driver.py): it runs the
#: reference transform and StagingSink, so only a pipeline with that sink has one to kill.
NEEDS_DRIVER_PROCESS = frozenset({"spark_driver_kill", "spark_driver_kill_after_write"})


def unsupported(name: str, pipeline: object) -> str:
    """Why scenario ``name`` cannot run against ``pipeline`` ("skipped: ..."), or "" when it can."""
    from pipeline_props.pipeline.staging import StagingSink

    gaps = missing_members(pipeline, FaultHooks)
    if gaps:
        return (f"skipped: the fault harness needs the FaultHooks layer, and pipeline "
                f"{pipeline_name(pipeline)!r} offers no {', '.join(gaps)} (docs/own-pipeline.md)")
    sink = getattr(pipeline, "sink_factory", None)
    if name in NEEDS_DRIVER_PROCESS and sink is not StagingSink:
        return (f"skipped: the pipeline offers no driver process to kill: the separate driver runs the "
                f"reference transform and StagingSink, and pipeline {pipeline_name(pipeline)!r} "
                f"stages through {getattr(sink, '__name__', type(sink).__name__)}")
    return ""


#: FaultHarness.prepare() arguments of the scenarios that need a resource set up first.
_PREPARE: dict[str, dict[str, str]] = {
    "disk_full": {"checkpoint_tmpfs": "4m"},
    "postgres_disk_full": {"staging_tablespace": "8m"},
}


def run_scenario(name: str, infra: InfrastructureManager, *, injector: ErrorInjector | None = None,
                 rows: int = 60, seed: int = 1, pipeline: FaultHooks | None = None) -> ScenarioResult:
    """Run one registered scenario end to end; every fault is undone in ``finally``.

    A ``pipeline`` that cannot run it (see :func:`unsupported`) gives a result
    whose ``skipped`` says why; nothing is started for it.
    """
    if name not in SCENARIOS:
        raise UsageError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    why = unsupported(name, pipeline) if pipeline is not None else ""
    if why:
        return ScenarioResult(name=name, recovered=False, recovery_seconds=0.0, records_lost=0,
                              records_duplicated=0, records_phantom=0, tables_equal=False,
                              fault_observed="", seconds=0.0, skipped=why)
    scenario = SCENARIOS[name]
    own = injector is None
    inj = injector or ErrorInjector(infra)
    h = FaultHarness(infra, inj, pipeline=pipeline)
    ctx = ScenarioContext(h, inj, rows, seed)
    t0 = time.monotonic()
    error = ""
    recovered = False
    findings: Findings | None = None
    try:
        h.prepare(**_PREPARE.get(name, {}))
        try:
            scenario.run(ctx)
        finally:
            inj.recover_all()
        start = ctx.recovery_started or time.monotonic()
        h.resend_unknown()
        out = h.catch_up()
        recovered = out.ok
        recovery_s = time.monotonic() - start
        if not out.ok:
            error = f"did not catch up after recovery: {out.error}"
        else:
            h.run_dbt()
        findings = h.check(marts=recovered)
    except Exception as exc:  # noqa: BLE001 - a scenario reports, never crashes the batch
        error = error or f"{type(exc).__name__}: {_short(exc)}"
        recovery_s = time.monotonic() - (ctx.recovery_started or t0)
    finally:
        try:
            inj.recover_all()
        finally:
            h.cleanup()
            if own:
                inj.close()
    counts = findings.counts() if findings else {"lost": -1, "duplicated": -1, "phantom": -1}
    return ScenarioResult(
        name=name, recovered=recovered, recovery_seconds=round(recovery_s, 2),
        records_lost=counts["lost"], records_duplicated=counts["duplicated"],
        records_phantom=counts["phantom"],
        tables_equal=bool(findings and "marts" not in findings.stages and recovered),
        fault_observed="; ".join(ctx.observed), seconds=round(time.monotonic() - t0, 1),
        findings=findings.to_json() if findings else {},
        error=error if not findings or findings.ok else (error or findings.render()),
        notes=ctx.notes + h.log,
    )


def write_report(results: list[ScenarioResult], folder: Path) -> Path:
    """Write ``fault_report.json`` into ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fault_report.json"
    payload = {
        "passed": all(r.passed for r in results),
        "scenarios": [{**asdict(r), "passed": r.passed,
                       "description": SCENARIOS[r.name].description if r.name in SCENARIOS else ""}
                      for r in results],
    }
    path.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return path


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int) -> str:
    """The text of ``path`` from byte ``offset`` on ('' when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


__all__ = ["CORRUPT_VALUES", "NEEDS_DRIVER_PROCESS", "SCENARIOS", "Batch", "ErrorScenario", "FaultHarness", "ScenarioContext",
           "ScenarioResult", "StreamOutcome", "register", "run_scenario", "unsupported", "write_report"]
