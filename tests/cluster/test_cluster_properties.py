"""The differential properties on the cluster: 3 brokers (replication 3), Spark standalone (2 executors).

The same checks as tests/properties (testing/properties.py) through the
session's shared stream, here the cluster's: every table equals the oracle
and the daily sums hold; the same files sent in another Kafka order over 4
partitions give the same tables. ``slow``: they need the cluster (about 30 s
to start on this 2-core machine) and a Spark session of their own, so ci
leaves them to the thorough profile and ``pytest -m cluster``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_props.pipeline.compiled import CompiledProject
from pipeline_props.pipeline.reference import ReferencePipeline, postgres_target
from pipeline_props.strategies import SalesDataset, sales_datasets
from pipeline_props.testing.profiles import current_profile, examples_for
from pipeline_props.testing.properties import check_against_oracle, check_partition_sums, check_same_marts
from pipeline_props.testing.runs import fresh_namespace, run_pipeline
from pipeline_props.testing.xdist import per_worker

pytestmark = [pytest.mark.cluster, pytest.mark.properties, pytest.mark.slow]

SCHEMA = per_worker("pp_cluster_properties")
#: ci runs a few examples on the cluster; thorough the full tiers.
FULL = examples_for("full") if current_profile() == "thorough" else 8
METAMORPHIC = examples_for("metamorphic") if current_profile() == "thorough" else 3
DIRTY = sales_datasets(max_rows=12, files=(1, 2), error_rate=0.25, duplicate_rate=0.25)


@pytest.fixture(scope="module")
def pipeline(cluster_infra: Any, cluster_stream: Any) -> Iterator[ReferencePipeline]:
    """The reference pipeline on the cluster's shared stream, 2 partitions, compiled marts."""
    compiled = CompiledProject.compile(postgres_target(cluster_infra, SCHEMA))
    yield ReferencePipeline(cluster_infra, partitions=2, schema=SCHEMA, stream=cluster_stream,
                            model_mode="compiled", compiled=compiled)
    cluster_infra.drop_schema(SCHEMA)


@pytest.fixture(scope="module")
def wide_pipeline(cluster_infra: Any, cluster_stream: Any, pipeline: ReferencePipeline) -> ReferencePipeline:
    """The same, over 4 partitions."""
    return ReferencePipeline(cluster_infra, partitions=4, schema=SCHEMA, stream=cluster_stream,
                             model_mode="compiled", compiled=pipeline.compiled)


@settings(max_examples=FULL, deadline=None)
@given(dataset=DIRTY)
def test_every_table_equals_the_oracle_on_the_cluster(pipeline: ReferencePipeline, dataset: SalesDataset) -> None:
    """Properties 1 and 5 on the cluster."""
    tables = check_against_oracle(pipeline, dataset, fresh_namespace())
    if tables:
        check_partition_sums(tables, dataset, pipeline=pipeline)


@settings(max_examples=METAMORPHIC, deadline=None)
@given(dataset=DIRTY, order=st.lists(st.integers(0, 50), min_size=2, max_size=12))
def test_kafka_arrival_order_over_4_partitions_changes_nothing_on_the_cluster(
    pipeline: ReferencePipeline, wide_pipeline: ReferencePipeline, dataset: SalesDataset, order: list[int],
) -> None:
    """Property 2, exact form, on the cluster: same files, another arrival order, 4 partitions."""
    original = check_against_oracle(pipeline, dataset, fresh_namespace())
    if not original:
        return
    sent = io.StringIO()
    wide_pipeline.messages_out = sent
    try:
        moved = run_pipeline(wide_pipeline, fresh_namespace(), dataset.files, arrival_order=order)
    finally:
        wide_pipeline.messages_out = None
    assert len(sent.getvalue().splitlines()) == sum(1 for _ in map(json.loads, sent.getvalue().splitlines()))
    check_same_marts(original, moved, {"original": dataset, "arrival shuffled, 4 partitions": dataset},
                     property_name="order independence (Kafka arrival, cluster)", positions_invariant=True,
                     pipeline=wide_pipeline)
