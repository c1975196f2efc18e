"""Postgres staging sink: one transaction per micro-batch, idempotent on replay.

Spark's foreachBatch may call the sink again with a batch it already wrote
(the query crashed after the write, before its checkpoint commit). The sink
makes that harmless twice over: the batch ledger row is inserted in the same
transaction as the data, so a committed batch_id is skipped as a whole, and
rows go in with ``ON CONFLICT (file_index, record_number) DO NOTHING``, so a
record the producer sent twice (in any two batches) is stored once.

Data travels as CSV through COPY into temporary tables. event_time travels as
epoch microseconds (a bigint) and becomes a timestamptz in SQL with integer
arithmetic, so no client or JVM time zone and no float can touch it.
"""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import threading
from collections.abc import Callable

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.copy import QueuedLibpqWriter
from pyspark.sql import DataFrame

from pipeline_props.contract import COLUMNS
from pipeline_props.errors import PipelineStageError

log = logging.getLogger(__name__)

STAGE = "staging"

#: PostgreSQL text cannot hold U+0000; it is stored as this character instead
#: (only raw_record and a rejected row's event_id can contain it: every valid
#: value excludes control characters).
NUL_REPLACEMENT = "\ufffd"

EVENT_COLUMNS: tuple[str, ...] = ("file_index", "source_file", "record_number", *COLUMNS, "raw_record")
REJECT_COLUMNS: tuple[str, ...] = (
    "file_index",
    "source_file",
    "record_number",
    "event_id",
    "reason",
    "raw_record",
)

#: The staging tables (docs/architecture.md), ``{schema}`` a psycopg.sql.Identifier.
STAGING_DDL: tuple[sql.SQL, ...] = (
    sql.SQL("CREATE SCHEMA IF NOT EXISTS {schema}"),
    sql.SQL(
        """CREATE TABLE IF NOT EXISTS {schema}.stg_events (
    file_index int NOT NULL, source_file text NOT NULL, record_number bigint NOT NULL,
    event_id text NOT NULL, order_id text NOT NULL, customer_id text NOT NULL,
    product_id text NOT NULL, category text NOT NULL, region text NOT NULL,
    channel text NOT NULL, quantity integer NOT NULL, unit_price numeric(11,2) NOT NULL,
    discount numeric(4,3) NOT NULL, currency text NOT NULL, event_time timestamptz NOT NULL,
    raw_record text NOT NULL,
    PRIMARY KEY (file_index, record_number))"""
    ),
    sql.SQL(
        """CREATE TABLE IF NOT EXISTS {schema}.stg_rejects (
    file_index int NOT NULL, source_file text NOT NULL, record_number bigint NOT NULL,
    event_id text, reason text NOT NULL, raw_record text NOT NULL,
    PRIMARY KEY (file_index, record_number))"""
    ),
    sql.SQL(
        """CREATE TABLE IF NOT EXISTS {schema}.batch_ledger (
    batch_id bigint PRIMARY KEY, rows_valid int NOT NULL, rows_rejected int NOT NULL,
    committed_at timestamptz NOT NULL)"""
    ),
)

_TEMP_DDL = (
    sql.SQL(
        """CREATE TEMP TABLE IF NOT EXISTS _pp_events (
    file_index int, source_file text, record_number bigint, event_id text, order_id text,
    customer_id text, product_id text, category text, region text, channel text,
    quantity integer, unit_price numeric(11,2), discount numeric(4,3), currency text,
    event_time_us bigint, raw_record text) ON COMMIT DROP"""
    ),
    sql.SQL(
        """CREATE TEMP TABLE IF NOT EXISTS _pp_rejects (
    file_index int, source_file text, record_number bigint, event_id text, reason text,
    raw_record text) ON COMMIT DROP"""
    ),
)

# Epoch microseconds -> timestamptz exactly: whole seconds through to_timestamp
# (an integer-valued float8, exact below 2^53) plus the microseconds as an
# integer multiple of an interval.
_EVENT_TIME_FROM_US = (
    "to_timestamp((event_time_us - ((event_time_us % 1000000) + 1000000) % 1000000) / 1000000)"
    " + (((event_time_us % 1000000) + 1000000) % 1000000) * interval '1 microsecond'"
)


#: Default bound on one micro-batch's write (StagingSink.write_timeout_s).
DEFAULT_WRITE_TIMEOUT_S = 900.0

