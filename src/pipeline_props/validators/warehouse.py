"""Warehouse stage: the five output tables (schema, data quality, row-count conservation)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline_props.contract import (
    CONFLICTING_DUPLICATE,
    DAILY_SALES,
    INGESTION_AUDIT,
    OUTPUT_TABLES,
    REASONS,
    REJECTED_ROWS,
)
from pipeline_props.errors import UsageError
from pipeline_props.validators.base import (
    DATA,
    PIPELINE,
    BaseDataValidator,
    CheckResult,
    Equation,
    StageResult,
    as_count,
    conservation_check,
    count,
    exact,
    optional_count,
    ratio,
    register_validator,
    stage_payload,
    upstream_rows,
)

AUDIT_COLUMNS = OUTPUT_TABLES[INGESTION_AUDIT]
#: ingestion_audit column of each reason code: MALFORMED_ROW -> rejected_malformed_row.
REASON_COLUMNS: dict[str, str] = {r: f"rejected_{r.lower()}" for r in REASONS}


@register_validator
class WarehouseValidator(BaseDataValidator):
    """Checks ``validation_data["warehouse"]``.

    Required: ``tables`` ({table: rows as tuples in contract.OUTPUT_TABLES
    column order}). Optional: ``staging_rows`` (rows in the staging tables,
    valid plus rejected), ``columns`` ({table: column names as the warehouse
    reports them}, compared with the contract when given).
    """

    stage = "warehouse"

    def validate(self, data: Mapping[str, Any]) -> StageResult:
        """Schema compliance, duplicate rate, data quality score and row-count conservation."""
        payload = self.payload(data)
        tables = payload.get("tables")
        if not isinstance(tables, Mapping):
            raise UsageError("validation_data['warehouse']['tables'] must be a mapping of table -> rows")
        columns = payload.get("columns") or {}
        if not isinstance(columns, Mapping):
            raise UsageError("validation_data['warehouse']['columns'] must be a mapping of table -> names")
        audit, audit_problem = _read_audit(tables)
        return StageResult.from_checks(self.stage, [
            _schema_check(tables, columns),
            self._duplicate_check(audit, audit_problem),
            self._quality_check(audit, audit_problem),
            _conservation_check(data, payload, tables, audit, audit_problem),
        ])

    def _duplicate_check(self, audit: dict[str, int] | None, problem: str | None) -> CheckResult:
        if audit is None:
            return _unmeasurable("duplicate_rate", DATA, problem)
        rate = ratio(audit["rows_duplicate"], audit["rows_read"])
        return CheckResult(
            check_name="duplicate_rate",
            passed=rate <= exact(self.thresholds.max_duplicate_percentage),
            score=float(1 - rate),
            details={"kind": DATA, "rows_duplicate": audit["rows_duplicate"],
                     "rows_read": audit["rows_read"], "duplicate_rate": float(rate),
                     "max_duplicate_percentage": self.thresholds.max_duplicate_percentage},
        )

    def _quality_check(self, audit: dict[str, int] | None, problem: str | None) -> CheckResult:
        if audit is None:
            return _unmeasurable("data_quality_score", DATA, problem)
        # An empty dataset has nothing dirty in it: score 1.
        score = ratio(audit["rows_accepted"], audit["rows_read"], empty=1.0)
        rejected = {r: audit[c] for r, c in REASON_COLUMNS.items() if audit[c]}
        return CheckResult(
            check_name="data_quality_score",
            passed=score >= exact(self.thresholds.min_data_quality_score),
            score=float(score),
            details={"kind": DATA, "rows_accepted": audit["rows_accepted"],
                     "rows_read": audit["rows_read"], "rows_duplicate": audit["rows_duplicate"],
                     "rows_rejected": audit["rows_rejected"], "rejected_by_reason": rejected,
                     "min_data_quality_score": self.thresholds.min_data_quality_score},
        )


def _unmeasurable(name: str, kind: str, problem: str | None) -> CheckResult:
    return CheckResult(check_name=name, passed=False, score=0.0,
                       details={"kind": kind, "problem": problem})


def _read_audit(tables: Mapping[str, Any]) -> tuple[dict[str, int] | None, str | None]:
    """The single ingestion_audit row as {column: count}, or None and why not."""
    rows = tables.get(INGESTION_AUDIT)
    if rows is None:
        return None, "no ingestion_audit table"
    rows = list(rows)
    if len(rows) != 1:
        return None, f"ingestion_audit has {len(rows)} rows, expected 1"
    row = rows[0]
    if not _is_row(row) or len(row) != len(AUDIT_COLUMNS):
        return None, f"ingestion_audit row is not {len(AUDIT_COLUMNS)} values: {row!r}"
    audit: dict[str, int] = {}
    for column, value in zip(AUDIT_COLUMNS, row):
        try:
            audit[column] = as_count(value, f"ingestion_audit.{column}")
        except UsageError as exc:  # a NULL or a fraction the pipeline wrote: its fault, not the caller's
            return None, exc.message
    return audit, None


def _is_row(row: Any) -> bool:
    return isinstance(row, Sequence) and not isinstance(row, (str, bytes))


def _schema_check(tables: Mapping[str, Any], columns: Mapping[str, Any]) -> CheckResult:
    """Every contract table is there, with exactly the contract's columns in every row."""
    problems: dict[str, str] = {}
    for table, expected in OUTPUT_TABLES.items():
        if table not in tables:
            problems[table] = "table missing"
            continue
        named = columns.get(table)
        if named is not None and tuple(named) != expected:
            problems[table] = f"columns {list(named)}, expected {list(expected)}"
            continue
        for i, row in enumerate(tables[table]):
            if not _is_row(row) or len(row) != len(expected):
                width = len(row) if _is_row(row) else type(row).__name__
                problems[table] = f"row {i} has {width} values, expected {len(expected)}"
                break
    compliant = len(OUTPUT_TABLES) - len(problems)
    return CheckResult(
        check_name="schema_compliance",
        passed=not problems,
        score=compliant / len(OUTPUT_TABLES),
        details={"kind": PIPELINE, "tables": len(OUTPUT_TABLES), "tables_compliant": compliant,
                 "problems": problems},
    )


