"""The incremental mode: the compiled run (pipeline/compiled_incremental.py) equals the real ``dbt run``,
and the merge strategy on DuckDB and Snowflake (pipeline/warehouse_incremental.py) gives the same tables.

One dataset with an event accepted in batch 1 and contradicted in batch 3, an
identical copy arriving in batch 2, a reject without an event id in batches 1
and 3, goes through the pipeline with incremental marts: on Postgres once
with ``dbt run`` after each batch and once with the compiled SQL
(delete+insert), on DuckDB and Snowflake with ``dbt build`` (merge). After
every batch the tables equal the oracle over what has arrived (so each
other), and a rerun with no new data and a full refresh change nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline_props import contract as C
from pipeline_props.compare import compare
from pipeline_props.pipeline.compiled_incremental import IncrementalProject
from pipeline_props.pipeline.incremental import IncrementalPipeline
from pipeline_props.pipeline.reference import postgres_target
from pipeline_props.pipeline.warehouse_incremental import (
    DuckDBIncrementalPipeline,
    SnowflakeIncrementalPipeline,
)
from pipeline_props.testing.arrivals import ArrivalPlan, run_arrivals
from pipeline_props.testing.runs import fresh_namespace

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEADER = ",".join(C.COLUMNS)
E1 = "e1,o1,c1,p1,toys,NA,online,2,1.05,,USD,2024-01-01T10:00:00Z"
E1_OTHER = "e1,o1,c1,p1,toys,NA,online,3,1.05,,USD,2024-01-01T10:00:00Z"
E2 = "e2,o2,c2,p2,games,EMEA,store,-1,20.00,0.1,EUR,2024-02-29T23:30:00-01:00"


def _file(name: str, *rows: str) -> tuple[str, bytes]:
    return name, (HEADER + "\n" + "\n".join(rows) + "\n").encode()


PLAN = ArrivalPlan((
    (_file("a.csv", E1, E2, '"unclosed,row'),),
    (_file("b.csv", E2),),
    (_file("c.csv", E1_OTHER, ",o9,c9,p9,toys,NA,online,1,1.00,,USD,2024-01-01T00:00:00Z"),),
    (),
))


def _pipeline(mode: str, infrastructure: Any, ns: str, tmp_path: Path) -> Any:
    if mode == "duckdb":
        return DuckDBIncrementalPipeline(infrastructure, partitions=1, database=tmp_path / "warehouse.duckdb")
    if mode == "snowflake":
        return SnowflakeIncrementalPipeline(infrastructure, partitions=1)
    compiled = (IncrementalProject.compile(postgres_target(infrastructure, ns), infrastructure.postgres_dsn)
                if mode == "compiled" else None)
    return IncrementalPipeline(infrastructure, partitions=1, model_mode=mode, compiled=compiled)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["dbt", "compiled", "duckdb", pytest.param("snowflake", marks=pytest.mark.snowflake)])
def test_every_batch_equals_the_oracle_and_a_rerun_changes_nothing(infrastructure: Any, tmp_path: Path,
                                                                    mode: str) -> None:
    ns = fresh_namespace("pp_tinc")
    pipeline = _pipeline(mode, infrastructure, ns, tmp_path)
    pipeline.prepare(ns)
    try:
        steps = run_arrivals(pipeline, ns, PLAN)
        for step in steps:
            assert step.ok, f"{mode}, after batch {step.step}:\n{step.divergence.render()}"
        pipeline.model(ns)
        again = compare(pipeline.read_tables(ns), steps[-1].tables)
        assert again.ok, again.render()
        pipeline.full_refresh(ns)
        refreshed = compare(pipeline.read_tables(ns), steps[-1].tables)
        assert refreshed.ok, refreshed.render()
    finally:
        pipeline.cleanup(ns)