#: libpq settings the sink adds unless the DSN sets them: a peer that vanished or
#: a link that stops acknowledging is noticed in ~30 s, not after the kernel's 2 h.
_SINK_LIBPQ = {"connect_timeout": "10", "keepalives": "1", "keepalives_idle": "10",
               "keepalives_interval": "5", "keepalives_count": "3", "tcp_user_timeout": "30000"}


def _connect(dsn: str, *, write_timeout_s: float | None = None) -> psycopg.Connection:
    if write_timeout_s is not None:
        # The sink's connections: the server also ends a statement or an open
        # transaction that outlives the write's bound (a client that vanished
        # mid-transaction must not hold the batch_ledger row lock forever).
        # synchronous_commit=on whatever the server's default: Spark commits its
        # checkpoint as soon as the sink returns, so a COMMIT that a Postgres crash
        # can still take back (asynchronous commit) would lose the batch for good.
        ms = int(write_timeout_s * 1000)
        given = conninfo_to_dict(dsn)
        options = " ".join(filter(None, [str(given.get("options") or ""), f"-c statement_timeout={ms}",
                                         f"-c idle_in_transaction_session_timeout={ms}",
                                         "-c synchronous_commit=on"]))
        dsn = make_conninfo(dsn, **{**_SINK_LIBPQ, **given, "options": options})
    try:
        return psycopg.connect(dsn, autocommit=False)
    except psycopg.Error as exc:
        raise PipelineStageError(STAGE, f"cannot connect to Postgres: {redact(str(exc), dsn)}") from None


class _Watchdog:
    """Shuts a connection's socket down when a batch write outlives its bound.

    psycopg has no read timeout: a session whose response never comes (a peer
    that stays connected and silent) would block the foreachBatch callback, and
    with it ``query.stop()``, forever. shutdown() on the socket wakes the blocked
    read and libpq reports the connection lost: the batch fails loudly and Spark
    replays it (if the COMMIT did land, the ledger makes the replay a no-op).
    Leaving the context joins the timer thread, so it never touches a closed
    descriptor.
    """

    def __init__(self, conn: psycopg.Connection, seconds: float) -> None:
        self._fd = conn.fileno()
        self._seconds = seconds
        self._done = threading.Event()
        self.fired = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="pp-staging-watchdog")

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        if self._done.wait(self._seconds):
            return
        self.fired = True
        try:
            with socket.socket(fileno=os.dup(self._fd)) as dup:
                dup.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def create_staging(dsn: str, schema: str) -> None:
    """Create ``schema`` and its three staging tables (no-op when they exist)."""
    ident = sql.Identifier(schema)
    with _connect(dsn) as conn:
        for stmt in STAGING_DDL:
            conn.execute(stmt.format(schema=ident))


def drop_schema(dsn: str, schema: str) -> None:
    """Drop ``schema`` and everything in it (no-op when it does not exist)."""
    with _connect(dsn) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def redact(text: str, dsn: str | None = None) -> str:
    """``text`` with passwords (of ``dsn`` and any conninfo/URL form) masked."""
    if dsn:
        try:
            password = conninfo_to_dict(dsn).get("password")
        except psycopg.Error:
            password = None
        if password:
            text = text.replace(str(password), "***")
    text = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text, flags=re.IGNORECASE)
    return re.sub(r"(://[^:/@\s]+:)[^@\s]*@", r"\1***@", text)