def _column(table: str, column: str) -> int:
    return OUTPUT_TABLES[table].index(column)


def _conservation_check(data: Mapping[str, Any], payload: Mapping[str, Any],
                        tables: Mapping[str, Any], audit: dict[str, int] | None,
                        audit_problem: str | None) -> CheckResult:
    where = "validation_data['warehouse']"
    staging = optional_count(payload, "staging_rows", where)
    upstream = upstream_rows(data, "warehouse")
    equations: list[Equation] = []
    problems: list[str] = []
    if staging is not None and upstream is not None:
        equations.append(Equation("warehouse.staging_rows", staging, *upstream))
    if audit is None:
        problems.append(str(audit_problem))
        return conservation_check(equations, problems=problems)

    read, rejected = audit["rows_read"], audit["rows_rejected"]
    if staging is not None:
        equations.append(Equation("ingestion_audit.rows_read", read, "warehouse.staging_rows", staging))
    elif upstream is not None:
        equations.append(Equation("ingestion_audit.rows_read", read, *upstream))
    equations.append(Equation(
        "ingestion_audit.rows_read", read,
        "rows_accepted + rows_duplicate + rows_rejected",
        audit["rows_accepted"] + audit["rows_duplicate"] + rejected))
    equations.append(Equation("sum(ingestion_audit.rejected_*)",
                              sum(audit[c] for c in REASON_COLUMNS.values()),
                              "ingestion_audit.rows_rejected", rejected))

    reason_at = _column(REJECTED_ROWS, "reason")
    rejected_rows = [r for r in tables.get(REJECTED_ROWS, ()) if _is_row(r) and len(r) > reason_at]
    equations.append(Equation("count(rejected_rows)", len(rejected_rows),
                              "ingestion_audit.rows_rejected", rejected))
    per_reason = Counter(row[reason_at] for row in rejected_rows)
    unknown = sorted(str(r) for r in per_reason if r not in REASONS)
    if unknown:
        problems.append(f"rejected_rows has unknown reason codes {unknown}")
    for reason, column in REASON_COLUMNS.items():
        equations.append(Equation(f"count(rejected_rows where reason = {reason})", per_reason[reason],
                                  f"ingestion_audit.{column}", audit[column]))

    lines_at = _column(DAILY_SALES, "line_count")
    try:
        lines = sum(as_count(r[lines_at], "daily_sales.line_count")
                    for r in tables.get(DAILY_SALES, ()) if _is_row(r) and len(r) > lines_at)
        equations.append(Equation("sum(daily_sales.line_count)", lines,
                                  "ingestion_audit.rows_accepted", audit["rows_accepted"]))
    except UsageError as exc:
        problems.append(exc.message)

    if "spark" in data:
        spark = stage_payload(data, "spark")
        conflicting = audit[REASON_COLUMNS[CONFLICTING_DUPLICATE]]
        # Conflicting duplicates pass Spark's validation and are rejected by the model.
        equations.append(Equation(
            "spark.rows_valid", count(spark, "rows_valid", "validation_data['spark']"),
            "rows_accepted + rows_duplicate + rejected_conflicting_duplicate",
            audit["rows_accepted"] + audit["rows_duplicate"] + conflicting))
        equations.append(Equation(
            "spark.rows_rejected", count(spark, "rows_rejected", "validation_data['spark']"),
            "rows_rejected - rejected_conflicting_duplicate", rejected - conflicting))
    return conservation_check(equations, problems=problems)
