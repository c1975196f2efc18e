"""The transform started before ingest (``begin_transform``), as `pipeline-props run` drives the reference pipeline.

Spark consumes while the producer sends; ``transform`` waits until the query
has finished a micro-batch at the topic's end offsets, then stops it. The
tables must equal the oracle's, a query nobody waits for must not outlive its
namespace, and a query that cannot catch up is a clear, bounded error.
"""

from __future__ import annotations

import time
import uuid

import pytest

from pipeline_props.compare import compare
from pipeline_props.errors import PipelineStageError, UsageError
from pipeline_props.oracles import run_oracle
from pipeline_props.pipeline import streaming_query
from pipeline_props.pipeline.reference import ReferencePipeline
from pipeline_props.strategies import DataGenerationConfig, DataGenerator

pytestmark = pytest.mark.integration


def _files(rows: int) -> list[tuple[str, bytes]]:
    gen = DataGenerator(DataGenerationConfig(seed=5))
    return list(gen.generate_test_scenario_data("data_quality_issues", rows).files)


def _active_ids(infrastructure) -> set[str]:
    return {q.id for q in infrastructure.spark.streams.active}


def test_a_transform_begun_before_ingest_equals_the_oracle(infrastructure) -> None:
    pipeline = ReferencePipeline(infrastructure)
    namespace = f"pp_overlap_{uuid.uuid4().hex[:6]}"
    files = _files(400)
    pipeline.prepare(namespace)
    before = _active_ids(infrastructure)
    try:
        pipeline.begin_transform(namespace)
        started = _active_ids(infrastructure) - before
        istats = pipeline.ingest(namespace, files)
        stats = pipeline.transform(namespace)
        assert stats.rows == istats.records and stats.batches >= 1
        assert len(started) == 1 and not started & _active_ids(infrastructure)  # stopped once caught up
        pipeline.model(namespace)
        divergence = compare(pipeline.read_tables(namespace), run_oracle(files).tables)
        assert divergence.ok, divergence.render(max_rows=5)
    finally:
        pipeline.cleanup(namespace)


def _trigger(pipeline: ReferencePipeline, namespace: str) -> str:
    query = pipeline._live[namespace][0]
    return str(query._jsq.streamingQuery().trigger().toString())


@pytest.mark.parametrize("bulk", [False, True], ids=["small input", "large input"])
def test_a_large_input_gets_the_bulk_trigger_and_still_equals_the_oracle(infrastructure, bulk: bool) -> None:
    pipeline = ReferencePipeline(infrastructure)
    namespace = f"pp_overlap_{uuid.uuid4().hex[:6]}"
    files = _files(200)
    size = pipeline.bulk_bytes if bulk else sum(len(data) for _, data in files)
    pipeline.prepare(namespace)
    try:
        pipeline.begin_transform(namespace, input_bytes=size)
        assert _trigger(pipeline, namespace) == ("ProcessingTimeTrigger(2000)" if bulk else "ProcessingTimeTrigger(100)")
        pipeline.ingest(namespace, files)
        pipeline.transform(namespace)
        pipeline.model(namespace)
        divergence = compare(pipeline.read_tables(namespace), run_oracle(files).tables)
        assert divergence.ok, divergence.render(max_rows=5)
    finally:
        pipeline.cleanup(namespace)


def test_a_negative_input_size_is_refused(infrastructure) -> None:
    with pytest.raises(UsageError, match="input_bytes=-1"):
        ReferencePipeline(infrastructure).begin_transform("pp_unused", input_bytes=-1)


def test_a_begun_transform_nobody_waits_for_stops_with_its_namespace(infrastructure) -> None:
    pipeline = ReferencePipeline(infrastructure)
    namespace = f"pp_overlap_{uuid.uuid4().hex[:6]}"
    pipeline.prepare(namespace)
    before = _active_ids(infrastructure)
    try:
        pipeline.begin_transform(namespace)
        started = _active_ids(infrastructure) - before
        assert len(started) == 1
    finally:
        pipeline.cleanup(namespace)  # an ingest that failed: the runner cleans up without a transform
    assert not started & _active_ids(infrastructure)


def test_a_query_that_cannot_catch_up_is_a_bounded_error_and_is_stopped(infrastructure) -> None:
    pipeline = ReferencePipeline(infrastructure, partitions=1)
    namespace = f"pp_overlap_{uuid.uuid4().hex[:6]}"
    pipeline.prepare(namespace)
    try:
        pipeline.ingest(namespace, _files(20))
        sink = pipeline.sink_factory(infrastructure.postgres_dsn, namespace)
        query = streaming_query.start_stream(
            infrastructure.spark, bootstrap_servers=infrastructure.kafka_bootstrap, topic=namespace,
            checkpoint_dir=str(pipeline.checkpoint_dir(namespace)), sink=sink,
            trigger="processing_time", processing_time="100 milliseconds")
        started = time.monotonic()
        with pytest.raises(PipelineStageError, match=r"did not catch up within 3 s .*0: \(20, 10020\)"):
            streaming_query.await_caught_up(query, namespace, {0: 10_020}, started=started, timeout=3)
        assert time.monotonic() - started < 30
        assert not query.isActive
    finally:
        pipeline.cleanup(namespace)
