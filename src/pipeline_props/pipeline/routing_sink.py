"""The shared streaming query's foreachBatch sink: one Postgres transaction per micro-batch, all namespaces.

Per micro-batch, RoutingSink claims the batch in the stream ledger (with the
offsets it covers), writes each namespace's rows to that namespace's staging
schema (its batch_ledger row included) and files rows of unknown namespaces
as unrouted, all in ONE transaction: a replayed batch finds its ledger row
and is skipped whole. SharedStream (pipeline/stream.py) runs the query and
waits on :class:`SinkState`, which the sink updates after each COMMIT.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from pipeline_props.errors import PipelineStageError
from pipeline_props.pipeline import staging
from pipeline_props.pipeline.messages import NAMESPACE_HEADER

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["LEDGER_DDL", "Offsets", "RoutingSink", "SinkState"]

log = logging.getLogger(__name__)

#: Offsets as (topic, partition) -> the next offset to read (one past the last committed).
Offsets = dict[tuple[str, int], int]

LEDGER_DDL = (
    sql.SQL("CREATE SCHEMA IF NOT EXISTS {schema}"),
    sql.SQL("""CREATE TABLE IF NOT EXISTS {schema}.stream_ledger (
    batch_id bigint PRIMARY KEY, offsets text NOT NULL, rows_in int NOT NULL,
    namespaces text NOT NULL, committed_at timestamptz NOT NULL)"""),
    sql.SQL("""CREATE TABLE IF NOT EXISTS {schema}.unrouted (
    batch_id bigint NOT NULL, kafka_topic text NOT NULL, kafka_partition int NOT NULL,
    kafka_offset bigint NOT NULL, namespace text, reason text NOT NULL, raw_record text,
    PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset))"""),
)


@dataclass
class SinkState:
    """What the sink shares with the waiters (guarded by ``cond``)."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    committed: Offsets = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)  # namespace -> staging schema
    batches: int = 0
    skipped: int = 0  # replayed batches the ledger already had
    unrouted: int = 0
    batch_seconds: list[tuple[float, float]] = field(default_factory=list)  # (Spark collect, Postgres write)
    #: Tests only: runs after a batch's COMMIT with its batch_id; raising there is
    #: a crash after the write and before Spark's checkpoint commit (a replay follows).
    after_commit: Callable[[int], None] | None = None


