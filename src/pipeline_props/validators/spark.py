"""Spark stage: every message read came out as exactly one valid or rejected row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline_props.contract import REASONS
from pipeline_props.errors import UsageError
from pipeline_props.validators.base import (
    BaseDataValidator,
    Equation,
    StageResult,
    conservation_check,
    count,
    optional_count,
    register_validator,
    upstream_rows,
)


@register_validator
class SparkETLValidator(BaseDataValidator):
    """Checks ``validation_data["spark"]``.

    Required: ``rows_in`` (messages the transform read), ``rows_valid``,
    ``rows_rejected``. Optional: ``rejected_by_reason`` ({reason code: rows}),
    ``batches`` (reported).
    """

    stage = "spark"

    def validate(self, data: Mapping[str, Any]) -> StageResult:
        """Row-count conservation: upstream -> rows_in -> valid + rejected, and the per-reason split."""
        payload = self.payload(data)
        where = "validation_data['spark']"
        rows_in = count(payload, "rows_in", where)
        valid = count(payload, "rows_valid", where)
        rejected = count(payload, "rows_rejected", where)
        equations = []
        upstream = upstream_rows(data, self.stage)
        if upstream is not None:
            equations.append(Equation("spark.rows_in", rows_in, *upstream))
        equations.append(Equation("spark.rows_in", rows_in,
                                  "spark.rows_valid + spark.rows_rejected", valid + rejected))
        problems: list[str] = []
        by_reason = payload.get("rejected_by_reason")
        if by_reason is not None:
            if not isinstance(by_reason, Mapping):
                raise UsageError(f"{where}['rejected_by_reason'] must be a mapping of reason -> rows")
            unknown = sorted(str(r) for r in by_reason if r not in REASONS)
            if unknown:
                problems.append(f"unknown reason codes {unknown}; the contract's are {list(REASONS)}")
            total = sum(count(by_reason, r, f"{where}['rejected_by_reason']") for r in by_reason)
            equations.append(Equation("sum(spark.rejected_by_reason)", total,
                                      "spark.rows_rejected", rejected))
        extra = {"batches": optional_count(payload, "batches", where)}
        return StageResult.from_checks(
            self.stage, [conservation_check(equations, problems=problems, extra=extra)])
