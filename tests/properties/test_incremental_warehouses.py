"""Incremental marts on DuckDB and Snowflake (strategy merge): k arrival batches, k incremental runs, each
equal to the oracle so far, and the end equal to one full refresh (docs/properties.md, "Incremental marts").

The same check as the Postgres property (test_incremental_properties.py), on
pipeline/warehouse_incremental.py: every step is a real ``dbt build`` (no
compiled mode), after an availableNow Spark query into the warehouse's staging
sink, so an example of k batches costs k times 5-10 s on the loaded machine.
ci runs a handful per warehouse, thorough 25; the ``slow`` variants run bigger
datasets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from pipeline_props.pipeline.warehouse_incremental import (
    DuckDBIncrementalPipeline,
    SnowflakeIncrementalPipeline,
)
from pipeline_props.strategies import SalesDataset
from pipeline_props.testing.incremental import check_incremental_case, incremental_cases
from pipeline_props.testing.profiles import current_profile, examples_for
from pipeline_props.testing.xdist import per_worker

pytestmark = [pytest.mark.properties, pytest.mark.integration]

DUCK_SCHEMA = per_worker("pp_incremental_duck")
SF_SCHEMA = per_worker("pp_incremental_sf")
#: Each example is k real dbt builds (20-60 s on the loaded machine): a handful in ci, 25 in thorough
#: (the ci count of the other metamorphic properties), 10 in the slow variants outside thorough.
THOROUGH = current_profile() == "thorough"
EXAMPLES = 25 if THOROUGH else min(examples_for("metamorphic"), 3)
HEAVY = 25 if THOROUGH else 10
CASES = incremental_cases()
BIG_CASES = incremental_cases(max_rows=40, files=(1, 3))

Case = tuple[SalesDataset, int, list[int]]


@pytest.fixture(scope="module")
def duck(infrastructure: Any) -> Iterator[DuckDBIncrementalPipeline]:
    """The DuckDB incremental pipeline in one schema of a DuckDB file of this worker's own."""
    infrastructure.spark  # noqa: B018 - start Spark before the first example's clock
    database = Path(infrastructure.infra.home) / "duckdb" / f"{per_worker('incremental')}.duckdb"
    yield DuckDBIncrementalPipeline(infrastructure, partitions=2, schema=DUCK_SCHEMA, database=database)
    database.unlink(missing_ok=True)
    Path(f"{database}.wal").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def snow(infrastructure: Any) -> Iterator[SnowflakeIncrementalPipeline]:
    """The Snowflake incremental pipeline in one schema; the session's emulator starts on first use."""
    infrastructure.spark  # noqa: B018
    pipe = SnowflakeIncrementalPipeline(infrastructure, partitions=2, schema=SF_SCHEMA)
    pipe.endpoint  # noqa: B018 - start the emulator outside the examples
    yield pipe
    pipe._execute("cleanup", f"drop schema if exists {SF_SCHEMA} cascade")


@settings(max_examples=EXAMPLES)
@given(case=CASES)
def test_duckdb_k_incremental_merges_equal_the_oracle_and_one_full_refresh(duck: DuckDBIncrementalPipeline,
                                                                           case: Case) -> None:
    """DuckDB (dbt-duckdb, merge): after every batch the oracle so far; at the end a full refresh and the whole."""
    check_incremental_case(duck, case)


@pytest.mark.snowflake
@settings(max_examples=max(2, EXAMPLES - 1))
@given(case=CASES)
def test_snowflake_k_incremental_merges_equal_the_oracle_and_one_full_refresh(snow: SnowflakeIncrementalPipeline,
                                                                              case: Case) -> None:
    """Snowflake (dbt-snowflake, merge, on the emulator or an account): the same property."""
    check_incremental_case(snow, case)


@pytest.mark.slow
@settings(max_examples=HEAVY)
@given(case=BIG_CASES)
def test_duckdb_incremental_merges_on_bigger_datasets(duck: DuckDBIncrementalPipeline, case: Case) -> None:
    """The DuckDB property on up to 40 rows in up to 3 files."""
    check_incremental_case(duck, case)


@pytest.mark.slow
@pytest.mark.snowflake
@settings(max_examples=HEAVY)
@given(case=BIG_CASES)
def test_snowflake_incremental_merges_on_bigger_datasets(snow: SnowflakeIncrementalPipeline, case: Case) -> None:
    """The Snowflake property on up to 40 rows in up to 3 files."""
    check_incremental_case(snow, case)
