"""Incremental marts on the DuckDB and Snowflake warehouses (``--dbt-mode incremental --warehouse ...``).

The contract of :class:`~pipeline_props.pipeline.incremental.IncrementalPipeline`
(Postgres) on the other two warehouses: :meth:`model` runs ``dbt build`` with
the incremental vars (``pp_incremental``) and applies what arrived since the
last run; :meth:`full_refresh` is ``dbt build --full-refresh``; in
fixed-schema mode (``schema=``) a namespace's first run is a full refresh,
since the previous namespace's marts are still there. The dbt project picks
the strategy per adapter (``macros/incremental.sql``): ``merge`` on both
(docs/architecture.md, "Incremental marts"). There is no compiled mode here:
every step is a real ``dbt build``.
"""

from __future__ import annotations

from typing import Any

from pipeline_props.errors import PipelineStageError
from pipeline_props.pipeline import model
from pipeline_props.pipeline.compiled_incremental import INCREMENTAL_VARS
from pipeline_props.pipeline.duckdb_warehouse import DuckDBWarehousePipeline
from pipeline_props.pipeline.duckdb_warehouse import _lock as _duckdb_lock
from pipeline_props.pipeline.reference import StageTimings
from pipeline_props.pipeline.snowflake_warehouse import (
    SnowflakeWarehousePipeline,
    bounded_connector,
)

__all__ = ["DuckDBIncrementalPipeline", "SnowflakeIncrementalPipeline"]


class _IncrementalModelStage:
    """The incremental model stage shared by both warehouses; the subclass says how to run dbt."""

    schema: str | None
    timings: dict[str, StageTimings]

    def _init_incremental(self) -> None:
        self._fresh: set[str] = set()

    def prepare(self, namespace: str) -> None:
        super().prepare(namespace)  # type: ignore[misc]
        if self.schema:
            self._fresh.add(namespace)

    def cleanup(self, namespace: str) -> None:
        self._fresh.discard(namespace)
        super().cleanup(namespace)  # type: ignore[misc]

    def model(self, namespace: str) -> model.DbtResult:
        """Apply the batches arrived since the last run to the incremental marts (``dbt build``)."""
        return self._build(namespace, full_refresh=namespace in self._fresh)

    def full_refresh(self, namespace: str) -> model.DbtResult:
        """Rebuild every model from all staged data (``dbt build --full-refresh``)."""
        return self._build(namespace, full_refresh=True)

    def _run_dbt(self, namespace: str, *, full_refresh: bool) -> model.DbtResult:
        raise NotImplementedError

    def _build(self, namespace: str, *, full_refresh: bool) -> model.DbtResult:
        result = self._run_dbt(namespace, full_refresh=full_refresh)
        self._fresh.discard(namespace)
        t = self.timings.setdefault(namespace, StageTimings())
        t.seconds["model"] = t.seconds.get("model", 0.0) + result.seconds
        if not result.success:
            raise PipelineStageError("model", "dbt build (incremental mode) failed: "
                                     + "; ".join(result.failures[:5]))
        return result


class DuckDBIncrementalPipeline(_IncrementalModelStage, DuckDBWarehousePipeline):
    """Kafka -> Spark -> DuckDB staging -> dbt-duckdb incremental marts (strategy ``merge``)."""

    name = "duckdb-warehouse (incremental marts)"

    def __init__(self, infra: Any, **kwargs: Any) -> None:
        super().__init__(infra, **kwargs)
        self._init_incremental()

    def _run_dbt(self, namespace: str, *, full_refresh: bool) -> model.DbtResult:
        target = model.WarehouseTarget(kind="duckdb", schema=self.schema_for(namespace), path=self.database)
        with _duckdb_lock:
            return model.run_dbt(target, reuse_manifest=self.schema is not None, dbt_vars=INCREMENTAL_VARS,
                                 full_refresh=full_refresh)


class SnowflakeIncrementalPipeline(_IncrementalModelStage, SnowflakeWarehousePipeline):
    """Kafka -> Spark -> Snowflake staging -> dbt-snowflake incremental marts (strategy ``merge``)."""

    name = "snowflake-warehouse (incremental marts)"

    def __init__(self, infra: Any, **kwargs: Any) -> None:
        super().__init__(infra, **kwargs)
        self._init_incremental()

    def _run_dbt(self, namespace: str, *, full_refresh: bool) -> model.DbtResult:
        with bounded_connector(self.endpoint):
            return model.run_dbt(self.target(namespace), reuse_manifest=self.schema is not None,
                                 dbt_vars=INCREMENTAL_VARS, full_refresh=full_refresh)
