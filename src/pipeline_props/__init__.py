"""pipeline-props: property-based, differential and fault testing for sales data pipelines.

The public surface is small and lives here; everything else is an
implementation detail of its module. Heavy parts (Spark, dbt) load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from pipeline_props.config import Settings, load_settings
from pipeline_props.errors import (
    ConfigError,
    DivergenceError,
    InfrastructureError,
    InputError,
    PipelinePropsError,
    PipelineStageError,
    UsageError,
)

__version__ = "0.1.0"

_LAZY = {
    "InfrastructureManager": "pipeline_props.infra",
    "ReferencePipeline": "pipeline_props.pipeline.reference",
    "PipelineUnderTest": "pipeline_props.protocol",
    "E2EPipelineTestSuite": "pipeline_props.suite",
    "run_dataset": "pipeline_props.runner",
    "run_oracle": "pipeline_props.oracles",
    "compare": "pipeline_props.compare",
    "Divergence": "pipeline_props.compare",
    "sales_datasets": "pipeline_props.strategies",
    "sales_records": "pipeline_props.strategies",
    "SalesDataset": "pipeline_props.strategies",
    "DataGenerator": "pipeline_props.strategies",
    "DataGenerationConfig": "pipeline_props.strategies",
    "PipelineValidator": "pipeline_props.validators",
    "ErrorInjector": "pipeline_props.faults",
    "PerformanceMonitor": "pipeline_props.perf",
}

__all__ = [
    "ConfigError", "DivergenceError", "InfrastructureError", "InputError", "PipelinePropsError",
    "PipelineStageError", "Settings", "UsageError", "load_settings", *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pipeline_props' has no attribute {name!r}")