class StagingSink:
    """foreachBatch sink writing validate() output to the staging tables.

    ``after_commit`` (tests only) runs after a batch's COMMIT with its
    batch_id; making it raise simulates a crash after the write and before
    Spark's checkpoint commit, so the batch is replayed on restart.

    ``write_timeout_s`` bounds one batch's write (connect to COMMIT): past it
    the connection is cut on the client side and ended on the server side, and
    the batch fails with a PipelineStageError instead of blocking the stream.
    """

    def __init__(
        self,
        dsn: str,
        schema: str,
        *,
        after_commit: Callable[[int], None] | None = None,
        write_timeout_s: float = DEFAULT_WRITE_TIMEOUT_S,
    ) -> None:
        self._dsn = dsn
        self._schema = schema
        self._ident = sql.Identifier(schema)
        self._after_commit = after_commit
        self.write_timeout_s = write_timeout_s
        #: Batches committed and skipped (already in the ledger) by this sink object.
        self.batches_written = 0
        self.batches_skipped = 0

    def __repr__(self) -> str:  # never show the DSN
        return f"StagingSink(schema={self._schema!r})"

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        """Write one micro-batch in one transaction, or skip it if already committed."""
        valid, rejects = self._collect(batch_df)
        try:
            written = self._write(int(batch_id), valid, rejects)
        except psycopg.Error as exc:
            raise PipelineStageError(
                STAGE, f"batch {batch_id}: {type(exc).__name__}: {redact(str(exc), self._dsn)}"
            ) from None
        if written:
            self.batches_written += 1
            log.info("staging batch %d: %d valid, %d rejected", batch_id, valid.num_rows, rejects.num_rows)
            if self._after_commit is not None:
                self._after_commit(int(batch_id))
        else:
            self.batches_skipped += 1
            log.info("staging batch %d already committed: skipped", batch_id)

    @staticmethod
    def _collect(batch_df: DataFrame) -> tuple[pa.Table, pa.Table]:
        """The batch as two Arrow tables (valid rows, rejects) in the temp-table column order."""
        # One Spark job: tag rows, then split on the driver (cheap in Arrow). SQL
        # text, so the projection is one Py4J call rather than one per expression.
        return split_rows(batch_df.selectExpr(*SINK_PROJECTION).toArrow())

    def _write(self, batch_id: int, valid: pa.Table, rejects: pa.Table) -> bool:
        with _connect(self._dsn, write_timeout_s=self.write_timeout_s) as conn:
            with _Watchdog(conn, self.write_timeout_s) as dog:
                try:
                    return self._write_in(conn, batch_id, valid, rejects)
                except psycopg.Error as exc:
                    if not dog.fired:
                        raise
                    raise PipelineStageError(
                        STAGE, f"batch {batch_id}: no answer from Postgres within {self.write_timeout_s:g} s: "
                        f"connection cut, the batch fails and is replayed ({type(exc).__name__}: "
                        f"{redact(str(exc), self._dsn)})") from None

    def _write_in(self, conn: psycopg.Connection, batch_id: int, valid: pa.Table, rejects: pa.Table) -> bool:
        if not claim_batch(conn, self._ident, batch_id, valid.num_rows, rejects.num_rows):
            conn.rollback()  # committed before (a concurrent writer would have blocked above)
            return False
        insert_rows(conn, self._ident, valid, rejects)
        conn.commit()
        return True


def _text(name: str) -> str:
    return f"replace({name}, chr(0), '{NUL_REPLACEMENT}') AS {name}"


#: The sink's projection of validate() output (Spark SQL text): a validity tag and
#: the temp tables' columns. A streaming query may apply it inside its own plan,
#: so that each micro-batch is collected without planning another query.
SINK_PROJECTION: tuple[str, ...] = (
    "reason IS NULL AS _valid",
    "CAST(file_index AS INT) AS file_index",
    "source_file",
    "CAST(record_number AS BIGINT) AS record_number",
    _text("event_id"),
    "order_id", "customer_id", "product_id", "category", "region", "channel",
    "CAST(quantity AS INT) AS quantity",
    "CAST(unit_price AS DECIMAL(11,2)) AS unit_price",
    "CAST(discount AS DECIMAL(4,3)) AS discount",
    "currency",
    "unix_micros(event_time) AS event_time_us",
    _text("raw_record"),
    "reason",
)


