"""Unit tests for pipeline_props.validators: every check passing and failing on hand-made data."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline_props import contract as c
from pipeline_props.config import PipelineStageSettings
from pipeline_props.errors import UsageError
from pipeline_props.validators import (
    BaseDataValidator,
    CheckResult,
    KafkaStreamValidator,
    PipelineValidator,
    RawDataValidator,
    SparkETLValidator,
    StageResult,
    ValidationSummary,
    WarehouseValidator,
    register_validator,
    registered_validators,
)
from pipeline_props.validators import base as validators_base

pytestmark = pytest.mark.unit

SETTINGS = PipelineStageSettings()  # 0.80 quality, 0.01 duplicates, 0.05 nulls


def _nulls(**counts: int) -> dict[str, int]:
    out = dict.fromkeys(c.COLUMNS, 0)
    out.update(counts)
    return out


def _audit(read: int, accepted: int, duplicate: int, **reasons: int) -> tuple[int, ...]:
    per_reason = [reasons.get(r, 0) for r in c.REASONS]
    return (read, accepted, duplicate, sum(per_reason), *per_reason)


def good_data() -> dict[str, Any]:
    """A consistent run: 100 rows read, 94 accepted, 1 duplicate, 5 rejected.

    Rejected: 2 MALFORMED_ROW and 1 MISSING_FIELD in Spark, 2 CONFLICTING_DUPLICATE in the model.
    """
    d = date(2024, 1, 2)
    return {
        "raw": {"files": [
            {"name": "a.csv", "file_index": 0, "rows_read": 60, "rows_malformed": 1,
             "null_counts": _nulls(event_id=1, discount=30), "extra_columns": ["note"],
             "columns": [*c.COLUMNS, "note"]},
            {"name": "b.csv", "file_index": 1, "rows_read": 40, "rows_malformed": 1,
             "null_counts": _nulls(), "extra_columns": [], "columns": list(c.COLUMNS)},
        ]},
        "kafka": {"messages_produced": 100, "messages_in_topic": 100, "rows_read": 100,
                  "partitions": 2},
        "spark": {"rows_in": 100, "rows_valid": 97, "rows_rejected": 3,
                  "rejected_by_reason": {c.MALFORMED_ROW: 2, c.MISSING_FIELD: 1}, "batches": 3},
        "warehouse": {
            "staging_rows": 100,
            "tables": {
                c.DAILY_SALES: [
                    (d, "NA", "toys", Decimal("10.00"), Decimal("0.00"), Decimal("10.00"), 50, 0, 40, 50),
                    (d, "EMEA", "toys", Decimal("5.00"), Decimal("1.00"), Decimal("4.00"), 44, 1, 30, 44),
                ],
                c.CUSTOMER_SUMMARY: [("c1", d, d, 70, Decimal("14.00"))],
                c.PRODUCT_PERFORMANCE: [("p1", 94, 1, Decimal("14.00"), Decimal("0.0106"))],
                c.REJECTED_ROWS: [
                    ("a.csv", 3, None, c.MALFORMED_ROW, "x,y"),
                    ("b.csv", 9, None, c.MALFORMED_ROW, "z"),
                    ("a.csv", 7, None, c.MISSING_FIELD, ",o1,..."),
                    ("a.csv", 11, "e1", c.CONFLICTING_DUPLICATE, "e1,..."),
                    ("b.csv", 2, "e1", c.CONFLICTING_DUPLICATE, "e1,..."),
                ],
                c.INGESTION_AUDIT: [_audit(100, 94, 1, MALFORMED_ROW=2, MISSING_FIELD=1,
                                           CONFLICTING_DUPLICATE=2)],
            },
        },
    }


def check(result: StageResult, name: str) -> CheckResult:
    found = [ch for ch in result.checks if ch.check_name == name]
    assert len(found) == 1, [ch.check_name for ch in result.checks]
    return found[0]


def failed_equations(result: CheckResult) -> list[str]:
    return result.details["failed"]


# --- the consistent run ---------------------------------------------------------------------


def test_consistent_run_passes_every_check() -> None:
    summary = PipelineValidator(SETTINGS).validate_pipeline_run("r1", good_data())
    assert [s.stage for s in summary.stage_results] == ["raw", "kafka", "spark", "warehouse"]
    for stage in summary.stage_results:
        for ch in stage.checks:
            assert ch.passed, (stage.stage, ch)
            assert ch.details["kind"] in ("data", "pipeline")
            assert 0.0 <= ch.score <= 1.0
    assert summary.overall_passed
    names = {(s.stage, ch.check_name) for s in summary.stage_results for ch in s.checks}
    assert names == {
        ("raw", "schema_compliance"), ("raw", "null_rate"),
        ("kafka", "row_count_conservation"),
        ("spark", "row_count_conservation"),
        ("warehouse", "schema_compliance"), ("warehouse", "duplicate_rate"),
        ("warehouse", "data_quality_score"), ("warehouse", "row_count_conservation"),
    }


def test_kinds_separate_dirty_data_from_lost_rows() -> None:
    summary = PipelineValidator(SETTINGS).validate_pipeline_run("r1", good_data())
    kinds = {(s.stage, ch.check_name): ch.details["kind"]
             for s in summary.stage_results for ch in s.checks}
    assert kinds[("warehouse", "duplicate_rate")] == "data"
    assert kinds[("warehouse", "data_quality_score")] == "data"
    assert kinds[("raw", "null_rate")] == "data"
    assert kinds[("kafka", "row_count_conservation")] == "pipeline"
    assert kinds[("warehouse", "row_count_conservation")] == "pipeline"
    assert kinds[("warehouse", "schema_compliance")] == "pipeline"


# --- raw ------------------------------------------------------------------------------------


def test_raw_schema_drift_is_reported_not_failed() -> None:
    result = check(RawDataValidator(SETTINGS).validate(good_data()), "schema_compliance")
    assert result.passed and result.score == 1.0
    assert result.details["schema_drift"] == [{"file": "a.csv", "column": "note"}]


def test_raw_schema_fails_on_a_missing_column() -> None:
    data = good_data()
    data["raw"]["files"][1]["columns"] = [col for col in c.COLUMNS if col != "currency"]
    result = check(RawDataValidator(SETTINGS).validate(data), "schema_compliance")
    assert not result.passed
    assert result.score == 0.5
    assert result.details["missing_columns"] == {"1:b.csv": ["currency"]}


def test_raw_schema_falls_back_to_null_count_keys() -> None:
    data = good_data()
    for f in data["raw"]["files"]:
        del f["columns"]
    assert check(RawDataValidator(SETTINGS).validate(data), "schema_compliance").passed
    del data["raw"]["files"][0]["null_counts"]["discount"]
    result = check(RawDataValidator(SETTINGS).validate(data), "schema_compliance")
    assert not result.passed and result.details["missing_columns"] == {"0:a.csv": ["discount"]}


def test_raw_null_rate_at_the_threshold_passes_and_above_fails() -> None:
    data = good_data()
    # 98 well-formed rows; 0.05 of them is 4.9 empty values.
    data["raw"]["files"][0]["null_counts"] = _nulls(region=3)
    data["raw"]["files"][1]["null_counts"] = _nulls(region=1)
    assert check(RawDataValidator(SETTINGS).validate(data), "null_rate").passed
    data["raw"]["files"][1]["null_counts"] = _nulls(region=2)
    result = check(RawDataValidator(SETTINGS).validate(data), "null_rate")
    assert not result.passed
    assert result.details["worst_column"] == "region"
    assert result.details["null_counts"]["region"] == 5
    assert result.details["well_formed_rows"] == 98
    assert result.details["columns_over_threshold"] == ["region"]
    assert result.score == pytest.approx(1 - 5 / 98)


def test_raw_null_rate_threshold_is_exact_decimal() -> None:
    data = {"raw": {"files": [{"name": "a.csv", "rows_read": 100, "rows_malformed": 0,
                               "null_counts": _nulls(quantity=5)}]}}
    assert check(RawDataValidator(SETTINGS).validate(data), "null_rate").passed  # 5/100 == 0.05
    data["raw"]["files"][0]["null_counts"]["quantity"] = 6
    assert not check(RawDataValidator(SETTINGS).validate(data), "null_rate").passed


def test_raw_null_rate_ignores_the_optional_discount() -> None:
    data = good_data()
    data["raw"]["files"][0]["null_counts"] = _nulls(discount=59)
    result = check(RawDataValidator(SETTINGS).validate(data), "null_rate")
    assert result.passed and "discount" not in result.details["null_counts"]


def test_raw_with_no_well_formed_rows_has_no_null_rate_to_fail() -> None:
    data = {"raw": {"files": [{"name": "a.csv", "rows_read": 3, "rows_malformed": 3,
                               "null_counts": _nulls()}]}}
    result = check(RawDataValidator(SETTINGS).validate(data), "null_rate")
    assert result.passed and result.score == 1.0


# --- kafka ----------------------------------------------------------------------------------


def test_kafka_lost_message_fails_conservation_with_the_numbers() -> None:
    data = good_data()
    data["kafka"]["messages_in_topic"] = 99
    result = check(KafkaStreamValidator(SETTINGS).validate(data), "row_count_conservation")
    assert not result.passed
    assert result.score == pytest.approx(0.99)
    assert failed_equations(result) == ["kafka.messages_in_topic == kafka.messages_produced"]
    eq = next(e for e in result.details["equations"] if not e["holds"])
    assert (eq["left"], eq["right"]) == (99, 100)


@pytest.mark.parametrize(("key", "value", "expected_failure"), [
    ("messages_produced", 101, "kafka.messages_produced == kafka.rows_read"),
    ("rows_read", 90, "kafka.rows_read == raw.rows_read"),
])
def test_kafka_conservation_failures(key: str, value: int, expected_failure: str) -> None:
    data = good_data()
    data["kafka"][key] = value
    result = check(KafkaStreamValidator(SETTINGS).validate(data), "row_count_conservation")
    assert not result.passed
    assert expected_failure in failed_equations(result)


def test_kafka_without_raw_checks_only_its_own_counts() -> None:
    data = {"kafka": good_data()["kafka"]}
    result = check(KafkaStreamValidator(SETTINGS).validate(data), "row_count_conservation")
    assert result.passed and len(result.details["equations"]) == 2
    assert result.details["partitions"] == 2


def _message(**changes: Any) -> dict[str, Any]:
    msg = {"v": 1, "run": "r1", "file": "a.csv", "file_index": 0, "record": 1, "raw": "a,b",
           "malformed": None, "fields": dict.fromkeys(c.COLUMNS, "")}
    msg.update(changes)
    return msg


def test_kafka_messages_that_decode_pass_schema_compliance() -> None:
    data = good_data()
    data["kafka"]["messages"] = [
        _message(),
        json.dumps(_message(record=2, malformed="field count 3, header has 12", fields=None)),
        json.dumps(_message(record=3)).encode("utf-8"),
    ]
    result = check(KafkaStreamValidator(SETTINGS).validate(data), "schema_compliance")
    assert result.passed and result.score == 1.0
    assert result.details["messages_checked"] == 3
    assert result.details["kind"] == "pipeline"


_COMPACT = "#2,0,7,a.csv," + ",".join(["e1", "o1", "c1", "p1", "toys", "NA", "online", "2", "3.50", "", "USD", "x"])


def test_compact_messages_pass_schema_compliance_as_bytes_and_as_jsonl_lines() -> None:
    data = good_data()
    data["kafka"]["messages"] = [_COMPACT.encode(), json.loads(json.dumps(_COMPACT)), _COMPACT]
    result = check(KafkaStreamValidator(SETTINGS).validate(data), "schema_compliance")
    assert result.passed and result.details["messages_checked"] == 3


@pytest.mark.parametrize("bad", [
    b"\xff{not json",
    "[1, 2]",
    _message(v=2),
    _message(v=True),
    _message(record=0),
    _message(file_index="0"),
    _message(raw=None),
    _message(malformed="x"),  # both malformed and fields set
    _message(fields=None),  # neither
    _message(fields={"event_id": "e1"}),
    _message(fields={**dict.fromkeys(c.COLUMNS, ""), "quantity": 3}),
    {k: v for k, v in _message().items() if k != "run"},
    b"#2,0,7,a.csv,a,b",  # compact with 2 fields
    "#2,0,7",
    _COMPACT.replace("#2,0,7,", "#2,0,07,"),
    _COMPACT.replace("#2,0,7,", "#2,-1,7,"),
    _COMPACT.replace("#2,0,7,", "#2,0,0,"),
    _COMPACT.encode() + b"\xff",
])
def test_kafka_message_that_does_not_decode_fails(bad: Any) -> None:
    data = good_data()
    data["kafka"]["messages"] = [_message(), bad, _message(), _message()]
    result = check(KafkaStreamValidator(SETTINGS).validate(data), "schema_compliance")
    assert not result.passed
    assert result.score == 0.75
    assert result.details["messages_undecodable"] == 1
    assert result.details["examples"][0]["message"] == 2


# --- spark ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "expected_failure"), [
    ({"rows_in": 99}, "spark.rows_in == kafka.messages_in_topic"),
    ({"rows_valid": 96}, "spark.rows_in == spark.rows_valid + spark.rows_rejected"),
    ({"rejected_by_reason": {c.MALFORMED_ROW: 2}},
     "sum(spark.rejected_by_reason) == spark.rows_rejected"),
])
def test_spark_conservation_failures(changes: dict[str, Any], expected_failure: str) -> None:
    data = good_data()
    data["spark"].update(changes)
    result = check(SparkETLValidator(SETTINGS).validate(data), "row_count_conservation")
    assert not result.passed
    assert expected_failure in failed_equations(result)


def test_spark_compares_with_raw_when_kafka_is_absent() -> None:
    data = good_data()
    del data["kafka"]
    data["spark"] = {"rows_in": 0, "rows_valid": 0, "rows_rejected": 0}
    result = check(SparkETLValidator(SETTINGS).validate(data), "row_count_conservation")
    assert not result.passed
    assert result.score == 0.0
    assert failed_equations(result) == ["spark.rows_in == raw.rows_read"]


def test_spark_unknown_reason_code_fails() -> None:
    data = good_data()
    data["spark"]["rejected_by_reason"] = {c.MALFORMED_ROW: 2, "BAD_VIBES": 1}
    result = check(SparkETLValidator(SETTINGS).validate(data), "row_count_conservation")
    assert not result.passed and result.score == 0.0
    assert "BAD_VIBES" in result.details["problems"][0]


def test_spark_without_rejected_by_reason_still_checks_counts() -> None:
    data = good_data()
    del data["spark"]["rejected_by_reason"]
    result = check(SparkETLValidator(SETTINGS).validate(data), "row_count_conservation")
    assert result.passed and len(result.details["equations"]) == 2


# --- warehouse ------------------------------------------------------------------------------


def test_warehouse_schema_fails_on_missing_table_and_wrong_width() -> None:
    data = good_data()
    tables = data["warehouse"]["tables"]
    del tables[c.CUSTOMER_SUMMARY]
    tables[c.PRODUCT_PERFORMANCE].append(("p2", 1, 0, Decimal("1.00")))  # no return_rate
    result = check(WarehouseValidator(SETTINGS).validate(data), "schema_compliance")
    assert not result.passed
    assert result.score == pytest.approx(3 / 5)
    assert set(result.details["problems"]) == {c.CUSTOMER_SUMMARY, c.PRODUCT_PERFORMANCE}
    assert "row 1 has 4 values, expected 5" in result.details["problems"][c.PRODUCT_PERFORMANCE]


def test_warehouse_schema_compares_reported_column_names() -> None:
    data = good_data()
    data["warehouse"]["columns"] = dict(c.OUTPUT_TABLES)
    assert check(WarehouseValidator(SETTINGS).validate(data), "schema_compliance").passed
    data["warehouse"]["columns"][c.DAILY_SALES] = ("sale_date", "region", "category", "revenue")
    result = check(WarehouseValidator(SETTINGS).validate(data), "schema_compliance")
    assert not result.passed and list(result.details["problems"]) == [c.DAILY_SALES]


def test_warehouse_needs_exactly_one_audit_row() -> None:
    data = good_data()
    audit = data["warehouse"]["tables"][c.INGESTION_AUDIT]
    audit.append(audit[0])
    stage = WarehouseValidator(SETTINGS).validate(data)
    assert not stage.passed
    for name in ("duplicate_rate", "data_quality_score", "row_count_conservation"):
        result = check(stage, name)
        assert not result.passed and result.score == 0.0
    assert "ingestion_audit has 2 rows, expected 1" in check(stage, "duplicate_rate").details["problem"]


def test_warehouse_null_in_audit_is_a_failed_check_not_a_crash() -> None:
    data = good_data()
    row = list(data["warehouse"]["tables"][c.INGESTION_AUDIT][0])
    row[1] = None
    data["warehouse"]["tables"][c.INGESTION_AUDIT] = [tuple(row)]
    stage = WarehouseValidator(SETTINGS).validate(data)
    assert "rows_accepted" in check(stage, "data_quality_score").details["problem"]
    assert not stage.passed


def _with_audit(data: dict[str, Any], read: int, accepted: int, duplicate: int,
                **reasons: int) -> dict[str, Any]:
    data["warehouse"]["tables"][c.INGESTION_AUDIT] = [_audit(read, accepted, duplicate, **reasons)]
    return data


def test_duplicate_rate_at_the_threshold_passes_and_above_fails() -> None:
    data = _with_audit(good_data(), 100, 99, 1)
    result = check(WarehouseValidator(SETTINGS).validate(data), "duplicate_rate")
    assert result.passed and result.details["duplicate_rate"] == 0.01
    data = _with_audit(good_data(), 100, 98, 2)
    result = check(WarehouseValidator(SETTINGS).validate(data), "duplicate_rate")
    assert not result.passed
    assert result.score == pytest.approx(0.98)
    assert (result.details["rows_duplicate"], result.details["rows_read"]) == (2, 100)
    assert result.details["kind"] == "data"


def test_data_quality_score_below_minimum_fails() -> None:
    data = _with_audit(good_data(), 100, 80, 0, INVALID_FORMAT=20)
    result = check(WarehouseValidator(SETTINGS).validate(data), "data_quality_score")
    assert result.passed and result.score == 0.8
    data = _with_audit(good_data(), 100, 79, 0, INVALID_FORMAT=21)
    result = check(WarehouseValidator(SETTINGS).validate(data), "data_quality_score")
    assert not result.passed
    assert result.score == 0.79
    assert result.details["rejected_by_reason"] == {c.INVALID_FORMAT: 21}


def test_thresholds_come_from_the_settings() -> None:
    data = _with_audit(good_data(), 100, 79, 0, INVALID_FORMAT=21)
    lenient = PipelineStageSettings(min_data_quality_score=0.5)
    assert check(WarehouseValidator(lenient).validate(data), "data_quality_score").passed


def test_empty_dataset_passes_every_warehouse_check() -> None:
    data = {"warehouse": {"staging_rows": 0, "tables": {
        **{t: [] for t in c.OUTPUT_TABLES}, c.INGESTION_AUDIT: [_audit(0, 0, 0)]}}}
    stage = WarehouseValidator(SETTINGS).validate(data)
    assert stage.passed and stage.score == 1.0


def _mutate_rejected(data: dict[str, Any]) -> None:
    data["warehouse"]["tables"][c.REJECTED_ROWS].pop()


def _relabel_rejected(data: dict[str, Any]) -> None:
    rows = data["warehouse"]["tables"][c.REJECTED_ROWS]
    rows[0] = (*rows[0][:3], c.OUT_OF_RANGE, rows[0][4])


def _lose_accepted(data: dict[str, Any]) -> None:
    rows = data["warehouse"]["tables"][c.DAILY_SALES]
    rows[0] = (*rows[0][:9], 49)


def _audit_sum_off(data: dict[str, Any]) -> None:
    _with_audit(data, 100, 95, 1, MALFORMED_ROW=2, MISSING_FIELD=1, CONFLICTING_DUPLICATE=2)


def _reason_split_off(data: dict[str, Any]) -> None:
    row = list(data["warehouse"]["tables"][c.INGESTION_AUDIT][0])
    row[3] = 6  # rows_rejected no longer the sum of the per-reason columns
    data["warehouse"]["tables"][c.INGESTION_AUDIT] = [tuple(row)]


@pytest.mark.parametrize(("mutate", "expected_failure"), [
    (lambda d: d["warehouse"].update(staging_rows=99), "warehouse.staging_rows == spark.rows_in"),
    (lambda d: d["spark"].update(rows_in=101, rows_valid=98),
     "warehouse.staging_rows == spark.rows_in"),
    (_audit_sum_off, "ingestion_audit.rows_read == rows_accepted + rows_duplicate + rows_rejected"),
    (_reason_split_off, "sum(ingestion_audit.rejected_*) == ingestion_audit.rows_rejected"),
    (_mutate_rejected, "count(rejected_rows) == ingestion_audit.rows_rejected"),
    (_relabel_rejected,
     "count(rejected_rows where reason = MALFORMED_ROW) == ingestion_audit.rejected_malformed_row"),
    (_lose_accepted, "sum(daily_sales.line_count) == ingestion_audit.rows_accepted"),
    (lambda d: d["spark"].update(rows_valid=98, rows_rejected=2),
     "spark.rows_valid == rows_accepted + rows_duplicate + rejected_conflicting_duplicate"),
])
def test_warehouse_conservation_failures(mutate: Any, expected_failure: str) -> None:
    data = good_data()
    mutate(data)
    result = check(WarehouseValidator(SETTINGS).validate(data), "row_count_conservation")
    assert not result.passed
    assert expected_failure in failed_equations(result), failed_equations(result)
    assert result.details["kind"] == "pipeline"
    assert 0.0 <= result.score < 1.0


def test_warehouse_audit_rows_read_must_match_staging() -> None:
    data = _with_audit(good_data(), 101, 95, 1, MALFORMED_ROW=2, MISSING_FIELD=1,
                       CONFLICTING_DUPLICATE=2)
    result = check(WarehouseValidator(SETTINGS).validate(data), "row_count_conservation")
    assert "ingestion_audit.rows_read == warehouse.staging_rows" in failed_equations(result)


def test_warehouse_unknown_reason_in_rejected_rows_fails() -> None:
    data = good_data()
    data["warehouse"]["tables"][c.REJECTED_ROWS].append(("a.csv", 99, None, "WHATEVER", ""))
    result = check(WarehouseValidator(SETTINGS).validate(data), "row_count_conservation")
    assert not result.passed and "WHATEVER" in result.details["problems"][0]


# --- pipeline -------------------------------------------------------------------------------


def test_absent_stages_are_skipped_not_failed() -> None:
    data = good_data()
    summary = PipelineValidator(SETTINGS).validate_pipeline_run("r2", {"raw": data["raw"]})
    assert [s.stage for s in summary.stage_results] == ["raw"]
    assert summary.overall_passed


def test_nothing_to_validate_is_not_a_pass() -> None:
    summary = PipelineValidator(SETTINGS).validate_pipeline_run("r3", {})
    assert summary.stage_results == [] and not summary.overall_passed
    assert summary.overall_score == 0.0


def test_overall_is_the_mean_of_stages_and_all_must_pass() -> None:
    data = good_data()
    data["kafka"]["messages_in_topic"] = 50
    summary = PipelineValidator(SETTINGS).validate_pipeline_run("r4", data)
    assert not summary.overall_passed
    scores = [s.score for s in summary.stage_results]
    assert summary.overall_score == pytest.approx(sum(scores) / 4)
    kafka = summary.stage_results[1]
    assert kafka.stage == "kafka" and not kafka.passed and kafka.score == 0.5
    assert [s.passed for s in summary.stage_results] == [True, False, False, True]


def test_missing_required_count_is_a_usage_error() -> None:
    data = good_data()
    del data["kafka"]["messages_in_topic"]
    with pytest.raises(UsageError, match="messages_in_topic"):
        PipelineValidator(SETTINGS).validate_pipeline_run("r5", data)
    data = good_data()
    data["spark"]["rows_in"] = "100"
    with pytest.raises(UsageError, match="rows_in"):
        PipelineValidator(SETTINGS).validate_pipeline_run("r5", data)


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validators_base, "_REGISTRY", dict(validators_base._REGISTRY))


@pytest.mark.usefixtures("clean_registry")
def test_custom_validator_for_a_new_stage_is_run() -> None:
    @register_validator
    class DbtTestsValidator(BaseDataValidator):
        stage = "dbt_tests"

        def validate(self, data: Mapping[str, Any]) -> StageResult:
            failures = data["dbt_tests"]["failures"]
            return StageResult.from_checks(self.stage, [CheckResult(
                "dbt_tests_pass", failures == 0, 1.0 if failures == 0 else 0.0,
                {"kind": "pipeline", "failures": failures})])

    assert list(registered_validators())[-1] == "dbt_tests"
    data = good_data()
    data["dbt_tests"] = {"failures": 2}
    summary = PipelineValidator(SETTINGS).validate_pipeline_run("r6", data)
    assert [s.stage for s in summary.stage_results][-1] == "dbt_tests"
    assert not summary.overall_passed
    builtin = sum(st.score for st in summary.stage_results[:4])
    assert summary.overall_score == pytest.approx((builtin + 0.0) / 5)
    data["dbt_tests"] = {"failures": 0}
    assert PipelineValidator(SETTINGS).validate_pipeline_run("r6", data).overall_passed
    del data["dbt_tests"]
    summary = PipelineValidator(SETTINGS).validate_pipeline_run("r6", data)
    assert len(summary.stage_results) == 4


@pytest.mark.usefixtures("clean_registry")
def test_registering_a_stage_again_replaces_its_validator() -> None:
    @register_validator
    class StrictRaw(RawDataValidator):
        def validate(self, data: Mapping[str, Any]) -> StageResult:
            return StageResult.from_checks(self.stage, [CheckResult("never", False, 0.0,
                                                                    {"kind": "data"})])

    assert registered_validators()["raw"] is StrictRaw
    assert list(registered_validators()) == ["raw", "kafka", "spark", "warehouse"]
    summary = PipelineValidator(SETTINGS).validate_pipeline_run("r7", good_data())
    assert summary.stage_results[0].checks[0].check_name == "never"


def test_register_refuses_what_is_not_a_validator() -> None:
    with pytest.raises(UsageError):
        register_validator(dict)  # type: ignore[arg-type]

    class NoStage(BaseDataValidator):
        def validate(self, data: Mapping[str, Any]) -> StageResult:
            raise AssertionError

    with pytest.raises(UsageError, match="stage"):
        register_validator(NoStage)
    assert "NoStage" not in {cls.__name__ for cls in registered_validators().values()}


def test_explicit_validators_run_instead_of_the_registry() -> None:
    pv = PipelineValidator(SETTINGS, validators=[KafkaStreamValidator(SETTINGS)])
    summary = pv.validate_pipeline_run("r8", good_data())
    assert [s.stage for s in summary.stage_results] == ["kafka"]


def test_to_dict_has_the_seed_report_shape() -> None:
    summary = PipelineValidator(SETTINGS).validate_pipeline_run("r9", good_data())
    report = summary.to_dict()
    assert list(report) == ["pipeline_run_id", "overall_passed", "overall_score", "timestamp",
                            "stage_results"]
    assert report["pipeline_run_id"] == "r9" and report["overall_passed"] is True
    for stage in report["stage_results"]:
        assert list(stage) == ["stage", "passed", "score", "checks"]
        for ch in stage["checks"]:
            assert list(ch) == ["check_name", "passed", "score", "details"]
            assert isinstance(ch["details"], dict)
    assert report["timestamp"].endswith("+00:00")


def test_write_json_round_trips(tmp_path: Path) -> None:
    data = good_data()
    data["warehouse"]["tables"][c.INGESTION_AUDIT] = [_audit(100, 50, 9, INVALID_FORMAT=41)]
    summary = PipelineValidator(SETTINGS).validate_pipeline_run("r10", data)
    target = tmp_path / "nested" / "validation_report.json"
    summary.write_json(target)
    loaded = json.loads(target.read_text(encoding="utf-8"))
    assert loaded == json.loads(json.dumps(summary.to_dict()))
    assert loaded["overall_passed"] is False
    warehouse = loaded["stage_results"][3]
    failing = {ch["check_name"] for ch in warehouse["checks"] if not ch["passed"]}
    assert {"duplicate_rate", "data_quality_score"} <= failing


def test_summary_is_frozen() -> None:
    summary = ValidationSummary("r", True, 1.0, [], "t")
    with pytest.raises(AttributeError):
        summary.overall_passed = False  # type: ignore[misc]


def test_validators_do_not_mutate_their_input() -> None:
    data = good_data()
    before = copy.deepcopy(data)
    PipelineValidator(SETTINGS).validate_pipeline_run("r11", data)
    assert data == before


# --- agreement with the real encoder and the oracle -----------------------------------------

_HEADER = ",".join(c.COLUMNS) + ",note\n"
_ROW = "e{i},o{i},c1,p1,toys,na,Online,2,10.50,,usd,2024-01-02T10:00:00Z,x\n"
_DIRTY = (
    "".join(_ROW.format(i=i) for i in range(20))
    + _ROW.format(i=3)  # an exact duplicate
    + "e90,o1,c1,p1,toys,XX,online,2,10.50,,usd,2024-01-02T10:00:00Z,x\n"  # UNKNOWN_CODE
    + "bad,row\n"  # MALFORMED_ROW
    + "e91,o1,c1,p1,toys,na,online,2,10.50,,usd,2024-01-02T10:00:00Z,x\n"
    + "e91,o1,c1,p1,toys,na,online,3,10.50,,usd,2024-01-02T10:00:00Z,x\n"  # conflicting
    + ",o1,c1,p1,toys,na,online,2,10.50,,usd,2024-01-02T10:00:00Z,x\n"  # MISSING_FIELD
)


def _real_run_data() -> dict[str, Any]:
    """validation_data built the way the runner builds it, from the real reader, encoder and oracle."""
    from pipeline_props.oracles import run_oracle
    from pipeline_props.pipeline.ingest import check_headers
    from pipeline_props.pipeline.messages import encode
    from pipeline_props.pipeline.reader import iter_records

    files = [("a.csv", (_HEADER + _DIRTY).encode()), ("b.csv", (_HEADER + _ROW.format(i=50)).encode())]
    headers = check_headers(files)
    per_file, messages = [], []
    for index, (name, data) in enumerate(files):
        nulls, rows, malformed = dict.fromkeys(c.COLUMNS, 0), 0, 0
        for record in iter_records(data, source_file=name, file_index=index):
            rows += 1
            messages.append(encode(record, "sim")[1])
            if record.fields is None:
                malformed += 1
            else:
                for column, value in zip(c.COLUMNS, record.fields):
                    nulls[column] += value == ""
        per_file.append({"name": name, "file_index": index, "rows_read": rows,
                         "rows_malformed": malformed, "null_counts": nulls,
                         "extra_columns": list(headers[index].extra_columns),
                         "columns": list(headers[index].columns)})
    total = len(messages)
    return {
        "raw": {"files": per_file},
        "kafka": {"messages_produced": total, "messages_in_topic": total, "rows_read": total,
                  "partitions": 2, "messages": messages},
        "warehouse": {"tables": run_oracle(files).tables},
    }


def test_real_encoder_oracle_and_reader_satisfy_every_pipeline_check() -> None:
    summary = PipelineValidator(SETTINGS).validate_pipeline_run("sim", _real_run_data())
    pipeline_checks = [(s.stage, ch) for s in summary.stage_results for ch in s.checks
                       if ch.details["kind"] == "pipeline"]
    assert {(stage, ch.check_name) for stage, ch in pipeline_checks} == {
        ("kafka", "schema_compliance"), ("kafka", "row_count_conservation"),
        ("warehouse", "schema_compliance"), ("warehouse", "row_count_conservation")}
    for stage, ch in pipeline_checks:
        assert ch.passed, (stage, ch)
    # The dataset is dirty on purpose (6 of 27 rows rejected or duplicate): a data failure.
    quality = check(summary.stage_results[-1], "data_quality_score")
    assert not quality.passed and quality.details["rows_accepted"] == 21
    assert quality.details["rows_read"] == 27
    assert check(summary.stage_results[0], "schema_compliance").details["schema_drift"] == [
        {"file": "a.csv", "column": "note"}, {"file": "b.csv", "column": "note"}]


def test_a_scenario_widens_only_the_thresholds_left_at_their_defaults() -> None:
    from pipeline_props.runner import scenario_thresholds

    default = PipelineStageSettings()
    widened = scenario_thresholds(default, "data_quality_issues")
    assert widened.max_duplicate_percentage == 0.05 and widened.min_data_quality_score == 0.70
    assert widened.max_null_rate == default.max_null_rate
    mine = PipelineStageSettings(max_duplicate_percentage=0.02)
    assert scenario_thresholds(mine, "data_quality_issues").max_duplicate_percentage == 0.02
    assert scenario_thresholds(default, "happy_path") == default
    assert scenario_thresholds(default, None) == default
