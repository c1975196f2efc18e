"""SnowflakeWarehousePipeline: the same Kafka and Spark stages, with a Snowflake warehouse.

CSV -> ingest (Kafka) -> transform (Spark, checkpointed) -> Snowflake staging
sink -> dbt-snowflake marts -> export. Selected with ``--warehouse snowflake``.
The target is the local fakesnow emulator, or a real account when the
``snowflake_*`` settings name one (``InfrastructureManager.snowflake``); the
code path is the same. docs/snowflake.md has the details and the emulator's
known differences.

The sink loads a micro-batch into per-schema load tables (Parquet file, PUT to
an internal stage, COPY INTO: what ``write_pandas`` does, ~0.05 s for 10k rows
on the emulator against ~15 s for a multi-row INSERT), then in ONE transaction
claims the batch in ``batch_ledger`` and moves the rows into the staging tables
with ``NOT EXISTS`` on (file_index, record_number): Snowflake enforces no key,
so that guard and the ledger make a replayed batch (a crash before Spark's
checkpoint) a no-op. DDL commits implicitly on Snowflake, so every CREATE
runs before the transaction.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline_props.errors import InfrastructureError, PipelineStageError
from pipeline_props.infra.fakesnow import SnowflakeEndpoint
from pipeline_props.pipeline import export, ingest, model, streaming_query
from pipeline_props.pipeline.reference import StageTimings
from pipeline_props.tables import TableSet

STAGE = "staging"
_TABLES = ("stg_events", "stg_rejects", "batch_ledger")

_EVENT_TYPES = (
    ("file_index", "integer"), ("source_file", "varchar"), ("record_number", "bigint"),
    ("event_id", "varchar"), ("order_id", "varchar"), ("customer_id", "varchar"),
    ("product_id", "varchar"), ("category", "varchar"), ("region", "varchar"), ("channel", "varchar"),
    ("quantity", "integer"), ("unit_price", "number(11,2)"), ("discount", "number(4,3)"),
    ("currency", "varchar"))
_REJECT_TYPES = (
    ("file_index", "integer"), ("source_file", "varchar"), ("record_number", "bigint"),
    ("event_id", "varchar"), ("reason", "varchar"), ("raw_record", "varchar"))


def _columns(types: Sequence[tuple[str, str]], nullable: Collection[str] = ()) -> str:
    return ", ".join(f"{c} {t}" + ("" if c in nullable else " not null") for c, t in types)


def _all(types: Sequence[tuple[str, str]]) -> set[str]:
    return {c for c, _ in types}


_DDL = (
    "create schema if not exists {s}",
    "create table if not exists {s}.stg_events (" + _columns(_EVENT_TYPES)
    + ", event_time timestamp_tz not null, raw_record varchar not null)",
    "create table if not exists {s}.stg_rejects (" + _columns(_REJECT_TYPES, {"event_id"}) + ")",
    "create table if not exists {s}.batch_ledger (batch_id bigint not null, rows_valid integer not null, "
    "rows_rejected integer not null, committed_at timestamp_tz not null)",
    "create stage if not exists {s}.pp_load",
)
#: Load tables: the Arrow shape of StagingSink._collect (event_time as epoch microseconds).
_LOAD_DDL = {
    "events": "create or replace transient table {s}.pp_load_events ("
              + _columns(_EVENT_TYPES, _all(_EVENT_TYPES)) + ", event_time_us bigint, raw_record varchar)",
    "rejects": "create or replace transient table {s}.pp_load_rejects ("
               + _columns(_REJECT_TYPES, _all(_REJECT_TYPES)) + ")",
}
_EVENT_COLS = ", ".join(c for c, _ in _EVENT_TYPES)
_REJECT_COLS = ", ".join(c for c, _ in _REJECT_TYPES)
_MOVE = {
    "events": "insert into {s}.stg_events (" + _EVENT_COLS + ", event_time, raw_record) select "
              + ", ".join(f"l.{c}" for c, _ in _EVENT_TYPES)
              + ", to_timestamp_tz(l.event_time_us, 6), l.raw_record from {s}.pp_load_events l "
              "where not exists (select 1 from {s}.stg_events e "
              "where e.file_index = l.file_index and e.record_number = l.record_number)",
    "rejects": "insert into {s}.stg_rejects (" + _REJECT_COLS + ") select "
               + ", ".join(f"l.{c}" for c, _ in _REJECT_TYPES) + " from {s}.pp_load_rejects l "
               "where not exists (select 1 from {s}.stg_rejects r "
               "where r.file_index = l.file_index and r.record_number = l.record_number)",
}
#: One writer per schema at a time in this process (the load tables are per schema).
_lock = threading.Lock()


def check_schema(schema: str) -> str:
    """``schema`` if it is a plain identifier (unquoted: Snowflake stores it upper case)."""
    if not schema or not schema.replace("_", "").isalnum() or not schema.isascii() or schema[0].isdigit():
        raise PipelineStageError(STAGE, f"schema name {schema!r} must be ASCII letters, digits, _")
    return schema


@contextlib.contextmanager
def connection(endpoint: SnowflakeEndpoint, *, what: str, schema: str | None = None) -> Iterator[Any]:
    """A bounded connection; a SQL failure becomes PipelineStageError(``what``) naming the service."""
    import snowflake.connector

    conn = endpoint.connect(schema=schema)
    try:
        yield conn
    except snowflake.connector.errors.Error as exc:
        problem = " ".join(str(exc).split())[:600]
        if isinstance(exc, (snowflake.connector.errors.OperationalError,
                            snowflake.connector.errors.InterfaceError)):
            raise InfrastructureError(endpoint.service, f"{what}: {problem}",
                                      hint="`pipeline-props services status` shows the services") from None
        raise PipelineStageError(what, f"{endpoint.service}: {problem}") from None
    finally:
        with contextlib.suppress(Exception):
            conn.close()


@contextlib.contextmanager
def bounded_connector(endpoint: SnowflakeEndpoint) -> Iterator[None]:
    """While dbt runs, give its connector calls our timeouts (dbt-snowflake passes none).

    dbt-snowflake calls ``snowflake.connector.connect`` without login, network
    or socket timeouts; against a wedged server the connector would retry for
    ever. dbt runs in this process one invocation at a time, so the module
    attribute is swapped for the invocation and restored after it.
    """
    import snowflake.connector

    original = snowflake.connector.connect
    bounds = {k: v for k, v in endpoint.connect_args().items() if k.endswith("_timeout")}

    def connect(*args: Any, **kwargs: Any) -> Any:
        return original(*args, **{**bounds, **kwargs})

    snowflake.connector.connect = connect
    try:
        yield
    finally:
        snowflake.connector.connect = original


def ensure_database(endpoint: SnowflakeEndpoint) -> None:
    """On the emulator, create the database (a real account's database must exist already)."""
    if endpoint.emulator:
        with connection(endpoint, what="prepare") as conn:
            conn.cursor().execute(f"create database if not exists {endpoint.database}")


class SnowflakeStagingSink:
    """foreachBatch sink into Snowflake staging tables: one transaction per batch, idempotent on replay."""

    def __init__(self, endpoint: SnowflakeEndpoint, schema: str) -> None:
        self._endpoint = endpoint
        self._schema = check_schema(schema)
        self.batches_written = 0
        self.batches_skipped = 0

    def __call__(self, batch_df: Any, batch_id: int) -> None:
        """Write one micro-batch, or skip it if its batch_id is in the ledger."""
        from pipeline_props.pipeline.staging import StagingSink

        valid, rejects = StagingSink._collect(batch_df)  # noqa: SLF001 - same Arrow shape on purpose
        with _lock, connection(self._endpoint, what=STAGE, schema=self._schema) as conn:
            written = self._write(conn, int(batch_id), {"events": valid, "rejects": rejects})
        if written:
            self.batches_written += 1
        else:
            self.batches_skipped += 1

    def _write(self, conn: Any, batch_id: int, tables: dict[str, Any]) -> bool:
        s = self._schema
        cur = conn.cursor()
        if cur.execute(f"select count(*) from {s}.batch_ledger where batch_id = %s",
                       (batch_id,)).fetchone()[0]:
            return False
        loaded = [kind for kind, table in tables.items() if table.num_rows]
        for kind in loaded:
            self._load(cur, kind, tables[kind], batch_id)
        cur.execute("begin")
        cur.execute(f"insert into {s}.batch_ledger select %s, %s, %s, current_timestamp() "
                    f"where not exists (select 1 from {s}.batch_ledger where batch_id = %s)",
                    (batch_id, tables["events"].num_rows, tables["rejects"].num_rows, batch_id))
        if cur.rowcount != 1:  # claimed meanwhile (a replay racing the original)
            cur.execute("rollback")
            return False
        for kind in loaded:
            cur.execute(_MOVE[kind].format(s=s))
        cur.execute("commit")
        return True

    def _load(self, cur: Any, kind: str, table: Any, batch_id: int) -> None:
        """The Arrow table into its load table: Parquet, PUT to the schema's stage, COPY INTO."""
        import pyarrow.parquet as pq

        s = self._schema
        cur.execute(_LOAD_DDL[kind].format(s=s))
        folder = Path(tempfile.mkdtemp(prefix="pp-snowflake-"))
        try:
            path = folder / f"{kind}_{batch_id}.parquet"
            pq.write_table(table, path)
            prefix = f"{kind}/{batch_id}"
            cur.execute(f"put 'file://{path}' @{s}.pp_load/{prefix} overwrite=true auto_compress=false")
            cur.execute(f"copy into {s}.pp_load_{kind} from @{s}.pp_load/{prefix} "
                        "file_format=(type=parquet) match_by_column_name=case_insensitive purge=true force=true")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        got = cur.execute(f"select count(*) from {s}.pp_load_{kind}").fetchone()[0]
        if got != table.num_rows:
            raise PipelineStageError(STAGE, f"batch {batch_id}: loaded {got} of {table.num_rows} {kind} rows")


class SnowflakeWarehousePipeline:
    """Kafka -> Spark -> Snowflake staging -> dbt-snowflake marts (emulator or real account).

    ``schema`` fixes the warehouse schema for every namespace (as in
    :class:`~pipeline_props.pipeline.reference.ReferencePipeline`): prepare
    empties its staging tables and dbt reuses one parsed manifest.
    """

    name = "snowflake-warehouse"

    def __init__(self, infra: Any, *, partitions: int | None = None, schema: str | None = None) -> None:
        self.infra = infra
        self.partitions = partitions or infra.settings.run.kafka_partitions
        self.schema = schema
        self.timings: dict[str, StageTimings] = {}
        #: The runner's kafka_messages.jsonl while it ingests (as ReferencePipeline).
        self.messages_out: Any = None

    @property
    def endpoint(self) -> SnowflakeEndpoint:
        """The target (starts the local emulator when it is the one and not running)."""
        return self.infra.snowflake

    def schema_for(self, namespace: str) -> str:
        """The warehouse schema of ``namespace``."""
        return check_schema(self.schema or namespace)

    def checkpoint_dir(self, namespace: str) -> Path:
        return Path(self.infra.infra.home) / "checkpoints" / f"snowflake_{namespace}"

    def _execute(self, what: str, *statements: str) -> None:
        with connection(self.endpoint, what=what) as conn:
            cur = conn.cursor()
            for stmt in statements:
                cur.execute(stmt)

    def prepare(self, namespace: str) -> None:
        endpoint = self.endpoint
        ensure_database(endpoint)
        s = self.schema_for(namespace)
        self._execute("prepare", *(stmt.format(s=s) for stmt in _DDL))
        if self.schema:
            self._execute("prepare", *(f"delete from {s}.{t}" for t in _TABLES))
        self.infra.setup_kafka_topics(namespace, partitions=self.partitions)

    def ingest(self, namespace: str, files: Sequence[tuple[str, bytes]]) -> ingest.IngestStats:
        return ingest.ingest_files(files, bootstrap_servers=self.infra.kafka_bootstrap, topic=namespace,
                                   run_id=namespace, messages_out=self.messages_out)

    def sink(self, namespace: str) -> SnowflakeStagingSink:
        """The foreachBatch sink of ``namespace`` (tests drive it directly)."""
        return SnowflakeStagingSink(self.endpoint, self.schema_for(namespace))

    def transform(self, namespace: str) -> streaming_query.TransformStats:
        """The streaming query (availableNow) into the Snowflake staging tables."""
        return streaming_query.run_available_now(
            self.infra.spark, bootstrap_servers=self.infra.kafka_bootstrap, topic=namespace,
            checkpoint_dir=str(self.checkpoint_dir(namespace)), sink=self.sink(namespace))

    def target(self, namespace: str) -> model.WarehouseTarget:
        """The dbt target of ``namespace``."""
        e = self.endpoint
        return model.WarehouseTarget(
            kind="snowflake", schema=self.schema_for(namespace), host=e.host or "", port=e.port or 443,
            user=e.user, password=e.password, dbname=e.database, account=e.account, role=e.role,
            warehouse=e.warehouse, protocol=e.protocol if e.emulator else "",
            private_key_path=e.private_key_path, private_key_passphrase=e.private_key_passphrase)

    def model(self, namespace: str) -> model.DbtResult:
        """dbt build on Snowflake, every connector call bounded; a failing dbt test is a pipeline failure."""
        with bounded_connector(self.endpoint):
            result = model.run_dbt(self.target(namespace), reuse_manifest=self.schema is not None)
        if not result.success:
            raise PipelineStageError("model", "dbt build failed: " + "; ".join(result.failures[:5]))
        return result

    def wait_until_caught_up(self, namespace: str, timeout: float = 600.0) -> dict[str, Any]:
        stats = self.transform(namespace)
        self.model(namespace)
        return {"transform": stats}

    def read_tables(self, namespace: str) -> TableSet:
        return export.export_snowflake(self.endpoint, self.schema_for(namespace))

    def staging_counts(self, namespace: str) -> dict[str, int]:
        """Rows in stg_events, stg_rejects and batch_ledger (for the validators)."""
        s = self.schema_for(namespace)
        with connection(self.endpoint, what="export") as conn:
            cur = conn.cursor()
            return {t: int(cur.execute(f"select count(*) from {s}.{t}").fetchone()[0]) for t in _TABLES}

    def cleanup(self, namespace: str) -> None:
        self.infra.delete_kafka_topics(namespace)
        s = self.schema_for(namespace)
        if self.schema:
            self._execute("cleanup", *(f"delete from {s}.{t}" for t in _TABLES))
        else:
            self._execute("cleanup", f"drop schema if exists {s} cascade")
        shutil.rmtree(self.checkpoint_dir(namespace), ignore_errors=True)
        self.timings.pop(namespace, None)
