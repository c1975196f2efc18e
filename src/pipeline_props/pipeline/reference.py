"""ReferencePipeline: the pipeline pipeline-props ships as its system under test.

CSV -> ingest (Kafka) -> transform (Spark Structured Streaming, checkpointed)
-> staging (Postgres, idempotent per micro-batch) -> model (dbt) -> export.

Two ways to run the transform:

* one query per dataset (the default; ``pipeline-props run`` and the fault
  harness): topic, checkpoint folder and schema share the namespace's name and
  an availableNow query drains the topic;
* a :class:`~pipeline_props.pipeline.stream.SharedStream` (``stream=``): one
  long-lived query serves every namespace through shared topics, as a
  production job does, and ``wait_until_caught_up`` waits for the sink's
  ledger to commit the offsets the namespace's data ended at.

The model stage runs ``dbt build``, or (``model_mode="compiled"``) the SQL dbt
compiled the project to, in one transaction (pipeline/compiled.py).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from pipeline_props.errors import PipelineStageError, UsageError
from pipeline_props.infra import InfrastructureManager
from pipeline_props.pipeline import export, ingest, model, staging, streaming_query
from pipeline_props.pipeline.compiled import CompiledProject
from pipeline_props.pipeline.routing_sink import Offsets
from pipeline_props.pipeline.stream import SharedStream
from pipeline_props.tables import TableSet


def _truncate_staging(dsn: str, schema: str) -> None:
    """Empty the staging tables and the batch ledger of ``schema`` (fixed-schema mode).

    DELETE, not TRUNCATE: a property example holds a few rows, and TRUNCATE's
    new relation files and exclusive locks cost 43 ms against DELETE's 13
    (connection included), twice per example.
    """
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn) as conn:
        for table in ("stg_events", "stg_rejects", "batch_ledger"):
            conn.execute(sql.SQL("DELETE FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))


@dataclass
class StageTimings:
    """Seconds and rows per stage of the last run of one namespace."""

    seconds: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def postgres_target(infra: InfrastructureManager, schema: str) -> model.WarehouseTarget:
    """The dbt target for ``schema`` on the manager's warehouse (local cluster or external)."""
    pg = infra.postgres
    if pg is not None:
        return model.WarehouseTarget(kind="postgres", schema=schema, host="127.0.0.1",
                                     port=pg.port, user=pg.user, dbname=pg.dbname)
    cfg = infra.infra
    return model.WarehouseTarget(kind="postgres", schema=schema, host=cfg.postgres_host,
                                 port=cfg.postgres_port, user=cfg.postgres_user,
                                 password=cfg.postgres_password, dbname=cfg.postgres_db)


