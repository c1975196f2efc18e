"""Run every registered stage validator over one pipeline run and summarise.

``validation_data`` is a dict with optional keys, one per stage. A stage
whose key is absent is skipped (not failed); a present key with a missing or
ill-typed required entry is a caller error (:class:`~pipeline_props.errors.UsageError`).
Counts are non-negative integers.

``"raw"``: ``{"files": [{"name": str, "rows_read": int, "rows_malformed": int,
"null_counts": {column: int}, "extra_columns": [str], "columns": [str]}]}``,
one entry per input file in dataset order. ``null_counts`` counts empty values
per contract column among well-formed rows (rows_read - rows_malformed);
``columns`` (the header's names) is optional, without it the keys of
``null_counts`` stand for the header; ``extra_columns`` is the schema drift
and is reported, never failed. Other keys (``file_index``...) are ignored.

``"kafka"``: ``{"messages_produced": int, "messages_in_topic": int,
"rows_read": int, "partitions": int}``, plus optional ``"messages"``: an
iterable of message values (bytes, JSON text or decoded dicts, such as the
lines of kafka_messages.jsonl); only with it is the message shape checked.

``"spark"``: ``{"rows_in": int, "rows_valid": int, "rows_rejected": int,
"rejected_by_reason": {reason: int}, "batches": int}``;
``rejected_by_reason`` and ``batches`` are optional.

``"warehouse"``: ``{"tables": {table: [row tuples in contract.OUTPUT_TABLES
column order]}, "staging_rows": int, "columns": {table: [names]}}``;
``staging_rows`` (stg_events + stg_rejects) and ``columns`` are optional.

Any other key runs the validator registered for that stage name, if any.

Checks, with the ``kind`` in their details:

- raw.schema_compliance (data): every file's header has the twelve columns.
- raw.null_rate (data): each required column's empty values / well-formed
  rows <= max_null_rate.
- kafka.schema_compliance (pipeline, only with ``messages``): every message
  has the shape of docs/architecture.md.
- kafka/spark/warehouse.row_count_conservation (pipeline): raw rows_read ==
  kafka rows_read == messages_produced == messages_in_topic == spark rows_in
  == rows_valid + rows_rejected == staging_rows == ingestion_audit.rows_read
  (each stage compares itself with the nearest stage upstream that is
  present); rows_read == accepted + duplicate + rejected; per-reason counts
  sum to rows_rejected (audit, and Spark's when given); rejected_rows has
  rows_rejected rows, per reason as in the audit; daily_sales line_count
  sums to rows_accepted; Spark's valid and rejected rows match the audit
  (conflicting duplicates are valid in Spark, rejected by the model).
- warehouse.schema_compliance (pipeline): the five tables, exactly the
  contract's columns, one ingestion_audit row.
- warehouse.duplicate_rate (data): rows_duplicate / rows_read <= max_duplicate_percentage.
- warehouse.data_quality_score (data): rows_accepted / rows_read >= min_data_quality_score
  (1 for an empty dataset).

Thresholds are compared exactly, as the decimals written in the settings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline_props.config import PipelineStageSettings
from pipeline_props.errors import UsageError
from pipeline_props.validators.base import BaseDataValidator, StageResult, registered_validators

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationSummary:
    """The validation report of one run: stage results, overall verdict and score."""

    pipeline_run_id: str
    overall_passed: bool
    overall_score: float
    stage_results: list[StageResult]
    timestamp: str

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (the seed's validation report shape)."""
        return {
            "pipeline_run_id": self.pipeline_run_id,
            "overall_passed": self.overall_passed,
            "overall_score": self.overall_score,
            "timestamp": self.timestamp,
            "stage_results": [s.to_dict() for s in self.stage_results],
        }

    def write_json(self, path: Path) -> None:
        """Write :meth:`to_dict` as indented JSON (values JSON cannot hold are written as text)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")


class PipelineValidator:
    """Runs stage validators over a run's ``validation_data`` (see the module docstring).

    Without ``validators`` it runs one instance of every registered validator
    class (the built-in four and any registered with
    :func:`~pipeline_props.validators.register_validator`), looked up when
    :meth:`validate_pipeline_run` is called.
    """

    def __init__(self, thresholds: PipelineStageSettings | None = None,
                 validators: Sequence[BaseDataValidator] | None = None) -> None:
        self.thresholds = thresholds if thresholds is not None else PipelineStageSettings()
        self._validators = list(validators) if validators is not None else None

    @property
    def validators(self) -> list[BaseDataValidator]:
        """The validators this instance runs, in order."""
        if self._validators is not None:
            return list(self._validators)
        return [cls(self.thresholds) for cls in registered_validators().values()]

    def validate_pipeline_run(self, run_id: str, validation_data: Mapping[str, Any]) -> ValidationSummary:
        """Run every validator whose stage key is in ``validation_data``; skip the others.

        overall_passed is true when every stage that ran passed and at least
        one ran; overall_score is the mean of the stage scores (0 when none ran).
        """
        if not isinstance(validation_data, Mapping):
            raise UsageError(f"validation_data must be a mapping, got {type(validation_data).__name__}")
        validators = self.validators
        results: list[StageResult] = []
        for validator in validators:
            if validator.stage not in validation_data:
                log.info("validation of stage %s skipped: no %r entry", validator.stage, validator.stage)
                continue
            result = validator.validate(validation_data)
            if not isinstance(result, StageResult):
                raise UsageError(f"{type(validator).__name__}.validate returned "
                                 f"{type(result).__name__}, expected a StageResult")
            results.append(result)
        unvalidated = set(validation_data) - {v.stage for v in validators}
        if unvalidated:
            log.warning("no validator registered for validation_data keys %s", sorted(unvalidated))
        score = sum(r.score for r in results) / len(results) if results else 0.0
        return ValidationSummary(
            pipeline_run_id=run_id,
            overall_passed=bool(results) and all(r.passed for r in results),
            overall_score=score,
            stage_results=results,
            timestamp=datetime.now(timezone.utc).isoformat(),
        )
