"""The shipped pipelines by warehouse and dbt mode: what ``run``, ``replay`` and ``errors`` build."""

from __future__ import annotations

import importlib
from typing import Any

from pipeline_props.errors import UsageError
from pipeline_props.protocol import StagedPipeline

__all__ = ["WAREHOUSES", "make_incremental_pipeline", "make_pipeline"]

#: The warehouses a shipped pipeline writes to.
WAREHOUSES = ("postgres", "duckdb", "snowflake")

#: (module, class) per warehouse: full-refresh marts, then incremental marts (``--dbt-mode incremental``).
#: Imported on use: each pulls in its warehouse's client.
_FULL = {
    "postgres": ("pipeline_props.pipeline.reference", "ReferencePipeline"),
    "duckdb": ("pipeline_props.pipeline.duckdb_warehouse", "DuckDBWarehousePipeline"),
    "snowflake": ("pipeline_props.pipeline.snowflake_warehouse", "SnowflakeWarehousePipeline"),
}
_INCREMENTAL = {
    "postgres": ("pipeline_props.pipeline.incremental", "IncrementalPipeline"),
    "duckdb": ("pipeline_props.pipeline.warehouse_incremental", "DuckDBIncrementalPipeline"),
    "snowflake": ("pipeline_props.pipeline.warehouse_incremental", "SnowflakeIncrementalPipeline"),
}


def _build(table: dict[str, tuple[str, str]], infra: Any, warehouse: str) -> StagedPipeline:
    if warehouse not in table:
        raise UsageError(f"unknown warehouse {warehouse!r}: use postgres, duckdb or snowflake")
    module, name = table[warehouse]
    pipeline: StagedPipeline = getattr(importlib.import_module(module), name)(infra)
    return pipeline


def make_pipeline(infra: Any, warehouse: str) -> StagedPipeline:
    """The shipped pipeline for ``warehouse``: postgres (ReferencePipeline), duckdb or snowflake."""
    return _build(_FULL, infra, warehouse)


def make_incremental_pipeline(infra: Any, warehouse: str) -> StagedPipeline:
    """The shipped pipeline with incremental marts for ``warehouse`` (``merge`` or ``delete+insert``, per adapter)."""
    return _build(_INCREMENTAL, infra, warehouse)
