"""Unit tests for pipeline_props.compare: normalisation, diffs, rendering, CSV round trip."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline_props import contract as c
from pipeline_props.compare import (
    COUNT_COLUMNS,
    TEXT_COLUMNS,
    Divergence,
    TableDiff,
    assert_tables_equal,
    compare,
    compare_tables,
    normalise_table,
    read_table_csv,
    write_table_csv,
)
from pipeline_props.errors import DivergenceError, InputError, UsageError

pytestmark = pytest.mark.unit

D = Decimal
DAY = date(2024, 3, 1)
DAILY = (DAY, "NA", "toys", D("20.00"), D("0.00"), D("20.00"), 2, 0, 1, 1)
AUDIT = (3, 2, 0, 1, 1, 0, 0, 0, 0, 0)


def tableset(**tables: list[tuple]) -> dict[str, list[tuple]]:
    base: dict[str, list[tuple]] = {name: [] for name in c.OUTPUT_TABLES}
    base[c.INGESTION_AUDIT] = [AUDIT]
    base.update(tables)
    return base


# ---------------------------------------------------------------- normalisation


def test_every_output_column_has_exactly_one_kind() -> None:
    kinds = [TEXT_COLUMNS, COUNT_COLUMNS, c.MONEY_COLUMNS, c.RATE_COLUMNS, c.DATE_COLUMNS]
    for columns in c.OUTPUT_TABLES.values():
        for column in columns:
            assert sum(column in kind for kind in kinds) == 1, column
    assert {"record_number", "units_sold", "rows_read", "rejected_conflicting_duplicate"} <= COUNT_COLUMNS
    assert {"raw_record", "event_id", "category"} <= TEXT_COLUMNS


def test_normalise_psycopg_values() -> None:
    # psycopg: numeric -> Decimal (sum(bigint) is numeric, so counts may be Decimal too).
    row = (DAY, "NA", "toys", D("20"), D("0.000"), D("20.0"), D("2"), 0, 1, 1)
    assert normalise_table(c.DAILY_SALES, [row]) == [DAILY]
    (out,) = normalise_table(c.DAILY_SALES, [row])
    assert [str(v) for v in out[3:6]] == ["20.00", "0.00", "20.00"]
    assert type(out[6]) is int


def test_normalise_duckdb_fetchall_and_dataframe() -> None:
    con = duckdb.connect()
    try:
        relation = con.sql(
            "select date '2024-03-01' as sale_date, 'NA' as region, 'toys' as category,"
            " 20.00::decimal(18,2) as gross_revenue_usd, 0::decimal(18,2) as returns_usd,"
            " 20::decimal(38,2) as net_revenue_usd, sum(2::bigint) as units_sold,"
            " 0::bigint as units_returned, 1::integer as order_count, 1::hugeint as line_count"
        )
        assert normalise_table(c.DAILY_SALES, relation.fetchall()) == [DAILY]
        frame = relation.df()  # decimals become float64, dates datetime64
        assert normalise_table(c.DAILY_SALES, frame) == [DAILY]
        nulls = con.sql(
            "select 'p1' as product_id, 0::bigint as units_sold, 2::bigint as units_returned,"
            " -20.00::decimal(18,2) as net_revenue_usd, null::decimal(9,4) as return_rate"
        )
        assert normalise_table(c.PRODUCT_PERFORMANCE, nulls.df()) == [("p1", 0, 2, D("-20.00"), None)]
        assert normalise_table(c.PRODUCT_PERFORMANCE, nulls.fetchall()) == [("p1", 0, 2, D("-20.00"), None)]
    finally:
        con.close()


def test_normalise_pandas_values() -> None:
    frame = pd.DataFrame(
        {
            # columns out of order: taken by name
            "last_purchase_date": pd.to_datetime(["2024-03-02", None]),
            "customer_id": ["c1", "c2"],
            "first_purchase_date": [pd.Timestamp("2024-03-01"), pd.NaT],
            "order_count": pd.array([3, None], dtype="Int64"),
            "net_revenue_usd": [1.1, float("nan")],
        }
    )
    assert normalise_table(c.CUSTOMER_SUMMARY, frame) == [
        ("c1", date(2024, 3, 1), date(2024, 3, 2), 3, D("1.10")),
        ("c2", None, None, None, None),
    ]
    # numpy scalars and rows taken from itertuples / to_numpy
    row = ("p1", np.int64(5), np.int32(1), np.float64(10.01), np.float64(0.2))
    assert normalise_table(c.PRODUCT_PERFORMANCE, [row]) == [("p1", 5, 1, D("10.01"), D("0.2000"))]
    assert normalise_table(
        c.CUSTOMER_SUMMARY, [("c", np.datetime64("2024-03-01"), np.datetime64("NaT"), np.int64(1), np.nan)]
    ) == [("c", DAY, None, 1, None)]
    with pytest.raises(UsageError, match="lacks columns"):
        normalise_table(c.CUSTOMER_SUMMARY, frame.drop(columns=["order_count"]))


def test_normalise_csv_strings() -> None:
    row = ("2024-03-01", "NA", "toys", "20", "0.0", "20.00", "2", "0", "1", "1")
    assert normalise_table(c.DAILY_SALES, [row]) == [DAILY]
    assert normalise_table(c.PRODUCT_PERFORMANCE, [("p", "1", "0", "1.5", "")]) == [
        ("p", 1, 0, D("1.50"), None)
    ]
    # In text columns the empty string is a value, not NULL.
    assert normalise_table(c.REJECTED_ROWS, [("f", "1", "", "MALFORMED_ROW", "")]) == [
        ("f", 1, "", "MALFORMED_ROW", "")
    ]


def test_normalisation_never_rounds_or_hides_a_wrong_value() -> None:
    (row,) = normalise_table(
        c.DAILY_SALES,
        [(datetime(2024, 3, 1, 13, 0), "NA", "toys", D("20.005"), 0.1 + 0.2, D("-0.00"), 2.5, "x", "1_0", "１")],
    )
    assert row[0] == datetime(2024, 3, 1, 13, 0)  # not a date: kept
    assert row[3] == D("20.005") and str(row[3]) == "20.005"
    assert row[4] == D("0.30000000000000004")
    assert str(row[5]) == "0.00"  # -0 is 0
    assert row[6:] == (2.5, "x", "1_0", "１")  # no lenient parsing of counts
    aware = datetime(2024, 3, 1, tzinfo=timezone.utc)
    assert normalise_table(c.CUSTOMER_SUMMARY, [("c", aware, "2024-02-30", 1, "1e2")])[0][1:] == (
        aware, "2024-02-30", 1, "1e2",
    )
    assert normalise_table(c.PRODUCT_PERFORMANCE, [("p", 1, 0, D("NaN"), math.inf)])[0][3:] == (None, math.inf)


def test_normalise_refuses_wrong_shapes_and_tables() -> None:
    with pytest.raises(UsageError, match="3 values, expected 5"):
        normalise_table(c.CUSTOMER_SUMMARY, [("c", DAY, DAY)])
    with pytest.raises(UsageError, match="unknown table"):
        normalise_table("daily_sale", [])


# ---------------------------------------------------------------- comparison


def test_equal_tablesets_from_different_sources_match() -> None:
    actual = tableset(daily_sales=[tuple(str(v) for v in DAILY)], ingestion_audit=[tuple(map(np.int64, AUDIT))])
    expected = tableset(daily_sales=[DAILY])
    divergence = compare(actual, expected)
    assert divergence.ok
    assert divergence.render() == "pipeline and oracle agree on every table"
    assert_tables_equal(actual, expected)


def test_rows_are_matched_by_key_into_changed_missing_and_extra() -> None:
    other_day = (date(2024, 3, 2), *DAILY[1:])
    third_day = (date(2024, 3, 3), *DAILY[1:])
    changed = (DAY, "NA", "toys", D("20.01"), D("0.00"), D("20.01"), 2, 0, 1, 1)
    diff = compare_tables(c.DAILY_SALES, [changed, third_day], [DAILY, other_day])
    assert diff == TableDiff(
        table=c.DAILY_SALES,
        columns=c.OUTPUT_TABLES[c.DAILY_SALES],
        missing=[other_day],
        extra=[third_day],
        changed=[(changed, DAILY)],
    )
    assert not diff.ok


def test_rejected_rows_compare_as_a_multiset() -> None:
    row = ("a.csv", 2, None, "MALFORMED_ROW", "oops")
    assert compare_tables(c.REJECTED_ROWS, [row, row], [row, row]).ok
    diff = compare_tables(c.REJECTED_ROWS, [row], [row, row])
    assert (diff.missing, diff.extra, diff.changed) == ([row], [], [])
    reason = ("a.csv", 2, None, "INVALID_FORMAT", "oops")
    diff = compare_tables(c.REJECTED_ROWS, [row, reason], [row, row])
    assert (diff.missing, diff.extra, diff.changed) == ([], [], [(reason, row)])


def test_audit_rows_pair_up_as_changed() -> None:
    wrong = (3, 1, 1, 1, 1, 0, 0, 0, 0, 0)
    diff = compare_tables(c.INGESTION_AUDIT, [wrong], [AUDIT])
    assert diff.changed == [(wrong, AUDIT)]


def test_a_table_missing_on_one_side_is_a_divergence() -> None:
    expected = tableset(daily_sales=[DAILY])
    actual = {k: v for k, v in expected.items() if k != c.DAILY_SALES}
    divergence = compare(actual, expected)
    diff = divergence.diffs[c.DAILY_SALES]
    assert (diff.missing, diff.absent_in) == ([DAILY], "pipeline")
    # Even an empty table must exist on both sides.
    actual = {k: v for k, v in expected.items() if k != c.CUSTOMER_SUMMARY}
    diff = compare(actual, expected).diffs[c.CUSTOMER_SUMMARY]
    assert not diff.ok and diff.absent_in == "pipeline"
    assert "the pipeline has no table customer_summary at all" in compare(actual, expected).render()
    with pytest.raises(UsageError, match="unknown names"):
        compare({**expected, "dailysales": []}, expected)


# ---------------------------------------------------------------- rendering


def _lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_render_shows_a_changed_money_value_side_by_side() -> None:
    changed = (DAY, "NA", "toys", D("20.01"), D("0.00"), D("20.01"), 2, 0, 1, 1)
    text = compare(tableset(daily_sales=[changed]), tableset(daily_sales=[DAILY])).render()
    assert "table daily_sales: 1 changed, 0 missing (oracle only), 0 extra (pipeline only)" in text
    assert "changed (sale_date=2024-03-01, region='NA', category='toys'):" in text
    (header,) = _lines_with(text, "| pipeline")
    assert header.split("|")[1].strip() == "pipeline" and header.split("|")[2].strip() == "oracle"
    (gross,) = _lines_with(text, "gross_revenue_usd")
    assert gross.lstrip().startswith("≠ gross_revenue_usd")
    assert [cell.strip() for cell in gross.split("|")[1:]] == ["20.01", "20.00"]
    (returns,) = _lines_with(text, " returns_usd ")
    assert "≠" not in returns
    assert len(_lines_with(text, "≠")) == 2  # gross and net
    # Columns line up: every grid line has its bars at the same offsets.
    grid = [line for line in text.splitlines() if line.count("|") == 2]
    assert len({line.index("|") for line in grid}) == 1


def test_render_shows_missing_and_extra_rows() -> None:
    missing = (date(2024, 3, 2), "EMEA", "toys", D("1.00"), D("0.00"), D("1.00"), 1, 0, 1, 1)
    extra = (date(2024, 3, 3), "APAC", "toys", D("2.00"), D("0.00"), D("2.00"), 1, 0, 1, 1)
    text = compare(
        tableset(daily_sales=[DAILY, extra]), tableset(daily_sales=[DAILY, missing])
    ).render()
    assert "0 changed, 1 missing (oracle only), 1 extra (pipeline only)" in text
    assert "missing from the pipeline (sale_date=2024-03-02, region='EMEA', category='toys'):" in text
    assert "extra in the pipeline (sale_date=2024-03-03, region='APAC', category='toys'):" in text
    region_lines = _lines_with(text, "region ")
    assert [[cell.strip() for cell in line.split("|")[1:]] for line in region_lines] == [
        ["", "'EMEA'"],
        ["'APAC'", ""],
    ]


def test_render_makes_invisible_text_differences_visible_and_limits_rows() -> None:
    pipeline = [("a.csv", n, "", "MALFORMED_ROW", "x" * 200 + "tail\t") for n in range(1, 31)]
    oracle = [("a.csv", n, None, "MALFORMED_ROW", "x" * 200 + "tail ") for n in range(1, 31)]
    text = compare(tableset(rejected_rows=pipeline), tableset(rejected_rows=oracle)).render(max_rows=3)
    assert "30 changed" in text
    assert "... and 27 more differing rows not shown" in text
    (event_id,) = _lines_with(text, "event_id")[:1]
    assert [cell.strip() for cell in event_id.split("|")[1:]] == ["''", "NULL"]
    raw = _lines_with(text, "raw_record")[0]
    assert "tail\\t'" in raw and "tail '" in raw  # the clipped cell keeps the differing end
    assert len(raw) < 200


def test_to_json_is_serialisable_with_strings_for_dates_and_decimals() -> None:
    changed = (DAY, "NA", "toys", D("20.01"), D("0.00"), D("20.01"), 2, 0, 1, 1)
    divergence = compare(tableset(daily_sales=[changed]), tableset(daily_sales=[DAILY]))
    data = json.loads(json.dumps(divergence.to_json()))
    assert data["ok"] is False
    daily = data["tables"]["daily_sales"]
    assert daily["counts"] == {"missing": 0, "extra": 0, "changed": 1}
    assert daily["changed"][0]["pipeline"][:4] == ["2024-03-01", "NA", "toys", "20.01"]
    assert daily["changed"][0]["oracle"][3] == "20.00"
    assert daily["changed"][0]["differing_columns"] == ["gross_revenue_usd", "net_revenue_usd"]
    assert data["tables"]["rejected_rows"]["ok"] is True


def test_assert_tables_equal_raises_with_the_divergence() -> None:
    expected = tableset(daily_sales=[DAILY])
    with pytest.raises(DivergenceError) as info:
        assert_tables_equal(tableset(), expected)
    assert isinstance(info.value.divergence, Divergence)
    assert info.value.divergence.diffs[c.DAILY_SALES].missing == [DAILY]
    assert "missing from the pipeline" in str(info.value)
    assert info.value.exit_code == 1


# ---------------------------------------------------------------- CSV round trip

NASTY = [
    "",
    " ",
    "a,b",
    'say "hi"',
    '""',
    '"',
    "line1\nline2",
    "cr\rlf\r\n",
    "\r\n",
    "NULL",
    "\ufffd\x00\x7f",
    "tab\tend\t",
    "ＮＡ 😀 é",
    ",",
    '","',
]


def test_csv_round_trip_with_nasty_text(tmp_path: Path) -> None:
    rows = [("f,\"x\".csv", n, text, "MALFORMED_ROW", text) for n, text in enumerate(NASTY, start=1)]
    rows.append(("f.csv", 99, None, "MISSING_FIELD", ""))
    rows.append(("f.csv", 99, None, "MISSING_FIELD", ""))  # repeated rows survive
    path = tmp_path / "rejected_rows.csv"
    write_table_csv(path, c.REJECTED_ROWS, rows)
    assert read_table_csv(path, c.REJECTED_ROWS) == rows
    content = path.read_bytes()
    assert content.startswith(b"source_file,record_number,event_id,reason,raw_record\n")
    assert b'"f.csv",99,,"MISSING_FIELD",""\n' in content  # NULL unquoted, "" quoted


def test_csv_round_trip_of_every_table(tmp_path: Path) -> None:
    tables = {
        c.DAILY_SALES: [DAILY, (date(2000, 1, 1), "LATAM", "", D("-0.01"), D("99999999999.99"), D("0.00"), 0, 0, 0, 0)],
        c.CUSTOMER_SUMMARY: [("c,1", date(1999, 12, 31), date(2100, 1, 1), 1, D("-5.43"))],
        c.PRODUCT_PERFORMANCE: [("p", 0, 2, D("-20.00"), None), ("q", 3, 1, D("1.00"), D("0.3333"))],
        c.REJECTED_ROWS: [],
        c.INGESTION_AUDIT: [AUDIT],
    }
    for table, rows in tables.items():
        path = tmp_path / f"{table}.csv"
        write_table_csv(path, table, rows)
        back = read_table_csv(path, table)
        assert back == rows
        assert [[str(v) for v in row] for row in back] == [[str(v) for v in row] for row in rows]


def test_read_table_csv_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("customer_id,first_purchase_date\n")
    with pytest.raises(InputError, match="not the columns"):
        read_table_csv(path, c.CUSTOMER_SUMMARY)
    path.write_text(",".join(c.OUTPUT_TABLES[c.PRODUCT_PERFORMANCE]) + '\n"p,1,0,1.00,\n')
    with pytest.raises(InputError, match="unclosed"):
        read_table_csv(path, c.PRODUCT_PERFORMANCE)
    path.write_text(",".join(c.OUTPUT_TABLES[c.PRODUCT_PERFORMANCE]) + "\np,1,0\n")
    with pytest.raises(InputError, match="3 fields"):
        read_table_csv(path, c.PRODUCT_PERFORMANCE)


def test_read_table_csv_accepts_crlf_terminators_and_unquoted_text(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    header = ",".join(c.OUTPUT_TABLES[c.PRODUCT_PERFORMANCE])
    path.write_bytes((header + '\r\np1,1,0,1.5,\r\n"p\r\n2",2,1,0,0.5\r\n').encode())
    assert read_table_csv(path, c.PRODUCT_PERFORMANCE) == [
        ("p1", 1, 0, D("1.50"), None),
        ("p\r\n2", 2, 1, D("0.00"), D("0.5000")),
    ]
