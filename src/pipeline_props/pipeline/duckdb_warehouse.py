"""DuckDBWarehousePipeline: the same Kafka and Spark stages, with an embedded DuckDB warehouse.

CSV -> ingest (Kafka) -> transform (Spark, checkpointed) -> DuckDB staging sink
(batch ledger plus ``ON CONFLICT (file_index, record_number) DO NOTHING``, one
transaction per micro-batch, like the Postgres sink) -> dbt-duckdb marts ->
export. Selected with ``--warehouse duckdb`` (``settings.run.warehouse``);
its tests also prove the checks talk to a pipeline only through the protocol.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from pipeline_props.errors import PipelineStageError
from pipeline_props.pipeline import export, ingest, model, streaming_query
from pipeline_props.pipeline.reference import StageTimings
from pipeline_props.tables import TableSet

STAGE = "staging"

_DDL = (
    'CREATE SCHEMA IF NOT EXISTS "{s}"',
    """CREATE TABLE IF NOT EXISTS "{s}".stg_events (
    file_index int NOT NULL, source_file text NOT NULL, record_number bigint NOT NULL,
    event_id text NOT NULL, order_id text NOT NULL, customer_id text NOT NULL,
    product_id text NOT NULL, category text NOT NULL, region text NOT NULL,
    channel text NOT NULL, quantity integer NOT NULL, unit_price numeric(11,2) NOT NULL,
    discount numeric(4,3) NOT NULL, currency text NOT NULL, event_time timestamptz NOT NULL,
    raw_record text NOT NULL, PRIMARY KEY (file_index, record_number))""",
    """CREATE TABLE IF NOT EXISTS "{s}".stg_rejects (
    file_index int NOT NULL, source_file text NOT NULL, record_number bigint NOT NULL,
    event_id text, reason text NOT NULL, raw_record text NOT NULL,
    PRIMARY KEY (file_index, record_number))""",
    """CREATE TABLE IF NOT EXISTS "{s}".batch_ledger (
    batch_id bigint PRIMARY KEY, rows_valid int NOT NULL, rows_rejected int NOT NULL,
    committed_at timestamptz NOT NULL)""",
)

_EVENT_COLS = ("file_index, source_file, record_number, event_id, order_id, customer_id, product_id, "
               "category, region, channel, quantity, unit_price, discount, currency")
_REJECT_COLS = "file_index, source_file, record_number, event_id, reason, raw_record"
#: DuckDB opens one database instance per file and process; serialise our own connections.
_lock = threading.Lock()


def _connect(path: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(path)
    con.execute("SET TimeZone = 'UTC'")
    return con


def _check_schema(schema: str) -> str:
    if not schema.replace("_", "").isalnum() or not schema.isascii():
        raise PipelineStageError(STAGE, f"schema name {schema!r} must be ASCII letters, digits, _")
    return schema


class DuckDBStagingSink:
    """foreachBatch sink writing validate() output into a DuckDB file, idempotent on replay."""

    def __init__(self, path: str, schema: str) -> None:
        self._path = path
        self._schema = _check_schema(schema)
        self.batches_written = 0
        self.batches_skipped = 0

    def __call__(self, batch_df: Any, batch_id: int) -> None:
        """Write one micro-batch in one transaction, or skip it if its batch_id is in the ledger."""
        from pipeline_props.pipeline.staging import StagingSink

        valid, rejects = StagingSink._collect(batch_df)  # noqa: SLF001 - same Arrow shape on purpose
        s = self._schema
        try:
            with _lock, _connect(self._path) as con:
                con.execute("BEGIN TRANSACTION")
                claimed = con.execute(
                    f'INSERT INTO "{s}".batch_ledger VALUES (?, ?, ?, now()) '
                    "ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id",
                    [int(batch_id), valid.num_rows, rejects.num_rows]).fetchone()
                if claimed is None:
                    con.execute("ROLLBACK")
                    self.batches_skipped += 1
                    return
                con.register("_pp_events", valid)
                con.register("_pp_rejects", rejects)
                con.execute(
                    f'INSERT INTO "{s}".stg_events ({_EVENT_COLS}, event_time, raw_record) '
                    f"SELECT {_EVENT_COLS}, make_timestamp(event_time_us)::timestamptz, raw_record "
                    "FROM _pp_events ON CONFLICT (file_index, record_number) DO NOTHING")
                con.execute(
                    f'INSERT INTO "{s}".stg_rejects ({_REJECT_COLS}) SELECT {_REJECT_COLS} '
                    "FROM _pp_rejects ON CONFLICT (file_index, record_number) DO NOTHING")
                con.execute("COMMIT")
        except duckdb.Error as exc:
            raise PipelineStageError(STAGE, f"batch {batch_id}: {type(exc).__name__}: {exc}") from None
        self.batches_written += 1


class DuckDBWarehousePipeline:
    """Kafka -> Spark -> DuckDB staging -> dbt-duckdb marts, one DuckDB file per pipeline object.

    ``schema`` fixes the warehouse schema for every namespace (as in
    :class:`~pipeline_props.pipeline.reference.ReferencePipeline`): prepare
    empties its staging tables and dbt reuses one parsed manifest.
    """

    name = "duckdb-warehouse"

    def __init__(self, infra: Any, *, database: str | Path | None = None, partitions: int | None = None,
                 schema: str | None = None) -> None:
        self.infra = infra
        home = Path(infra.infra.home)
        self.database = str(Path(database) if database else home / "duckdb" / "warehouse.duckdb")
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        self.partitions = partitions or infra.settings.run.kafka_partitions
        self.schema = schema
        self.timings: dict[str, StageTimings] = {}
        #: The runner's kafka_messages.jsonl while it ingests (as ReferencePipeline).
        self.messages_out: Any = None

    def schema_for(self, namespace: str) -> str:
        """The warehouse schema of ``namespace``."""
        return _check_schema(self.schema or namespace)

    def checkpoint_dir(self, namespace: str) -> Path:
        return Path(self.infra.infra.home) / "checkpoints" / f"duckdb_{namespace}"

    def _execute(self, *statements: str) -> None:
        with _lock, _connect(self.database) as con:
            for stmt in statements:
                con.execute(stmt)

    def prepare(self, namespace: str) -> None:
        self.infra.setup_kafka_topics(namespace, partitions=self.partitions)
        s = self.schema_for(namespace)
        self._execute(*(stmt.format(s=s) for stmt in _DDL))
        if self.schema:
            self._execute(*(f'DELETE FROM "{s}".{t}' for t in ("stg_events", "stg_rejects", "batch_ledger")))

    def ingest(self, namespace: str, files: Sequence[tuple[str, bytes]]) -> ingest.IngestStats:
        return ingest.ingest_files(files, bootstrap_servers=self.infra.kafka_bootstrap, topic=namespace,
                                   run_id=namespace, messages_out=self.messages_out)

    def transform(self, namespace: str) -> streaming_query.TransformStats:
        """The streaming query (availableNow) into the DuckDB staging tables."""
        sink = DuckDBStagingSink(self.database, self.schema_for(namespace))
        return streaming_query.run_available_now(
            self.infra.spark, bootstrap_servers=self.infra.kafka_bootstrap, topic=namespace,
            checkpoint_dir=str(self.checkpoint_dir(namespace)), sink=sink)

    def model(self, namespace: str) -> model.DbtResult:
        """dbt build on DuckDB; a failing dbt test is a pipeline failure."""
        target = model.WarehouseTarget(kind="duckdb", schema=self.schema_for(namespace), path=self.database)
        with _lock:
            result = model.run_dbt(target, reuse_manifest=self.schema is not None)
        if not result.success:
            raise PipelineStageError("model", "dbt build failed: " + "; ".join(result.failures[:5]))
        return result

    def wait_until_caught_up(self, namespace: str, timeout: float = 600.0) -> dict[str, Any]:
        stats = self.transform(namespace)
        self.model(namespace)
        return {"transform": stats}

    def read_tables(self, namespace: str) -> TableSet:
        with _lock:
            return export.export_duckdb(self.database, self.schema_for(namespace))

    def staging_counts(self, namespace: str) -> dict[str, int]:
        """Rows in stg_events, stg_rejects and batch_ledger (for the validators)."""
        s = self.schema_for(namespace)
        with _lock, _connect(self.database) as con:
            return {t: con.execute(f'SELECT count(*) FROM "{s}".{t}').fetchone()[0]  # type: ignore[index]
                    for t in ("stg_events", "stg_rejects", "batch_ledger")}

    def cleanup(self, namespace: str) -> None:
        self.infra.delete_kafka_topics(namespace)
        s = self.schema_for(namespace)
        if self.schema:
            self._execute(*(f'DELETE FROM "{s}".{t}' for t in ("stg_events", "stg_rejects", "batch_ledger")))
        else:
            self._execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
        shutil.rmtree(self.checkpoint_dir(namespace), ignore_errors=True)
        self.timings.pop(namespace, None)
