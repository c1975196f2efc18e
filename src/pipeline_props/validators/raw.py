"""Raw stage: the CSV files as the ingest read them (header columns, empty values)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from pipeline_props.contract import COLUMNS, OPTIONAL_COLUMNS
from pipeline_props.errors import UsageError
from pipeline_props.validators.base import (
    DATA,
    BaseDataValidator,
    CheckResult,
    StageResult,
    count,
    exact,
    register_validator,
)

REQUIRED_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in OPTIONAL_COLUMNS)


@register_validator
class RawDataValidator(BaseDataValidator):
    """Checks ``validation_data["raw"]["files"]``: schema compliance and null rate.

    Each file entry has ``name``, ``rows_read``, ``rows_malformed``,
    ``null_counts`` (empty values per contract column among well-formed rows),
    and optionally ``extra_columns`` (schema drift, reported, never a failure)
    and ``columns`` (the header's names; without it the keys of
    ``null_counts`` stand for the header).
    """

    stage = "raw"

    def validate(self, data: Mapping[str, Any]) -> StageResult:
        """Schema compliance (every file has the twelve columns) and the null rate of required columns."""
        files = self.payload(data).get("files")
        if not isinstance(files, Sequence) or isinstance(files, (str, bytes)):
            raise UsageError("validation_data['raw']['files'] must be a list of per-file dicts")
        for i, f in enumerate(files):
            if not isinstance(f, Mapping):
                raise UsageError(f"validation_data['raw']['files'][{i}] must be a mapping")
        return StageResult.from_checks(self.stage, [_schema_check(files),
                                                    self._null_rate_check(files)])

    def _null_rate_check(self, files: Sequence[Mapping[str, Any]]) -> CheckResult:
        well_formed = 0
        nulls = dict.fromkeys(REQUIRED_COLUMNS, 0)
        for i, f in enumerate(files):
            where = f"validation_data['raw']['files'][{i}]"
            read = count(f, "rows_read", where)
            malformed = count(f, "rows_malformed", where)
            if malformed > read:
                raise UsageError(f"{where}: rows_malformed {malformed} > rows_read {read}")
            well_formed += read - malformed
            counts = f.get("null_counts") or {}
            if not isinstance(counts, Mapping):
                raise UsageError(f"{where}['null_counts'] must be a mapping of column -> count")
            for column in REQUIRED_COLUMNS:
                if column in counts:
                    nulls[column] += count(counts, column, f"{where}['null_counts']")
        limit = exact(self.thresholds.max_null_rate)
        rates = {c: Fraction(n, well_formed) if well_formed else Fraction(0) for c, n in nulls.items()}
        worst_column = max(REQUIRED_COLUMNS, key=lambda c: rates[c])
        worst = rates[worst_column]
        over = [c for c in REQUIRED_COLUMNS if rates[c] > limit]
        return CheckResult(
            check_name="null_rate",
            passed=not over,
            score=float(1 - worst),
            details={
                "kind": DATA,
                "well_formed_rows": well_formed,
                "null_counts": nulls,
                "null_rates": {c: float(r) for c, r in rates.items()},
                "worst_column": worst_column,
                "worst_rate": float(worst),
                "max_null_rate": self.thresholds.max_null_rate,
                "columns_over_threshold": over,
            },
        )


def _schema_check(files: Sequence[Mapping[str, Any]]) -> CheckResult:
    """Every file's header has all twelve contract columns; extra columns are listed as drift."""
    missing: dict[str, list[str]] = {}
    drift: list[dict[str, str]] = []
    for i, f in enumerate(files):
        name = str(f.get("name", f"file {i}"))
        header = f.get("columns")
        if header is None:
            header = list((f.get("null_counts") or {}).keys())
        absent = [c for c in COLUMNS if c not in set(header)]
        if absent:
            missing[f"{i}:{name}"] = absent
        drift.extend({"file": name, "column": str(c)} for c in f.get("extra_columns") or ())
    compliant = len(files) - len(missing)
    return CheckResult(
        check_name="schema_compliance",
        passed=not missing,
        score=compliant / len(files) if files else 1.0,
        details={
            "kind": DATA,
            "files": len(files),
            "files_compliant": compliant,
            "missing_columns": missing,
            "schema_drift": drift,
        },
    )