class RoutingSink:
    """foreachBatch sink of the shared query: one transaction per micro-batch, all namespaces."""

    def __init__(self, dsn: str, ledger_schema: str, state: SinkState, write_timeout_s: float) -> None:
        self._dsn = dsn
        self._ledger = sql.Identifier(ledger_schema)
        self._state = state
        self.write_timeout_s = write_timeout_s

    def __repr__(self) -> str:  # never show the DSN
        return f"RoutingSink(ledger={self._ledger.as_string(None)!r})"  # type: ignore[arg-type]

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        started = time.perf_counter()
        table = batch_df.toArrow()  # the projection is in the query's plan: no new planning here
        collected = time.perf_counter()
        offsets = _batch_offsets(table)
        # Routes are read and the rows written under the condition's lock, so a
        # namespace cleaned up meanwhile never gets rows after its cleanup.
        with self._state.cond:
            routes = dict(self._state.routes)
            try:
                written = self._write(int(batch_id), table, offsets, routes)
            except psycopg.Error as exc:
                raise PipelineStageError(
                    "staging", f"batch {batch_id}: {type(exc).__name__}: {staging.redact(str(exc), self._dsn)}"
                ) from None
            for key, end in offsets.items():
                if end > self._state.committed.get(key, -1):
                    self._state.committed[key] = end
            self._state.batches += 1
            self._state.skipped += 0 if written else 1
            self._state.batch_seconds.append((collected - started, time.perf_counter() - collected))
            self._state.cond.notify_all()
            hook = self._state.after_commit
        log.info("stream batch %d: %d rows, %s", batch_id, table.num_rows,
                 "written" if written else "already committed: skipped")
        if written and hook is not None:
            hook(int(batch_id))

    def _write(self, batch_id: int, table: pa.Table, offsets: Offsets, routes: Mapping[str, str]) -> bool:
        with staging._connect(self._dsn, write_timeout_s=self.write_timeout_s) as conn:  # noqa: SLF001
            with staging._Watchdog(conn, self.write_timeout_s) as dog:  # noqa: SLF001
                try:
                    return self._write_in(conn, batch_id, table, offsets, routes)
                except psycopg.Error as exc:
                    if not dog.fired:
                        raise
                    raise PipelineStageError(
                        "staging", f"batch {batch_id}: no answer from Postgres within "
                        f"{self.write_timeout_s:g} s: connection cut, the batch fails and is replayed") from exc

    def _write_in(self, conn: psycopg.Connection, batch_id: int, table: pa.Table, offsets: Offsets,
                  routes: Mapping[str, str]) -> bool:
        names = table.column("kafka_namespace")
        present = sorted({n for n in names.to_pylist() if n is not None} | ({None} if names.null_count else set()),
                         key=lambda n: (n is None, n or ""))
        claimed = conn.execute(
            sql.SQL("INSERT INTO {}.stream_ledger (batch_id, offsets, rows_in, namespaces, committed_at)"
                    " VALUES (%s, %s, %s, %s, clock_timestamp()) ON CONFLICT (batch_id) DO NOTHING"
                    " RETURNING batch_id").format(self._ledger),
            (batch_id, _offsets_json(offsets), table.num_rows, json.dumps(present)),
        ).fetchone()
        if claimed is None:  # committed before: Spark replays a batch it had not checkpointed
            conn.rollback()
            return False
        for namespace in present:
            mask = pc.is_null(names) if namespace is None else pc.equal(names, namespace)
            rows = table.filter(mask)
            schema = routes.get(namespace) if namespace is not None else None
            if schema is None:
                self._file_unrouted(conn, batch_id, rows, namespace)
                continue
            valid, rejects = staging.split_rows(rows)
            ident = sql.Identifier(schema)
            # A schema's ledger row is claimed with the stream's, so it cannot be
            # taken already; a schema that several namespaces share in turn is
            # emptied (batch_ledger too) between them.
            staging.claim_batch(conn, ident, batch_id, valid.num_rows, rejects.num_rows)
            staging.insert_rows(conn, ident, valid, rejects)
        conn.commit()
        return True

    def _file_unrouted(self, conn: psycopg.Connection, batch_id: int, rows: pa.Table,
                       namespace: str | None) -> None:
        reason = (f"namespace {namespace!r} is not registered (cleaned up, or never prepared)"
                  if namespace is not None else f"no {NAMESPACE_HEADER} header")
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL("INSERT INTO {}.unrouted (batch_id, kafka_topic, kafka_partition, kafka_offset,"
                        " namespace, reason, raw_record) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                        " ON CONFLICT DO NOTHING").format(self._ledger),
                [(batch_id, t, p, o, namespace, reason, (r or "").replace("\x00", staging.NUL_REPLACEMENT))
                 for t, p, o, r in zip(rows.column("kafka_topic").to_pylist(),
                                       rows.column("kafka_partition").to_pylist(),
                                       rows.column("kafka_offset").to_pylist(),
                                       rows.column("raw_record").to_pylist(), strict=True)])
        self._state.unrouted += rows.num_rows


def _batch_offsets(table: pa.Table) -> Offsets:
    """(topic, partition) -> one past the largest offset in the batch.

    Every message becomes a row (parse never drops one), so this is the end of
    the batch's offset range for each partition that had data.
    """
    if table.num_rows == 0:
        return {}
    grouped = table.select(["kafka_topic", "kafka_partition", "kafka_offset"]).group_by(
        ["kafka_topic", "kafka_partition"]).aggregate([("kafka_offset", "max")])
    return {(t, int(p)): int(o) + 1 for t, p, o in zip(grouped.column("kafka_topic").to_pylist(),
                                                       grouped.column("kafka_partition").to_pylist(),
                                                       grouped.column("kafka_offset_max").to_pylist(),
                                                       strict=True)}


def _offsets_json(offsets: Offsets) -> str:
    nested: dict[str, dict[str, int]] = {}
    for (topic, partition), end in sorted(offsets.items()):
        nested.setdefault(topic, {})[str(partition)] = end
    return json.dumps(nested, sort_keys=True)
