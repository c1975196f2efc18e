"""Full tier: the properties of docs/properties.md through the real services.

One set of services, one long-lived streaming query (the session's
``shared_stream``) and one warehouse schema for the whole module: every
example gets a fresh namespace routed through the shared topics, the staging
tables are emptied between examples and the marts are built by the SQL dbt
compiled the project to, so an example costs a produce, one micro-batch and a
model run (about 0.5 s: benchmarks/test_bench_fast_path.py). The example
Hypothesis reports runs the real ``dbt build`` (testing/runs.py).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from pipeline_props import contract as C
from pipeline_props.errors import DivergenceError
from pipeline_props.oracles import run_oracle
from pipeline_props.pipeline.duckdb_warehouse import DuckDBWarehousePipeline
from pipeline_props.pipeline.ingest import iter_jsonl
from pipeline_props.pipeline.compiled import CompiledProject
from pipeline_props.pipeline.reference import ReferencePipeline, postgres_target
from pipeline_props.pipeline.stream import SharedStream
from pipeline_props.strategies import SalesDataset, sales_datasets
from pipeline_props.testing.datasets import shuffle_dataset, split_dataset
from pipeline_props.testing.properties import (
    check_against_oracle,
    check_ingest_twice,
    check_partition_sums,
    check_same_marts,
)
from pipeline_props.testing.profiles import examples_for
from pipeline_props.testing.protocol import PipelineUnderTest
from pipeline_props.testing.runs import fresh_namespace, run_pipeline
from pipeline_props.testing.xdist import per_worker

pytestmark = [pytest.mark.properties, pytest.mark.integration]

SCHEMA = per_worker("pp_properties")  # pytest -n 2: one schema per worker
FULL = examples_for("full")
METAMORPHIC = examples_for("metamorphic")
DIRTY = sales_datasets(max_rows=12, files=(1, 2), error_rate=0.25, duplicate_rate=0.25)
ONE_FILE = sales_datasets(max_rows=12, files=1, error_rate=0.25, duplicate_rate=0.25)


@pytest.fixture(scope="module")
def pipeline(infrastructure: Any, shared_stream: SharedStream) -> Iterator[ReferencePipeline]:
    """The reference pipeline on the shared stream, fixed-schema mode, compiled marts (2 partitions)."""
    compiled = CompiledProject.compile(postgres_target(infrastructure, SCHEMA))
    yield ReferencePipeline(infrastructure, partitions=2, schema=SCHEMA, stream=shared_stream,
                            model_mode="compiled", compiled=compiled)
    shared_stream.pause()
    infrastructure.drop_schema(SCHEMA)


@pytest.fixture(scope="module")
def wide_pipeline(infrastructure: Any, shared_stream: SharedStream, pipeline: ReferencePipeline) -> ReferencePipeline:
    """The same pipeline and schema with records spread over 4 partitions (its own shared topic)."""
    return ReferencePipeline(infrastructure, partitions=4, schema=SCHEMA, stream=shared_stream,
                             model_mode="compiled", compiled=pipeline.compiled)


@settings(max_examples=FULL)
@given(dataset=DIRTY)
def test_every_table_equals_the_oracle_and_daily_sums_hold(pipeline: ReferencePipeline,
                                                           dataset: SalesDataset) -> None:
    """Properties 1 and 5."""
    tables = check_against_oracle(pipeline, dataset, fresh_namespace())
    if tables:
        check_partition_sums(tables, dataset, pipeline=pipeline)


@settings(max_examples=METAMORPHIC)
@given(dataset=DIRTY, order=st.lists(st.integers(0, 50), min_size=1, max_size=12),
       file_order=st.permutations([0, 1]))
def test_shuffled_records_and_more_partitions_change_nothing(
    pipeline: ReferencePipeline, wide_pipeline: ReferencePipeline, dataset: SalesDataset,
    order: list[int], file_order: list[int],
) -> None:
    """Property 2: records shuffled within files, files reordered, 4 partitions instead of 2.

    The records move, so their positions do: rejected_rows is compared modulo position.
    """
    original = check_against_oracle(pipeline, dataset, fresh_namespace())
    if not original:
        return
    shuffled = SalesDataset(files=tuple(shuffle_dataset(dataset.files, order, file_order)))
    if shuffled == dataset:
        event("shuffle changed nothing")
    moved = run_pipeline(wide_pipeline, fresh_namespace(), shuffled.files)
    check_same_marts(original, moved, {"original": dataset, "shuffled, 4 partitions": shuffled},
                     property_name="order independence", positions_invariant=False,
                     pipeline=wide_pipeline)


@settings(max_examples=METAMORPHIC)
@given(dataset=DIRTY, order=st.lists(st.integers(0, 50), min_size=2, max_size=12))
def test_kafka_arrival_order_and_more_partitions_change_nothing(
    pipeline: ReferencePipeline, wide_pipeline: ReferencePipeline, dataset: SalesDataset,
    order: list[int],
) -> None:
    """Property 2, exact form: the same files sent to Kafka in another order, over 4 partitions.

    Every record keeps its file and record number, so every table, rejected_rows
    included, must equal the first run's (and so the oracle's).
    """
    original = check_against_oracle(pipeline, dataset, fresh_namespace())
    if not original:
        return
    sent = io.StringIO()
    wide_pipeline.messages_out = sent
    try:
        moved = run_pipeline(wide_pipeline, fresh_namespace(), dataset.files, arrival_order=order)
    finally:
        wide_pipeline.messages_out = None
    # One message a line: split on "\n" only (splitlines also splits inside a raw U+0085 or U+2028).
    lines = [line for line in sent.getvalue().split("\n") if line]
    positions = [(m["file_index"], m["record"]) for m in iter_jsonl(lines)]
    in_dataset_order = sorted(positions)
    ranked = [p for _, p in sorted(((order[i % len(order)], i), p) for i, p in enumerate(in_dataset_order))]
    assert positions == ranked, "the producer did not send the records in the drawn arrival order"
    event("Kafka arrival order shuffled" if positions != in_dataset_order else "arrival order unchanged")
    check_same_marts(original, moved, {"original": dataset, "arrival shuffled, 4 partitions": dataset},
                     property_name="order independence (Kafka arrival)", positions_invariant=True,
                     pipeline=wide_pipeline)


@settings(max_examples=METAMORPHIC)
@given(dataset=ONE_FILE, cuts=st.lists(st.integers(1, 11), min_size=1, max_size=3))
def test_one_file_or_several_gives_the_same_tables(pipeline: ReferencePipeline, dataset: SalesDataset,
                                                    cuts: list[int]) -> None:
    """Property 3: marts and audit equal; rejected rows equal modulo position."""
    original = check_against_oracle(pipeline, dataset, fresh_namespace())
    if not original:
        return
    split = SalesDataset(files=tuple(split_dataset(dataset.files, cuts)))
    event(f"split into {len(split.files)} file(s)")
    parts = run_pipeline(pipeline, fresh_namespace(), split.files)
    check_same_marts(original, parts, {"one file": dataset, "split": split},
                     property_name="split invariance", positions_invariant=False, pipeline=pipeline)


@settings(max_examples=METAMORPHIC)
@given(dataset=ONE_FILE)
def test_ingesting_a_file_twice_only_adds_duplicates(pipeline: ReferencePipeline,
                                                     dataset: SalesDataset) -> None:
    """Property 4: the pipeline on the file twice, against the oracle on it once (and twice)."""
    try:
        once = run_oracle(dataset.files).tables
    except Exception:  # a refused file: property 1 covers refusals
        return
    twice_ds = SalesDataset(files=dataset.files * 2)
    twice = check_against_oracle(pipeline, twice_ds, fresh_namespace(), property_name="idempotence")
    check_ingest_twice(once, twice, dataset, pipeline=pipeline)


@settings(max_examples=2)
@given(dataset=sales_datasets(max_rows=8, files=(1, 2), error_rate=0.25, duplicate_rate=0.25))
def test_the_checks_drive_any_pipeline_the_duckdb_warehouse_too(infrastructure: Any,
                                                                dataset: SalesDataset) -> None:
    """The protocol is not tied to ReferencePipeline: the DuckDB warehouse path, same checks."""
    duck = DuckDBWarehousePipeline(infrastructure, schema=per_worker("pp_properties_duck"),
                                   database=Path(infrastructure.infra.home) / "duckdb"
                                   / f"{per_worker('props')}.duckdb")
    assert isinstance(duck, PipelineUnderTest)
    tables = check_against_oracle(duck, dataset, fresh_namespace())
    if tables:
        check_partition_sums(tables, dataset, pipeline=duck)


class _HalfCentRounding:
    """A deliberate bug: daily_sales rounds gross revenue down to 10 cents (wrapped pipeline)."""

    def __init__(self, inner: ReferencePipeline) -> None:
        self.inner = inner
        self.name = "reference with a rounding bug"

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def read_tables(self, namespace: str) -> dict[str, list[tuple]]:
        tables = self.inner.read_tables(namespace)
        tables[C.DAILY_SALES] = [
            (*row[:3], row[3].quantize(Decimal("0.1"), rounding="ROUND_FLOOR").quantize(Decimal("0.01")),
             *row[4:])
            for row in tables[C.DAILY_SALES]
        ]
        return tables


def test_a_rounding_bug_is_caught_with_rows_side_by_side_and_a_repro(
    pipeline: ReferencePipeline, tmp_path: Path
) -> None:
    header = ",".join(C.COLUMNS).encode()
    dataset = SalesDataset(files=(("sales.csv", header + b"\ne1,o1,c1,p1,toys,NA,online,1,1.05,,USD,"
                                   b"2024-01-01T00:00:00Z\n"),))
    with pytest.raises(DivergenceError) as info:
        check_against_oracle(_HalfCentRounding(pipeline), dataset, fresh_namespace(), repro_root=tmp_path)
    message = str(info.value)
    assert "table daily_sales: 1 changed" in message
    assert "≠ gross_revenue_usd | 1.00" in message and "| 1.05" in message
    assert "e1,o1,c1,p1,toys,NA,online,1,1.05" in message  # the dataset repr
    folder = info.value.repro_dir  # type: ignore[attr-defined]
    assert folder is not None and folder.parent == tmp_path
    assert (folder / "dataset" / "00" / "sales.csv").read_bytes() == dataset.files[0][1]
    assert "pipeline-props replay" in (folder / "README.md").read_text()