class ReferencePipeline:
    """The shipped CSV -> Kafka -> Spark -> Postgres -> dbt pipeline.

    ``producer_config`` overrides producer settings (a fault test turns
    idempotence off); ``sink_factory`` swaps the staging sink (a mutation test
    installs a sink that is not idempotent on replay).

    ``schema`` (property tests) puts every namespace's staging tables and
    marts in that one warehouse schema instead of a schema per namespace:
    ``prepare`` empties its staging tables and batch ledger, and the dbt build
    reuses one parsed manifest. Topic and checkpoint stay per namespace. Only
    one namespace may be in flight at a time then.

    ``stream`` runs the transform as one long-lived shared query (see the
    module docstring); ``model_mode="compiled"`` builds the marts from the
    compiled project (``compiled``, or compiled on first use) instead of
    ``dbt build``; :meth:`full_build` switches back to ``dbt build`` for a while.
    """

    name = "reference"
    #: Trigger interval of a query started before ingest (begin_transform): short, so the last
    #: rows are picked up soon after ingest ends; a batch still takes what arrived meanwhile.
    live_trigger = "100 milliseconds"
    #: The interval for a dataset of ``bulk_bytes`` or more. Every micro-batch costs a fixed
    #: ~0.3 s (planning, the checkpoint's offset and commit logs, the sink's transaction), and
    #: on 2 cores Spark is behind the producer all through a large ingest anyway, so fewer,
    #: larger batches finish sooner (1M rows: 25.1 s against 26.3 s, five alternated pairs); a small run
    #: would only wait longer for its last batch.
    bulk_trigger = "2 seconds"
    bulk_bytes = 32 << 20

    def __init__(
        self,
        infra: InfrastructureManager,
        *,
        partitions: int | None = None,
        producer_config: dict[str, Any] | None = None,
        sink_factory: Any = None,
        max_offsets_per_trigger: int | None = None,
        schema: str | None = None,
        stream: SharedStream | None = None,
        model_mode: Literal["dbt", "compiled"] = "dbt",
        compiled: CompiledProject | None = None,
    ) -> None:
        if model_mode not in ("dbt", "compiled"):
            raise UsageError(f"ReferencePipeline: model_mode={model_mode!r} must be 'dbt' or 'compiled'")
        self.infra = infra
        self.partitions = partitions or infra.settings.run.kafka_partitions
        self.producer_config = producer_config
        self.sink_factory = sink_factory or staging.StagingSink
        self.max_offsets_per_trigger = max_offsets_per_trigger
        self.schema = schema
        self.timings: dict[str, StageTimings] = {}
        self.messages_out: IO[str] | None = None
        self.stream = stream
        self.model_mode = model_mode
        self.compiled = compiled
        #: Per namespace (stream mode): the offsets its data ends at, read after each ingest.
        self._targets: dict[str, Offsets] = {}
        self._created: set[str] = set()  # fixed schemas whose staging tables exist
        #: Per namespace: a query started before ingest (begin_transform) and when it started.
        self._live: dict[str, tuple[Any, float]] = {}

    # -- namespace ---------------------------------------------------------
    def checkpoint_dir(self, namespace: str) -> Path:
        return Path(self.infra.infra.home) / "checkpoints" / namespace

    def schema_for(self, namespace: str) -> str:
        """The warehouse schema of ``namespace``: the fixed ``schema`` if set, else the namespace."""
        return self.schema or namespace

    def topic_for(self, namespace: str) -> str:
        """The Kafka topic ``namespace``'s messages go to (a shared one in stream mode)."""
        return self.stream.topic(self.partitions) if self.stream is not None else namespace

    def prepare(self, namespace: str) -> None:
        if self.stream is not None:
            self.stream.ensure_running()
            self.topic_for(namespace)
        else:
            self.infra.setup_kafka_topics(namespace, partitions=self.partitions)
        if self.schema is None or self.schema not in self._created:
            staging.create_staging(self.infra.postgres_dsn, self.schema_for(namespace))
            if self.schema:
                self._created.add(self.schema)
        if self.schema:
            _truncate_staging(self.infra.postgres_dsn, self.schema)
        if self.stream is not None:
            self.stream.register(namespace, self.schema_for(namespace))
        self.timings.setdefault(namespace, StageTimings())

    def cleanup(self, namespace: str) -> None:
        self.stop_transform(namespace)
        if self.stream is not None:
            self.stream.unregister(namespace)  # late rows are filed as unrouted from now on
            self._targets.pop(namespace, None)
        else:
            self.infra.delete_kafka_topics(namespace)
            shutil.rmtree(self.checkpoint_dir(namespace), ignore_errors=True)
        if self.schema:
            _truncate_staging(self.infra.postgres_dsn, self.schema)
        else:
            staging.drop_schema(self.infra.postgres_dsn, namespace)
        self.timings.pop(namespace, None)

    # -- stages --------------------------------------------------------------
    def ingest(self, namespace: str, files: Sequence[tuple[str, bytes]], **kwargs: Any) -> ingest.IngestStats:
        topic = self.topic_for(namespace)
        if self.stream is not None:
            kwargs.setdefault("headers", self.stream.message_headers(namespace))
        try:
            stats = ingest.ingest_files(
                files, bootstrap_servers=self.infra.kafka_bootstrap, topic=topic, run_id=namespace,
                producer_config=self.producer_config, messages_out=self.messages_out, **kwargs)
        finally:
            if self.stream is not None:
                # Whatever reached the topic, all of it or a part (a failed ingest),
                # ends before these offsets.
                self._targets[namespace] = self.stream.end_offsets(topic)
        t = self.timings.setdefault(namespace, StageTimings())
        t.seconds["ingest"] = t.seconds.get("ingest", 0.0) + stats.seconds
        t.rows["ingest"] = t.rows.get("ingest", 0) + stats.records
        return stats

    def begin_transform(self, namespace: str, *, input_bytes: int | None = None) -> None:
        """Start ``namespace``'s streaming query now, before ingest, so that Spark consumes while ingest produces.

        The query runs with a processingTime trigger (``bulk_trigger`` when
        ``input_bytes``, the size of the files ingest will send, is at least
        ``bulk_bytes``, else ``live_trigger``); :meth:`transform` then waits
        until it has caught up with what ingest sent and stops it. A no-op in
        stream mode (the shared query runs already) or when one is live.
        """
        if input_bytes is not None and input_bytes < 0:
            raise UsageError(f"begin_transform: input_bytes={input_bytes!r} must be >= 0")
        if self.stream is not None or namespace in self._live:
            return
        bulk = input_bytes is not None and input_bytes >= self.bulk_bytes
        spark = self.infra.spark
        streaming_query._keep_progress(spark)
        started = time.monotonic()
        query = streaming_query.start_stream(
            spark, bootstrap_servers=self.infra.kafka_bootstrap, topic=namespace,
            checkpoint_dir=str(self.checkpoint_dir(namespace)),
            sink=self.sink_factory(self.infra.postgres_dsn, self.schema_for(namespace)),
            trigger="processing_time", processing_time=self.bulk_trigger if bulk else self.live_trigger,
            max_offsets_per_trigger=self.max_offsets_per_trigger)
        self._live[namespace] = (query, started)

    def stop_transform(self, namespace: str) -> None:
        """Stop a query :meth:`begin_transform` started and nobody waited for (a failed ingest)."""
        live = self._live.pop(namespace, None)
        if live is not None:
            live[0].stop()

    def transform(self, namespace: str) -> streaming_query.TransformStats:
        """Run the streaming query with the availableNow trigger until the topic is drained.

        After :meth:`begin_transform`: wait until the running query has caught up
        with the topic's end offsets, then stop it. In stream mode: wait until the
        shared query's sink has committed the offsets ``namespace``'s data ended
        at (rows: those of this namespace).
        """
        if namespace in self._live:
            query, started = self._live.pop(namespace)
            targets = ingest.topic_end_offsets(self.infra.kafka_bootstrap, namespace)
            stats = streaming_query.await_caught_up(query, namespace, targets, started=started)
            self._add_transform(namespace, stats)
            return stats
        if self.stream is not None:
            seconds = self.stream.wait_for(self._targets.get(namespace, {}))
            stats = streaming_query.TransformStats(rows=-1, batches=-1, seconds=seconds)
            self.timings.setdefault(namespace, StageTimings()).seconds["transform"] = seconds
            return stats
        sink = self.sink_factory(self.infra.postgres_dsn, self.schema_for(namespace))
        stats = streaming_query.run_available_now(
            self.infra.spark, bootstrap_servers=self.infra.kafka_bootstrap, topic=namespace,
            checkpoint_dir=str(self.checkpoint_dir(namespace)), sink=sink,
            max_offsets_per_trigger=self.max_offsets_per_trigger, query_name=None)
        self._add_transform(namespace, stats)
        return stats

    def _add_transform(self, namespace: str, stats: streaming_query.TransformStats) -> None:
        t = self.timings.setdefault(namespace, StageTimings())
        t.seconds["transform"] = t.seconds.get("transform", 0.0) + stats.seconds
        t.rows["transform"] = t.rows.get("transform", 0) + stats.rows

    def warehouse_target(self, namespace: str) -> model.WarehouseTarget:
        return postgres_target(self.infra, self.schema_for(namespace))

    def model(self, namespace: str) -> model.DbtResult:
        """dbt build of the marts (or the compiled project's SQL); a failing dbt test is a pipeline failure."""
        if self.model_mode == "compiled":
            if self.compiled is None:
                self.compiled = CompiledProject.compile(self.warehouse_target(namespace))
            run = self.compiled.run(self.infra.postgres_dsn, self.schema_for(namespace))
            result = model.DbtResult(success=run.success, seconds=run.seconds, failures=run.failures)
        else:
            result = model.run_dbt(self.warehouse_target(namespace), reuse_manifest=self.schema is not None)
        t = self.timings.setdefault(namespace, StageTimings())
        t.seconds["model"] = result.seconds
        if not result.success:
            raise PipelineStageError("model", f"dbt {'data tests' if self.model_mode == 'compiled' else 'build'} "
                                     "failed: " + "; ".join(result.failures[:5]))
        return result

    @contextmanager
    def full_build(self) -> Iterator[None]:
        """Run the real ``dbt build`` (models, materializations, tests) while inside."""
        saved, self.model_mode = self.model_mode, "dbt"
        try:
            yield
        finally:
            self.model_mode = saved

    def wait_until_caught_up(self, namespace: str, timeout: float = 600.0) -> dict[str, Any]:
        tstats = self.transform(namespace)
        self.model(namespace)
        return {"transform": tstats}

    def read_tables(self, namespace: str) -> TableSet:
        started = time.perf_counter()
        tables = export.export_postgres(self.infra.postgres_dsn, self.schema_for(namespace))
        t = self.timings.setdefault(namespace, StageTimings())
        t.seconds["export"] = time.perf_counter() - started
        return tables

    def staging_counts(self, namespace: str) -> dict[str, int]:
        """Rows in stg_events, stg_rejects and batch_ledger (for the validators)."""
        import psycopg
        from psycopg import sql

        out = {}
        with psycopg.connect(self.infra.postgres_dsn) as conn:
            for table in ("stg_events", "stg_rejects", "batch_ledger"):
                out[table] = conn.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
                    sql.Identifier(self.schema_for(namespace)), sql.Identifier(table))).fetchone()[0]
        return out
