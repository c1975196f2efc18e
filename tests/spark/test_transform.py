"""transform.parse_messages / validate against contract section 2 and SPEC section 6.

All cases run as one DataFrame (one Spark job per fixture), then each case is
checked on its own row, found by its record number.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from pyspark.sql import DataFrame, Row, SparkSession

from pipeline_props import contract as C
from pipeline_props.pipeline.transform import (
    OUTPUT_COLUMNS,
    PARTITION_STRIDE,
    UNKNOWN_FILE_INDEX,
    UNKNOWN_SOURCE_FILE,
    ensure_utc,
    parse_messages,
    transform,
    validate,
)

pytestmark = pytest.mark.spark

UTC = dt.timezone.utc
BASE: dict[str, str] = {
    "event_id": "ev-1",
    "order_id": "ord-1",
    "customer_id": "cust-1",
    "product_id": "prod-1",
    "category": "Garden",
    "region": "emea",
    "channel": "Online",
    "quantity": "3",
    "unit_price": "19.99",
    "discount": "0.1",
    "currency": "eur",
    "event_time": "2024-03-01T12:34:56.5+02:00",
}

EMOJI = "\U0001f600"  # astral: one code point, two UTF-16 units, four UTF-8 bytes

MISSING, INVALID, RANGE, CODE = C.MISSING_FIELD, C.INVALID_FORMAT, C.OUT_OF_RANGE, C.UNKNOWN_CODE

# (column, value, expected reason or None when valid)
FIELD_CASES: list[tuple[str, str, str | None]] = [
    # event_id
    ("event_id", "", MISSING),
    ("event_id", "A-z_0.9:x", None),
    ("event_id", "a" * 64, None),
    ("event_id", "a" * 65, INVALID),
    ("event_id", "bad id", INVALID),
    ("event_id", "é", INVALID),
    ("event_id", "e1\n", INVALID),
    ("event_id", "e/1", INVALID),
    # free-text ids: code points, control characters
    *[
        case
        for col in ("order_id", "customer_id", "product_id", "category")
        for case in [
            (col, "", MISSING),
            (col, EMOJI * 64, None),
            (col, EMOJI * 65, INVALID),
            (col, "x" * 63 + EMOJI, None),
            (col, "a\x00b", INVALID),
            (col, "a\x1fb", INVALID),
            (col, "a\x7f", INVALID),
            (col, "a\nb", INVALID),
            (col, "a\tb", INVALID),
            (col, "a\x80b", None),  # C1 controls are not in the contract's list
            (col, "has space, comma \"quote\"", None),
        ]
    ],
    # region / channel / currency: ASCII-only case folding, full match
    ("region", "", MISSING),
    ("region", "na", None),
    ("region", "LaTaM", None),
    ("region", "APAC", None),
    ("region", "ＮＡ", CODE),
    ("region", "NA\n", CODE),
    ("region", "N A", CODE),
    ("region", "EU", CODE),
    ("channel", "", MISSING),
    ("channel", "STORE", None),
    ("channel", "partner", None),
    ("channel", "ſtore", CODE),
    ("channel", "onlıne", CODE),  # dotless i
    ("channel", "ONLİNE", CODE),  # dotted capital I
    ("channel", "web", CODE),
    ("currency", "", MISSING),
    ("currency", "jpy", None),
    ("currency", "Cad", None),
    ("currency", "uſd", CODE),
    ("currency", "EURO", CODE),
    # quantity
    ("quantity", "", MISSING),
    ("quantity", "100000", None),
    ("quantity", "-100000", None),
    ("quantity", "+5", None),
    ("quantity", "000000005", None),
    ("quantity", "100001", RANGE),
    ("quantity", "-100001", RANGE),
    ("quantity", "0", RANGE),
    ("quantity", "-0", RANGE),
    ("quantity", "+0", RANGE),
    ("quantity", "999999999", RANGE),
    ("quantity", "1000000000", INVALID),
    ("quantity", "5.0", INVALID),
    ("quantity", "1e3", INVALID),
    ("quantity", "1_000", INVALID),
    ("quantity", "١٢", INVALID),  # Arabic-Indic digits
    ("quantity", "５", INVALID),  # full-width digit
    ("quantity", " 5", INVALID),
    ("quantity", "5\n", INVALID),
    ("quantity", "--5", INVALID),
    # unit_price
    ("unit_price", "", MISSING),
    ("unit_price", "0", None),
    ("unit_price", "-0.00", None),
    ("unit_price", "1000000.00", None),
    ("unit_price", "+12.5", None),
    ("unit_price", "1000000.01", RANGE),
    ("unit_price", "999999999.99", RANGE),
    ("unit_price", "-0.01", RANGE),
    ("unit_price", "5.", INVALID),
    ("unit_price", ".5", INVALID),
    ("unit_price", "5.123", INVALID),
    ("unit_price", "1000000000", INVALID),
    ("unit_price", "1,5", INVALID),
    ("unit_price", "NaN", INVALID),
    ("unit_price", "1e2", INVALID),
    # discount
    ("discount", "", None),
    ("discount", "0", None),
    ("discount", "1", None),
    ("discount", "1.000", None),
    ("discount", "-0", None),
    ("discount", "0.125", None),
    ("discount", "1.001", RANGE),
    ("discount", "-0.001", RANGE),
    ("discount", "999.999", RANGE),
    ("discount", "1.0000", INVALID),
    ("discount", "1000", INVALID),
    ("discount", ".5", INVALID),
    ("discount", "0,5", INVALID),
    # event_time
    ("event_time", "", MISSING),
    ("event_time", "2024-02-29T10:00:00Z", None),
    ("event_time", "2023-02-29T10:00:00Z", INVALID),
    ("event_time", "2000-02-29T00:00:00Z", None),
    ("event_time", "2100-02-29T00:00:00Z", INVALID),
    ("event_time", "1999-02-29T00:00:00Z", INVALID),
    ("event_time", "0000-02-29T00:00:00Z", RANGE),
    ("event_time", "1999-12-31T23:00:00-02:00", RANGE),
    ("event_time", "2000-01-01T00:30:00+01:00", None),
    ("event_time", "2100-01-01T00:00:00Z", RANGE),
    ("event_time", "2099-12-31T23:59:59.999999-14:00", None),
    ("event_time", "2024-01-01T24:00:00Z", INVALID),
    ("event_time", "2024-06-30T23:59:60Z", INVALID),
    ("event_time", "2024-01-01T10:60:00Z", INVALID),
    ("event_time", "2024-13-01T10:00:00Z", INVALID),
    ("event_time", "2024-00-10T10:00:00Z", INVALID),
    ("event_time", "2024-04-31T10:00:00Z", INVALID),
    ("event_time", "2024-01-00T10:00:00Z", INVALID),
    ("event_time", "2024-01-01T10:00:00+14:00", None),
    ("event_time", "2024-01-01T10:00:00-14:00", None),
    ("event_time", "2024-01-01T10:00:00+14:01", INVALID),
    ("event_time", "2024-01-01T10:00:00+05:60", INVALID),
    ("event_time", "2024-01-01T10:00:00-00:00", None),
    ("event_time", "2024-01-01T10:00:00", INVALID),
    ("event_time", "2024-01-01t10:00:00Z", INVALID),
    ("event_time", "2024-01-01T10:00:00z", INVALID),
    ("event_time", "2024-01-01 10:00:00Z", None),
    ("event_time", "2024-01-01  10:00:00Z", INVALID),
    ("event_time", "2024-01-01T10:00:00.1Z", None),
    ("event_time", "2024-01-01T10:00:00.123456Z", None),
    ("event_time", "2024-01-01T10:00:00.1234567Z", INVALID),
    ("event_time", "2024-01-01T10:00:00.Z", INVALID),
    ("event_time", "2024-01-01T10:00:00,5Z", INVALID),
    ("event_time", "2024-1-01T10:00:00Z", INVALID),
    ("event_time", "２０２４-01-01T10:00:00Z", INVALID),
    ("event_time", "2024-01-01T10:00:00Z\n", INVALID),
    ("event_time", "2024-01-01T10:00:00+0100", INVALID),
    ("event_time", "2024-01-01T10:00Z", INVALID),
]

# Several columns fail: the first in contract order wins; within a column,
# missing before format before range.
ORDER_CASES: list[tuple[dict[str, str], str]] = [
    ({"event_id": "bad id", "quantity": "x"}, INVALID),
    ({"event_id": "", "order_id": ""}, MISSING),
    ({"order_id": "", "region": "xx"}, MISSING),
    ({"region": "xx", "order_id": "o" * 65}, INVALID),
    ({"channel": "web", "quantity": ""}, CODE),
    ({"quantity": "", "unit_price": "x"}, MISSING),
    ({"quantity": "0", "unit_price": "x"}, RANGE),
    ({"unit_price": "-1", "discount": "x"}, RANGE),
    ({"discount": "2", "currency": ""}, RANGE),
    ({"currency": "xxx", "event_time": ""}, CODE),
    ({"discount": "", "currency": "usd", "event_time": "bad"}, INVALID),
]

# (column, value, expected normalised value) for valid rows
NORMALISED_CASES: list[tuple[str, str, Any]] = [
    ("region", "na", "NA"),
    ("region", "LaTaM", "LATAM"),
    ("channel", "STORE", "store"),
    ("channel", "Online", "online"),
    ("currency", "Cad", "CAD"),
    ("category", "Garden", "Garden"),
    ("order_id", EMOJI * 64, EMOJI * 64),
    ("quantity", "+5", 5),
    ("quantity", "-100000", -100000),
    ("quantity", "000000005", 5),
    ("unit_price", "0", Decimal("0.00")),
    ("unit_price", "+12.5", Decimal("12.50")),
    ("unit_price", "1000000.00", Decimal("1000000.00")),
    ("unit_price", "-0.00", Decimal("0.00")),
    ("discount", "", Decimal("0.000")),
    ("discount", "1", Decimal("1.000")),
    ("discount", "0.125", Decimal("0.125")),
    ("discount", "-0", Decimal("0.000")),
    ("event_time", "2024-02-29T10:00:00Z", dt.datetime(2024, 2, 29, 10, 0, 0, tzinfo=UTC)),
    ("event_time", "2000-01-01T00:30:00+01:00", dt.datetime(1999, 12, 31, 23, 30, 0, tzinfo=UTC)),
    (
        "event_time",
        "2099-12-31T23:59:59.999999-14:00",
        dt.datetime(2100, 1, 1, 13, 59, 59, 999999, tzinfo=UTC),
    ),
    ("event_time", "2024-01-01T10:00:00+14:00", dt.datetime(2023, 12, 31, 20, 0, 0, tzinfo=UTC)),
    ("event_time", "2024-01-01T10:00:00-00:00", dt.datetime(2024, 1, 1, 10, 0, 0, tzinfo=UTC)),
    ("event_time", "2024-01-01 10:00:00Z", dt.datetime(2024, 1, 1, 10, 0, 0, tzinfo=UTC)),
    ("event_time", "2024-01-01T10:00:00.1Z", dt.datetime(2024, 1, 1, 10, 0, 0, 100000, tzinfo=UTC)),
    ("event_time", "2024-01-01T10:00:00.000001Z", dt.datetime(2024, 1, 1, 10, 0, 0, 1, tzinfo=UTC)),
    ("event_time", "2000-03-01T00:00:00Z", dt.datetime(2000, 3, 1, tzinfo=UTC)),
    ("event_time", "2000-02-29T23:59:59+00:01", dt.datetime(2000, 2, 29, 23, 58, 59, tzinfo=UTC)),
]


def message(record: int, fields: dict[str, str] | None = None, **top: Any) -> str:
    """A well-formed message for ``record`` with BASE fields overridden by ``fields``."""
    body: dict[str, Any] = {
        "v": 1,
        "run": "r1",
        "file": "sales.csv",
        "file_index": 0,
        "record": record,
        "raw": f"raw {record}",
        "malformed": None,
        "fields": {**BASE, **(fields or {})},
    }
    body.update(top)
    return json.dumps(body)


def _cases() -> list[dict[str, str]]:
    out = [dict(BASE)]
    out += [{column: value} for column, value, _ in FIELD_CASES]
    out += [overrides for overrides, _ in ORDER_CASES]
    out += [{column: value} for column, value, _ in NORMALISED_CASES]
    return out


def _run(spark: SparkSession, values: list[str | None]) -> DataFrame:
    return transform(spark.createDataFrame([(v,) for v in values], "value string"))


def _by_record(df: DataFrame) -> dict[int, Row]:
    rows = df.collect()
    by = {r["record_number"]: r for r in rows}
    assert len(by) == len(rows)
    return by


@pytest.fixture(scope="module")
def results(spark: SparkSession) -> dict[int, Row]:
    ensure_utc(spark)
    cases = _cases()
    return _by_record(_run(spark, [message(i + 1, fields) for i, fields in enumerate(cases)]))


def _row(results: dict[int, Row], overrides: dict[str, str]) -> Row:
    index = _cases().index(overrides)
    return results[index + 1]


def test_base_message_is_valid_and_normalised(results: dict[int, Row]) -> None:
    row = results[1]
    assert row.asDict() == {
        "file_index": 0,
        "source_file": "sales.csv",
        "record_number": 1,
        "raw_record": "raw 1",
        "event_id": "ev-1",
        "reason": None,
        "order_id": "ord-1",
        "customer_id": "cust-1",
        "product_id": "prod-1",
        "category": "Garden",
        "region": "EMEA",
        "channel": "online",
        "quantity": 3,
        "unit_price": Decimal("19.99"),
        "discount": Decimal("0.100"),
        "currency": "EUR",
        # Spark returns naive datetimes in the session time zone (UTC)
        "event_time": dt.datetime(2024, 3, 1, 10, 34, 56, 500000),
    }


@pytest.mark.parametrize(("column", "value", "reason"), FIELD_CASES, ids=lambda x: repr(x)[:40])
def test_field_rule(results: dict[int, Row], column: str, value: str, reason: str | None) -> None:
    row = _row(results, {column: value})
    assert row["reason"] == reason
    if reason is None:
        assert all(row[c] is not None for c in OUTPUT_COLUMNS if c != "reason")
    else:
        # rejected rows carry position, raw record and event_id, no values
        assert row["raw_record"] == f"raw {row['record_number']}"
        assert all(row[c] is None for c in OUTPUT_COLUMNS[6:])
        expected_id = {**BASE, column: value}["event_id"] or None
        assert row["event_id"] == expected_id


@pytest.mark.parametrize(("overrides", "reason"), ORDER_CASES, ids=lambda x: repr(x)[:50])
def test_first_failing_column_wins(results: dict[int, Row], overrides: dict[str, str], reason: str) -> None:
    assert _row(results, overrides)["reason"] == reason


@pytest.mark.parametrize(("column", "value", "expected"), NORMALISED_CASES, ids=lambda x: repr(x)[:40])
def test_normalised_value(results: dict[int, Row], column: str, value: str, expected: Any) -> None:
    row = _row(results, {column: value})
    assert row["reason"] is None
    got = row[column]
    if isinstance(expected, dt.datetime):
        got = got.replace(tzinfo=UTC)
    assert got == expected
    assert type(got) is type(expected)
    if isinstance(expected, Decimal):
        assert got.as_tuple().exponent == expected.as_tuple().exponent


def test_output_schema(spark: SparkSession) -> None:
    df = _run(spark, [message(1)])
    assert tuple(df.columns) == OUTPUT_COLUMNS
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    assert types["file_index"] == "int"
    assert types["record_number"] == "bigint"
    assert types["quantity"] == "int"
    assert types["unit_price"] == "decimal(11,2)"
    assert types["discount"] == "decimal(4,3)"
    assert types["event_time"] == "timestamp"


def test_no_python_udf_in_plan(spark: SparkSession) -> None:
    plan = _run(spark, [message(1)])._jdf.queryExecution().executedPlan().toString()
    assert "EvalPython" not in plan
    assert "PythonUDF" not in plan


def test_results_do_not_depend_on_ansi_mode(spark: SparkSession, results: dict[int, Row]) -> None:
    before = spark.conf.get("spark.sql.ansi.enabled")
    spark.conf.set("spark.sql.ansi.enabled", "false" if before == "true" else "true")
    try:
        other = _by_record(
            _run(spark, [message(i + 1, fields) for i, fields in enumerate(_cases())])
        )
    finally:
        spark.conf.set("spark.sql.ansi.enabled", before)
    assert other == results


# ------------------------------------------------------------ malformed input


def test_malformed_messages(spark: SparkSession) -> None:
    fields_missing_key = dict(BASE)
    del fields_missing_key["discount"]
    values: list[str | None] = [
        message(1, malformed="field count 11, header has 12", fields=None, raw="a,b"),
        json.dumps({"v": 1, "run": "r1", "file": "s.csv", "file_index": 2, "record": 2, "raw": "x",
                    "malformed": "field count 11, header has 12", "fields": None}),
        json.dumps({"v": 1, "run": "r1", "file": "s.csv", "file_index": 0, "record": 3, "raw": "x",
                    "malformed": None, "fields": fields_missing_key}),
        message(4, v=2),
        message(5, fields={"quantity": None}),  # type: ignore[dict-item]
        message(6, raw=None),
    ]
    by = _by_record(_run(spark, values))
    assert set(by) == {1, 2, 3, 4, 5, 6}
    for rec, row in by.items():
        assert row["reason"] == C.MALFORMED_ROW, rec
        assert row["event_id"] is None
        assert all(row[c] is None for c in OUTPUT_COLUMNS[6:])
    assert by[1]["raw_record"] == "a,b"
    assert (by[2]["file_index"], by[2]["source_file"]) == (2, "s.csv")
    assert by[6]["raw_record"] == values[5]  # no raw: the message itself


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "",
        "[1, 2]",
        '{"v": 1}',
        '{"v": 1, "file": "s.csv", "file_index": 0, "raw": "x"}',  # no record
        '{"v": 1, "file": "s.csv", "record": 4, "raw": "x"}',  # no file_index
        '{"v": 1, "file_index": 0, "record": 4, "raw": "x"}',  # no file
        '{"v": 1, "file": "s.csv", "file_index": "0", "record": 4}',  # wrong type
        '{"v": 1, "file": "s.csv", "file_index": -3, "record": 4}',
        '{"v": 1, "file": "s.csv", "file_index": 0, "record": 4.5}',
        '{"v": 1, "file": "s.csv", "file_index": 0, "record": 4',  # truncated
    ],
)
def test_unreadable_position(spark: SparkSession, value: str) -> None:
    (row,) = _run(spark, [value]).collect()
    assert row["reason"] == C.MALFORMED_ROW
    assert row["file_index"] == UNKNOWN_FILE_INDEX
    assert row["source_file"] == UNKNOWN_SOURCE_FILE
    assert row["record_number"] is not None
    assert row["raw_record"] == value
    assert row["event_id"] is None


def test_null_value_is_a_reject_not_a_loss(spark: SparkSession) -> None:
    rows = _run(spark, [None, "", message(1)]).collect()
    assert len(rows) == 3
    assert sorted(r["reason"] or "" for r in rows) == ["", C.MALFORMED_ROW, C.MALFORMED_ROW]


def test_kafka_shaped_input_uses_offsets_and_repairs_utf8(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [
            (b"\xffgarbage", 0, 41),
            (b"junk", 3, 7),
            (message(9).encode(), 1, 8),
        ],
        "value binary, partition int, offset bigint",
    )
    by = _by_record(validate(parse_messages(df)))
    assert by[41]["raw_record"] == "\ufffdgarbage"
    assert by[3 * PARTITION_STRIDE + 7]["raw_record"] == "junk"
    assert by[9]["reason"] is None


def test_ensure_utc(spark: SparkSession) -> None:
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    ensure_utc(spark)
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
