"""The differential properties against the Snowflake target (docs/snowflake.md).

Kafka -> Spark -> Snowflake staging sink -> dbt-snowflake marts -> export,
against the local fakesnow emulator (or the account of the E2E_SNOWFLAKE_*
settings), compared with the DuckDB oracle by the same reusable checks as the
Postgres path. One emulator for the session and one fixed schema for the
module (staging tables emptied between examples, dbt's manifest reused).

Nothing is loosened for the emulator: where it differs from Snowflake
(docs/snowflake.md, "Emulator differences"), the models are written so both
agree, and a divergence that is still an emulator artifact must be reported
as one, naming the documented difference, never compared away.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from pipeline_props.pipeline.snowflake_warehouse import SnowflakeWarehousePipeline
from pipeline_props.strategies import SalesDataset, sales_datasets
from pipeline_props.testing.datasets import split_dataset
from pipeline_props.testing.profiles import current_profile, examples_for
from pipeline_props.testing.properties import check_against_oracle, check_partition_sums, check_same_marts
from pipeline_props.testing.protocol import PipelineUnderTest
from pipeline_props.testing.runs import fresh_namespace, run_pipeline
from pipeline_props.testing.xdist import per_worker

pytestmark = [pytest.mark.properties, pytest.mark.integration, pytest.mark.snowflake]

SCHEMA = per_worker("pp_properties_sf")
#: A few examples in ci (each a Spark query and a dbt build on the emulator, 5-10 s under load); all in thorough.
EXAMPLES = examples_for("full") if current_profile() == "thorough" else min(examples_for("full"), 3)
DIRTY = sales_datasets(max_rows=12, files=(1, 2), error_rate=0.25, duplicate_rate=0.25)
ONE_FILE = sales_datasets(max_rows=12, files=1, error_rate=0.25, duplicate_rate=0.25)


@pytest.fixture(scope="module")
def pipeline(infrastructure: Any) -> Iterator[SnowflakeWarehousePipeline]:
    """The Snowflake pipeline in fixed-schema mode; the session's emulator starts on first use."""
    infrastructure.spark  # noqa: B018 - start Spark before the first example's clock
    pipe = SnowflakeWarehousePipeline(infrastructure, partitions=2, schema=SCHEMA)
    assert isinstance(pipe, PipelineUnderTest)
    pipe.endpoint  # noqa: B018 - start the emulator outside the examples
    yield pipe
    pipe._execute("cleanup", f"drop schema if exists {SCHEMA} cascade")  # noqa: SLF001


@settings(max_examples=EXAMPLES)
@given(dataset=DIRTY)
def test_every_table_equals_the_oracle_and_daily_sums_hold(pipeline: SnowflakeWarehousePipeline,
                                                           dataset: SalesDataset) -> None:
    """Properties 1 and 5 on Snowflake."""
    tables = check_against_oracle(pipeline, dataset, fresh_namespace())
    if tables:
        check_partition_sums(tables, dataset, pipeline=pipeline)


@settings(max_examples=max(2, EXAMPLES // 2))
@given(dataset=ONE_FILE, cuts=st.lists(st.integers(1, 11), min_size=1, max_size=3))
def test_one_file_or_several_gives_the_same_tables(pipeline: SnowflakeWarehousePipeline,
                                                    dataset: SalesDataset, cuts: list[int]) -> None:
    """Property 3 (metamorphic) on Snowflake: marts and audit equal; rejected rows modulo position."""
    original = check_against_oracle(pipeline, dataset, fresh_namespace())
    if not original:
        return
    split = SalesDataset(files=tuple(split_dataset(dataset.files, cuts)))
    event(f"split into {len(split.files)} file(s)")
    parts = run_pipeline(pipeline, fresh_namespace(), split.files)
    check_same_marts(original, parts, {"one file": dataset, "split": split},
                     property_name="split invariance", positions_invariant=False, pipeline=pipeline)
