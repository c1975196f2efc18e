"""Incremental marts: k arrival batches, k incremental runs, each equal to the oracle so far, and the end
equal to one full refresh (docs/properties.md, "Incremental marts").

The pipeline is the reference pipeline with the dbt project in its
incremental mode (pipeline/incremental.py) on the session's shared stream, in
one warehouse schema, its models run as the SQL dbt compiled (both the first
build and the ``is_incremental()`` branch: pipeline/compiled_incremental.py).
The example Hypothesis reports runs the real ``dbt run`` for every batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_props.pipeline.compiled_incremental import IncrementalProject
from pipeline_props.pipeline.incremental import IncrementalPipeline
from pipeline_props.pipeline.reference import postgres_target
from pipeline_props.pipeline.stream import SharedStream
from pipeline_props.strategies import SalesDataset, sales_datasets
from pipeline_props.testing.datasets import split_dataset
from pipeline_props.testing.incremental import check_incremental_case, incremental_cases
from pipeline_props.testing.profiles import examples_for
from pipeline_props.testing.properties import check_against_oracle, check_ingest_twice, check_same_marts
from pipeline_props.testing.runs import fresh_namespace, run_pipeline
from pipeline_props.testing.xdist import per_worker

pytestmark = [pytest.mark.properties, pytest.mark.integration]

SCHEMA = per_worker("pp_incremental_props")
METAMORPHIC = examples_for("metamorphic")
CASES = incremental_cases()


@pytest.fixture(scope="module")
def incremental(infrastructure: Any, shared_stream: SharedStream) -> Iterator[IncrementalPipeline]:
    """The incremental pipeline on the shared stream, one schema, the compiled incremental project."""
    project = IncrementalProject.compile(postgres_target(infrastructure, SCHEMA), infrastructure.postgres_dsn)
    yield IncrementalPipeline(infrastructure, partitions=2, schema=SCHEMA, stream=shared_stream,
                              model_mode="compiled", compiled=project)
    infrastructure.drop_schema(SCHEMA)


@settings(max_examples=METAMORPHIC)
@given(case=CASES)
def test_k_incremental_runs_equal_the_oracle_and_one_full_refresh(
    incremental: IncrementalPipeline, case: tuple[SalesDataset, int, list[int]],
) -> None:
    """After every batch the tables equal the oracle so far; at the end, a full refresh and the whole dataset."""
    check_incremental_case(incremental, case)


# -- the existing properties in incremental mode (one batch: the first build), thorough profile only


@pytest.mark.slow
@settings(max_examples=METAMORPHIC)
@given(dataset=sales_datasets(max_rows=12, files=(1, 2), error_rate=0.25, duplicate_rate=0.25))
def test_incremental_mode_equals_the_oracle(incremental: IncrementalPipeline, dataset: SalesDataset) -> None:
    """Property 1 on the incremental mode's first build."""
    check_against_oracle(incremental, dataset, fresh_namespace())


@pytest.mark.slow
@settings(max_examples=METAMORPHIC)
@given(dataset=sales_datasets(max_rows=12, files=1, error_rate=0.25, duplicate_rate=0.25),
       cuts=st.lists(st.integers(1, 11), min_size=1, max_size=3))
def test_incremental_mode_split_invariance_and_ingest_twice(incremental: IncrementalPipeline,
                                                            dataset: SalesDataset, cuts: list[int]) -> None:
    """Properties 3 and 4 on the incremental mode."""
    original = check_against_oracle(incremental, dataset, fresh_namespace())
    if not original:
        return
    split = SalesDataset(files=tuple(split_dataset(dataset.files, cuts)))
    parts = run_pipeline(incremental, fresh_namespace(), split.files)
    check_same_marts(original, parts, {"one file": dataset, "split": split},
                     property_name="split invariance (incremental mode)", positions_invariant=False,
                     pipeline=incremental)
    twice = check_against_oracle(incremental, SalesDataset(files=dataset.files * 2), fresh_namespace(),
                                 property_name="idempotence (incremental mode)")
    check_ingest_twice(original, twice, dataset, pipeline=incremental)
