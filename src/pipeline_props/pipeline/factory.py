"""The shipped pipelines by warehouse: what ``run``, ``replay`` and ``errors`` build."""

from __future__ import annotations

from typing import Any

from pipeline_props.errors import UsageError
from pipeline_props.protocol import StagedPipeline

__all__ = ["WAREHOUSES", "make_pipeline"]

#: The warehouses a shipped pipeline writes to.
WAREHOUSES = ("postgres", "duckdb", "snowflake")


def make_pipeline(infra: Any, warehouse: str) -> StagedPipeline:
    """The shipped pipeline for ``warehouse``: postgres (ReferencePipeline), duckdb or snowflake."""
    if warehouse == "postgres":
        from pipeline_props.pipeline.reference import ReferencePipeline

        return ReferencePipeline(infra)
    if warehouse == "duckdb":
        from pipeline_props.pipeline.duckdb_warehouse import DuckDBWarehousePipeline

        return DuckDBWarehousePipeline(infra)
    if warehouse == "snowflake":
        from pipeline_props.pipeline.snowflake_warehouse import SnowflakeWarehousePipeline

        return SnowflakeWarehousePipeline(infra)
    raise UsageError(f"unknown warehouse {warehouse!r}: use postgres, duckdb or snowflake")
