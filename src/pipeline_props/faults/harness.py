"""The fault harness: one namespace of the real pipeline, driven batch by batch under an :class:`ErrorInjector`.

:class:`FaultHarness` drives one namespace through the real pipeline stages
(the ReferencePipeline's producer settings, sink and dbt project) with the
pipeline's clients behind the :class:`ErrorInjector`'s proxies. Datasets go in
as *batches*: batch k is file k of the dataset (header-only placeholder files
keep ``file_index = k`` for the real ingest stage), so the oracle over the
acknowledged batches, in order, is the expected warehouse.

A stream run under faults is faults/stream_run.py, the reads of topic and staging
faults/observe.py; the scenarios that use the harness are in faults/scenarios.py, and
faults/runner.py runs one.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_props import contract as C
from pipeline_props.compare import compare, normalise_table
from pipeline_props.errors import PipelinePropsError, UsageError
from pipeline_props.faults import observe
from pipeline_props.faults.findings import Findings, Position, classify
from pipeline_props.faults.disk import TmpfsTablespace, mount_tmpfs, unmount_tmpfs
from pipeline_props.faults.injector import PRODUCER_FAULT_CONFIG, ErrorInjector
from pipeline_props.faults.stream_run import (
    QUERY_STOP_TIMEOUT_S,
    StreamOutcome,
    fault_sink,
    run_available_now,
    run_killed_driver,
)
from pipeline_props.infra import InfrastructureManager
from pipeline_props.protocol import FaultHooks, require
from pipeline_props.strategies import PLAIN_HEADER

#: A header-only file: sends nothing, but takes a file_index (a batch not acknowledged, a placeholder).
HEADER_ONLY = PLAIN_HEADER + b"\n"

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
        files = [(f"_placeholder_{i}.csv", HEADER_ONLY) for i in range(batch.file_index)]
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
        return fault_sink(self.pipeline, self.injector, self.schema, stop_requested)

    def run_stream(self, timeout_s: float | None = None) -> StreamOutcome:
        """One availableNow run of the real transform on the real checkpoint.

        A failed run is an outcome, not an exception; only a query that cannot
        be stopped within ``stop_timeout_s`` raises (PipelineStageError).
        """
        kill_at = self.injector.armed.driver_kill
        if kill_at:
            return run_killed_driver(self.injector, topic=self.ns, checkpoint_dir=self.checkpoint_dir,
                                     schema=self.schema, kill_at=kill_at,
                                     timeout_s=timeout_s or self.stream_timeout_s)
        return run_available_now(self.infra, self.injector, topic=self.ns, checkpoint_dir=self.checkpoint_dir,
                                 sink=self._sink, timeout_s=timeout_s or self.stream_timeout_s,
                                 stop_timeout_s=self.stop_timeout_s)

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
    def topic_end_offsets(self) -> dict[int, int]:
        """The end (high watermark) offset of each partition of the topic now."""
        return observe.topic_end_offsets(self.infra, self.ns)

    def topic_messages(self) -> list[tuple[int, int, Position | None]]:
        """Every message in the topic as (partition, offset, position); position None for a foreign one."""
        return observe.topic_messages(self.infra, self.ns)

    def staging_positions(self) -> tuple[list[Position], int]:
        """Positions in stg_events and stg_rejects (one entry per row), and the count of foreign rejects."""
        return observe.staging_positions(self.infra, self.schema)

    def expected_tables(self) -> dict[str, list[tuple]]:
        """The oracle over the acknowledged batches (others as header-only files, to keep file_index)."""
        from pipeline_props.oracles import run_oracle

        files = [(b.name, b.data if b.status == "acked" else HEADER_ONLY) for b in self.batches]
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


#: Data faults: values that are not pipeline messages (bad JSON, wrong schema, truncated, a broken compact one).
CORRUPT_VALUES: list[bytes] = [
    b"{not json",
    b'{"v":1,"file":"x.csv"}',
    b'{"v":1,"file":"x.csv","file_index":"three","record":1,"raw":"a","malformed":null,"fields":null}',
    b'{"v":1,"run":"r","file":"s.csv","file_index":0,"rec',
    b"",
    b"[1,2,3]",
    b"#2,0,1",  # the compact form's prefix without a position
    b"#2,x,1,s.csv,a,b",
]



__all__ = ["CORRUPT_VALUES", "HEADER_ONLY", "Batch", "FaultHarness", "StreamOutcome"]
