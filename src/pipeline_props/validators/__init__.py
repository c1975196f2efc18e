"""Per-stage validators of a pipeline run and the validation report.

``PipelineValidator(settings.pipeline_stages).validate_pipeline_run(run_id, validation_data)``
runs the raw, kafka, spark and warehouse validators (and any registered with
:func:`register_validator`) and returns a :class:`ValidationSummary`. The
shape of ``validation_data`` and the list of checks are documented in
:mod:`pipeline_props.validators.pipeline`.
"""

from __future__ import annotations

from pipeline_props.validators.base import (
    BaseDataValidator,
    CheckResult,
    StageResult,
    register_validator,
    registered_validators,
)
from pipeline_props.validators.kafka import KafkaStreamValidator
from pipeline_props.validators.pipeline import PipelineValidator, ValidationSummary
from pipeline_props.validators.raw import RawDataValidator
from pipeline_props.validators.spark import SparkETLValidator
from pipeline_props.validators.warehouse import WarehouseValidator

__all__ = [
    "BaseDataValidator",
    "CheckResult",
    "KafkaStreamValidator",
    "PipelineValidator",
    "RawDataValidator",
    "SparkETLValidator",
    "StageResult",
    "ValidationSummary",
    "WarehouseValidator",
    "register_validator",
    "registered_validators",
]
