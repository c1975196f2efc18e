"""Replays add nothing: a micro-batch Spark runs again, and a record the producer sent twice.

1. The streaming query crashes after the sink committed a micro-batch to
   Postgres and before Spark committed it to the checkpoint (the sink's
   ``after_commit`` hook raises). Restarted on the same checkpoint, Spark runs
   that batch again under the same batch id; the batch ledger makes the sink
   skip it, so staging and the marts are as if nothing had happened.
2. The same messages produced twice (a producer retry without idempotence)
   land in later micro-batches; ``ON CONFLICT (file_index, record_number)
   DO NOTHING`` stores each record once.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Producer
from psycopg import sql

from pipeline_props.compare import compare
from pipeline_props.contract import INGESTION_AUDIT, OUTPUT_TABLES
from pipeline_props.errors import PipelineStageError
from pipeline_props.infra import InfrastructureManager
from pipeline_props.oracles import run_oracle
from pipeline_props.pipeline.ingest import count_topic_messages
from pipeline_props.pipeline.messages import encode
from pipeline_props.pipeline.reader import iter_records
from pipeline_props.pipeline.reference import ReferencePipeline
from pipeline_props.pipeline.staging import StagingSink
from pipeline_props.strategies import DataGenerationConfig, DataGenerator
from pipeline_props.testing.protocol import TableSet

pytestmark = pytest.mark.integration

RECORDS = 40
PER_BATCH = 15  # maxOffsetsPerTrigger on one partition: batches of 15, 15, 10 (+ replays)
CRASH_BATCH = 1


class SimulatedCrash(RuntimeError):
    """Raised by the after_commit hook: the driver dies between the warehouse and checkpoint commits."""


def _dataset(seed: int) -> list[tuple[str, bytes]]:
    """A small generated dataset with rejects and duplicates (one file)."""
    gen = DataGenerator(DataGenerationConfig(seed=seed))
    return list(gen.generate_test_scenario_data("data_quality_issues", RECORDS).files)


def _staging_expectation(expected: TableSet) -> tuple[int, int]:
    """(stg_events, stg_rejects) row counts implied by the oracle's audit row.

    stg_events holds every valid row, so each copy of a duplicate and every
    version of a conflicting duplicate; stg_rejects every other reject.
    """
    audit = dict(zip(OUTPUT_TABLES[INGESTION_AUDIT], expected[INGESTION_AUDIT][0]))
    conflicting = audit["rejected_conflicting_duplicate"]
    return (audit["rows_accepted"] + audit["rows_duplicate"] + conflicting,
            audit["rows_rejected"] - conflicting)


def _ledger(dsn: str, schema: str) -> list[tuple[int, int, int]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql.SQL("SELECT batch_id, rows_valid, rows_rejected FROM {}.batch_ledger"
                                    " ORDER BY batch_id").format(sql.Identifier(schema))).fetchall()


def _assert_staging_and_marts(pipeline: ReferencePipeline, namespace: str,
                              files: list[tuple[str, bytes]]) -> list[tuple[int, int, int]]:
    """Staging holds each record once, the ledger adds up, and the marts equal the oracle."""
    expected = run_oracle(files).tables
    want_events, want_rejects = _staging_expectation(expected)
    counts = pipeline.staging_counts(namespace)
    assert (counts["stg_events"], counts["stg_rejects"]) == (want_events, want_rejects)
    ledger = _ledger(pipeline.infra.postgres_dsn, namespace)
    ids = [b for b, _, _ in ledger]
    assert ids == list(range(len(ids))), f"batch ids not 0..n-1 exactly once: {ids}"
    pipeline.model(namespace)
    divergence = compare(pipeline.read_tables(namespace), expected)
    assert divergence.ok, divergence.render()
    return ledger


@pytest.fixture
def prepared(infrastructure: InfrastructureManager) -> Iterator[tuple[InfrastructureManager, str]]:
    namespace = f"pp_t_replay_{uuid.uuid4().hex[:8]}"
    yield infrastructure, namespace
    ReferencePipeline(infrastructure).cleanup(namespace)


def test_replayed_micro_batch_adds_nothing(prepared: tuple[InfrastructureManager, str]) -> None:
    infra, namespace = prepared
    sinks: list[StagingSink] = []

    def crash_once(batch_id: int) -> None:
        if batch_id == CRASH_BATCH and len(sinks) == 1:
            raise SimulatedCrash(f"simulated crash after the warehouse commit of batch {batch_id}")

    def sink_factory(dsn: str, schema: str) -> StagingSink:
        sink = StagingSink(dsn, schema, after_commit=crash_once)
        sinks.append(sink)
        return sink

    pipeline = ReferencePipeline(infra, partitions=1, sink_factory=sink_factory,
                                 max_offsets_per_trigger=PER_BATCH)
    files = _dataset(seed=12)
    pipeline.prepare(namespace)
    pipeline.ingest(namespace, files)

    with pytest.raises(PipelineStageError, match="simulated crash"):
        pipeline.transform(namespace)
    # The crash fell between the two commits: batch 1 is in the warehouse and
    # in Spark's offset log, but not in its commit log.
    checkpoint = pipeline.checkpoint_dir(namespace)
    assert _logged(checkpoint / "offsets") == {0, 1}
    assert _logged(checkpoint / "commits") == {0}
    assert [b for b, _, _ in _ledger(infra.postgres_dsn, namespace)] == [0, 1]
    assert sinks[0].batches_written == 2

    stats = pipeline.transform(namespace)  # restart on the same checkpoint
    second = sinks[1]
    assert second.batches_skipped == 1, "Spark did not replay the uncommitted batch"
    assert second.batches_written == 1
    assert stats.rows == RECORDS - PER_BATCH  # the replayed batch 1 (15) and batch 2 (10)
    assert _logged(checkpoint / "commits") == {0, 1, 2}

    ledger = _assert_staging_and_marts(pipeline, namespace, files)
    assert [b for b, _, _ in ledger] == [0, 1, 2]
    counts = pipeline.staging_counts(namespace)
    assert sum(v for _, v, _ in ledger) == counts["stg_events"]
    assert sum(r for _, _, r in ledger) == counts["stg_rejects"]


def test_record_produced_twice_lands_once(prepared: tuple[InfrastructureManager, str]) -> None:
    infra, namespace = prepared
    pipeline = ReferencePipeline(infra, partitions=1, max_offsets_per_trigger=PER_BATCH)
    files = _dataset(seed=19)
    pipeline.prepare(namespace)
    pipeline.ingest(namespace, files)

    # A producer retry: the same (key, value) pairs again, after the originals,
    # so they arrive in a later micro-batch than their first copies.
    (name, data), = files
    again = [encode(r, namespace) for r in iter_records(data, source_file=name, file_index=0)][:PER_BATCH + 5]
    producer = Producer({"bootstrap.servers": infra.kafka_bootstrap, "enable.idempotence": False,
                         "acks": "all", "log_level": 3})
    for key, value in again:
        producer.produce(namespace, key=key, value=value)
    assert producer.flush(60) == 0
    assert count_topic_messages(infra.kafka_bootstrap, namespace) == RECORDS + len(again)

    stats = pipeline.transform(namespace)
    assert stats.rows == RECORDS + len(again)
    ledger = _assert_staging_and_marts(pipeline, namespace, files)
    counts = pipeline.staging_counts(namespace)
    # the ledger counts rows offered per batch; the tables hold each record once
    assert sum(v + r for _, v, r in ledger) == RECORDS + len(again)
    assert counts["stg_events"] + counts["stg_rejects"] == RECORDS


def _logged(folder: Path) -> set[int]:
    """Batch ids in a Spark checkpoint log folder (offsets/ or commits/)."""
    return {int(n) for n in os.listdir(folder) if n.isdigit()} if folder.is_dir() else set()