def split_rows(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """SINK_PROJECTION rows as (valid rows, rejects), each in its temp table's column order."""
    is_valid = table.column("_valid")
    event_cols = [c if c != "event_time" else "event_time_us" for c in EVENT_COLUMNS]
    return (table.filter(is_valid).select(event_cols),
            table.filter(pc.invert(is_valid)).select(list(REJECT_COLUMNS)))


def claim_batch(conn: psycopg.Connection, schema: sql.Identifier, batch_id: int, valid: int,
                rejected: int) -> bool:
    """Insert ``batch_id`` into the schema's batch_ledger; False when it was committed before."""
    claimed = conn.execute(
        sql.SQL(
            "INSERT INTO {}.batch_ledger (batch_id, rows_valid, rows_rejected, committed_at)"
            " VALUES (%s, %s, %s, clock_timestamp()) ON CONFLICT (batch_id) DO NOTHING"
            " RETURNING batch_id"
        ).format(schema),
        (batch_id, valid, rejected),
    ).fetchone()
    return claimed is not None


def insert_rows(conn: psycopg.Connection, schema: sql.Identifier, valid: pa.Table, rejects: pa.Table) -> None:
    """Add a batch's rows to the schema's staging tables, inside the caller's transaction.

    First a COPY straight into the staging tables, under a savepoint: a
    batch's records are new almost always, and the primary key's unique
    violation tells when one is not (a producer retry sent it twice, or it
    repeats inside the batch). Then the savepoint is rolled back and the rows
    go through temporary tables (dropped at COMMIT; emptied here when a
    transaction writes to several schemas) and ``ON CONFLICT (file_index,
    record_number) DO NOTHING``, so a record sent twice is stored once. The
    direct COPY halves the load (measured: 0.48 s against 0.44 + 0.45 s for
    200k rows).
    """
    if _copy_straight(conn, schema, valid, rejects):
        return
    for stmt in _TEMP_DDL:
        conn.execute(stmt)
    with conn.cursor() as cur:
        if valid.num_rows:
            _copy(cur, sql.Identifier("_pp_events"), valid)
            cols = sql.SQL(", ").join(sql.Identifier(c) for c in EVENT_COLUMNS)
            select = sql.SQL(", ").join(
                sql.SQL(_EVENT_TIME_FROM_US) if c == "event_time" else sql.Identifier(c)
                for c in EVENT_COLUMNS
            )
            cur.execute(
                sql.SQL(
                    "INSERT INTO {}.stg_events ({}) SELECT {} FROM _pp_events"
                    " ON CONFLICT (file_index, record_number) DO NOTHING"
                ).format(schema, cols, select)
            )
        if rejects.num_rows:
            _copy(cur, sql.Identifier("_pp_rejects"), rejects)
            cols = sql.SQL(", ").join(sql.Identifier(c) for c in REJECT_COLUMNS)
            cur.execute(
                sql.SQL(
                    "INSERT INTO {}.stg_rejects ({}) SELECT {} FROM _pp_rejects"
                    " ON CONFLICT (file_index, record_number) DO NOTHING"
                ).format(schema, cols, cols)
            )
        cur.execute("TRUNCATE _pp_events, _pp_rejects")


def _copy_straight(conn: psycopg.Connection, schema: sql.Identifier, valid: pa.Table, rejects: pa.Table) -> bool:
    """COPY the rows into the staging tables under a savepoint; False (and nothing kept) when one is there already."""
    try:
        with conn.transaction(), conn.cursor() as cur:
            if valid.num_rows:
                at = valid.column_names.index("event_time_us")
                events = valid.set_column(at, "event_time",
                                          valid.column(at).cast(pa.timestamp("us", tz="UTC")))
                _copy(cur, sql.SQL("{}.stg_events").format(schema), events)
            if rejects.num_rows:
                _copy(cur, sql.SQL("{}.stg_rejects").format(schema), rejects)
    except psycopg.errors.UniqueViolation:
        return False
    return True


#: Rows per CSV chunk of a COPY (about 14 MB of the staging rows).
COPY_CHUNK_ROWS = 65536

# quoting_style "needed" quotes every string (so '' stays an empty string)
# and leaves nulls as bare empty fields, which COPY ... CSV reads as NULL.
_CSV_OPTIONS = pa_csv.WriteOptions(include_header=False, quoting_style="needed")


def _copy(cur: psycopg.Cursor, table: sql.Composable | str, data: pa.Table) -> None:
    """COPY an Arrow table into ``table`` (a name, or a composed qualified one) as CSV (NULL
    unquoted-empty, '' quoted; timestamps with a Z).

    Chunk by chunk, through psycopg's queued writer: Arrow writes the next
    chunk's CSV (without the GIL) while a psycopg thread sends the last one and
    Postgres parses it. Measured on 1M staging rows: 2.5 s against 3.7 s for one
    CSV block written, then sent.
    """
    if isinstance(table, str):
        table = sql.Identifier(table)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in data.column_names)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(table, cols)
    with cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
        for batch in data.to_batches(max_chunksize=COPY_CHUNK_ROWS):
            buf = io.BytesIO()
            pa_csv.write_csv(batch, buf, write_options=_CSV_OPTIONS)
            copy.write(buf.getbuffer())
