"""Incremental marts: the reference pipeline with dbt's incremental models.

:class:`IncrementalPipeline` is the :class:`~pipeline_props.pipeline.reference.ReferencePipeline`
whose model stage runs the dbt project in its incremental mode (var
``pp_incremental``; docs/architecture.md, "Incremental marts"), with ``dbt
build`` or (``model_mode="compiled"``) the incremental SQL dbt compiled
(pipeline/compiled_incremental.py). Arrival batches and the steps through
them are in testing/arrivals.py.
"""

from __future__ import annotations

from typing import Any

from pipeline_props.errors import PipelineStageError
from pipeline_props.pipeline import model
from pipeline_props.pipeline.compiled_incremental import (
    INCREMENTAL_VARS,
    IncrementalProject,
)
from pipeline_props.pipeline.reference import ReferencePipeline, StageTimings

__all__ = ["IncrementalPipeline"]



class IncrementalPipeline(ReferencePipeline):
    """The reference pipeline with incremental marts (``--dbt-mode incremental``).

    Every :meth:`model` applies what arrived since the last one. In
    fixed-schema mode (``schema=``) a namespace's first model run is a full
    refresh, since the previous namespace's marts are still there; with a
    schema per namespace the first run finds no relation and builds it, as
    dbt does. :meth:`full_refresh` rebuilds every model from scratch.
    """

    name = "reference (incremental marts)"

    def __init__(self, infra: Any, *, compiled: IncrementalProject | None = None, **kwargs: Any) -> None:
        super().__init__(infra, **kwargs)
        self.compiled = compiled  # type: ignore[assignment] - an IncrementalProject here
        self._fresh: set[str] = set()

    def prepare(self, namespace: str) -> None:
        super().prepare(namespace)
        if self.schema:
            self._fresh.add(namespace)

    def cleanup(self, namespace: str) -> None:
        self._fresh.discard(namespace)
        super().cleanup(namespace)

    def model(self, namespace: str) -> model.DbtResult:
        """Apply the batches arrived since the last run to the incremental marts (dbt or compiled SQL)."""
        return self._build(namespace, full_refresh=namespace in self._fresh)

    def full_refresh(self, namespace: str) -> model.DbtResult:
        """Rebuild every model from all staged data (``dbt run --full-refresh``)."""
        return self._build(namespace, full_refresh=True)

    def _build(self, namespace: str, *, full_refresh: bool) -> model.DbtResult:
        if self.model_mode == "compiled":
            if self.compiled is None:
                self.compiled = IncrementalProject.compile(self.warehouse_target(namespace), self.infra.postgres_dsn)
            run = self.compiled.run(self.infra.postgres_dsn, self.schema_for(namespace), full_refresh=full_refresh)
            result = model.DbtResult(success=run.success, seconds=run.seconds, failures=run.failures)
        else:
            result = model.run_dbt(self.warehouse_target(namespace), reuse_manifest=self.schema is not None,
                                   dbt_vars=INCREMENTAL_VARS, full_refresh=full_refresh)
        self._fresh.discard(namespace)
        t = self.timings.setdefault(namespace, StageTimings())
        t.seconds["model"] = t.seconds.get("model", 0.0) + result.seconds
        if not result.success:
            raise PipelineStageError("model", f"dbt {'data tests' if self.model_mode == 'compiled' else 'build'} "
                                     "(incremental mode) failed: " + "; ".join(result.failures[:5]))
        return result
