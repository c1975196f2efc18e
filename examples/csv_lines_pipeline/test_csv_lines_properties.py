"""The pipeline-props properties on the team's pipeline: `pytest --hypothesis-profile=ci examples/csv_lines_pipeline`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from csv_lines import CsvLinesPipeline
from pipeline_props.errors import DivergenceError
from pipeline_props.repro import read_repro
from pipeline_props.strategies import SalesDataset, sales_datasets
from pipeline_props.testing.datasets import split_dataset
from pipeline_props.testing.properties import check_against_oracle, check_partition_sums, check_same_marts
from pipeline_props.testing.profiles import current_profile
from pipeline_props.testing.protocol import PipelineUnderTest
from pipeline_props.testing.runs import fresh_namespace, run_pipeline

pytestmark = [pytest.mark.properties, pytest.mark.integration]

#: A few examples in ci (the repository's whole suite has a 15 min budget), many at night.
EXAMPLES = {"dev": 5, "ci": 12, "thorough": 300}[current_profile()]
DATASETS = sales_datasets(max_rows=12, files=(1, 2), error_rate=0.25, duplicate_rate=0.25)


def test_the_pipeline_implements_the_protocol(csv_lines_pipeline: CsvLinesPipeline) -> None:
    assert isinstance(csv_lines_pipeline, PipelineUnderTest)


@settings(max_examples=EXAMPLES)
@given(dataset=DATASETS)
def test_every_table_equals_the_oracle(csv_lines_pipeline: CsvLinesPipeline, dataset: SalesDataset) -> None:
    tables = check_against_oracle(csv_lines_pipeline, dataset, fresh_namespace())
    if tables:
        check_partition_sums(tables, dataset, pipeline=csv_lines_pipeline)


@settings(max_examples=max(3, EXAMPLES // 3))
@given(dataset=sales_datasets(max_rows=12, files=1, error_rate=0.25, duplicate_rate=0.25),
       cuts=st.lists(st.integers(1, 11), min_size=1, max_size=3))
def test_one_file_or_several_gives_the_same_marts(csv_lines_pipeline: CsvLinesPipeline,
                                                  dataset: SalesDataset, cuts: list[int]) -> None:
    original = check_against_oracle(csv_lines_pipeline, dataset, fresh_namespace())
    if original:
        split = SalesDataset(files=tuple(split_dataset(dataset.files, cuts)))
        parts = run_pipeline(csv_lines_pipeline, fresh_namespace(), split.files)
        check_same_marts(original, parts, {"one file": dataset, "split": split},
                         property_name="split invariance", positions_invariant=False,
                         pipeline=csv_lines_pipeline)


@pytest.fixture
def with_refund_bug(csv_lines_pipeline: CsvLinesPipeline) -> Iterator[CsvLinesPipeline]:
    """The same pipeline with its deliberate bug on (a refund's quantity loses its sign)."""
    csv_lines_pipeline.refund_bug = True
    try:
        yield csv_lines_pipeline
    finally:
        csv_lines_pipeline.refund_bug = False


def test_the_refund_bug_is_caught(with_refund_bug: CsvLinesPipeline) -> None:
    """The ci check: one refund through the buggy pipeline diverges, rows side by side."""
    header = b"event_id,order_id,customer_id,product_id,category,region,channel,quantity,unit_price," \
             b"discount,currency,event_time\n"
    refund = header + b"e1,o1,c1,p1,toys,NA,online,-1,1.00,,USD,2024-01-01T00:00:00Z\n"
    with pytest.raises(DivergenceError, match="table daily_sales"):
        check_against_oracle(with_refund_bug, [("sales.csv", refund)], fresh_namespace(), write_repro=False)


@pytest.mark.slow  # about 30 s: a search, then about a hundred shrinking runs
def test_the_refund_bug_is_caught_and_shrunk_to_one_refund(with_refund_bug: CsvLinesPipeline,
                                                           tmp_path: Path) -> None:
    @settings(max_examples=60, database=None, phases=[Phase.generate, Phase.shrink],
              report_multiple_bugs=False, suppress_health_check=list(HealthCheck), deadline=None)
    @given(dataset=sales_datasets(max_rows=6, files=1, error_rate=0.1))  # small: a short shrink
    def prop(dataset: SalesDataset) -> None:
        check_against_oracle(with_refund_bug, dataset, fresh_namespace(), repro_root=tmp_path)

    with pytest.raises(DivergenceError) as info:
        prop()
    assert "property 'equals the oracle' does not hold for pipeline 'csv-lines'" in str(info.value)
    (folder,) = tmp_path.iterdir()  # only the shrunk example is written
    (files,) = read_repro(folder).datasets.values()
    shrunk = SalesDataset(files=files)
    assert shrunk.row_count <= 2, shrunk  # a sale and its refund, at most
    assert b",-" in files[0][1], "a refund (negative quantity) is left"


def test_run_dataset_drives_a_five_method_pipeline(csv_lines_pipeline: CsvLinesPipeline,
                                                   infrastructure: object, tmp_path: Path) -> None:
    """`run_dataset` (the job behind `pipeline-props run`) on layer 1: tables compared, stage checks skipped."""
    import json

    from pipeline_props.config import load_settings
    from pipeline_props.runner import run_dataset

    settings = load_settings(overrides={"run": {"artifacts_dir": str(tmp_path)}})
    header = b"event_id,order_id,customer_id,product_id,category,region,channel,quantity,unit_price," \
             b"discount,currency,event_time\n"
    files = [("sales.csv", header + b"e1,o1,c1,p1,toys,NA,online,2,1.05,,USD,2024-01-01T00:00:00Z\n")]
    result = run_dataset(files, settings=settings, infra=infrastructure, pipeline=csv_lines_pipeline)
    assert result.verdict == "HELD", result.validation_summary
    meta = json.loads((result.artifacts_dir / "metadata.json").read_text())
    assert meta["skipped"][0].startswith("skipped: per-stage timings, kafka_messages.jsonl and the kafka")
    assert "offers no partitions, messages_out, timings, transform" in meta["skipped"][0]
