"""The DuckDB oracle against hand-checked values (contract sections 1-6)."""

from __future__ import annotations

import random
import re
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path

import duckdb
import pytest

from pipeline_props import contract
from pipeline_props.errors import InputError
from pipeline_props.oracles import OracleResult, run_oracle, run_oracle_on_paths
from pipeline_props.oracles import fast_path
from pipeline_props.oracles.duckdb_oracle import _build, load_sql
from pipeline_props.oracles.splitter import BOM, needs_full_split, split_file

pytestmark = pytest.mark.unit

D = Decimal
HEADER = ",".join(contract.COLUMNS)
BASE = {
    "event_id": "e1",
    "order_id": "o1",
    "customer_id": "c1",
    "product_id": "p1",
    "category": "toys",
    "region": "NA",
    "channel": "online",
    "quantity": "1",
    "unit_price": "10.00",
    "discount": "",
    "currency": "USD",
    "event_time": "2024-03-10T12:00:00Z",
}


def rec(**values: str) -> str:
    """A record in contract column order: BASE with some values replaced."""
    unknown = set(values) - set(BASE)
    assert not unknown, unknown
    return ",".join({**BASE, **values}[c] for c in contract.COLUMNS)


def csv(*records: str, header: str = HEADER, end: str = "\n") -> bytes:
    return (end.join((header, *records)) + end).encode()


def oracle(*records: str, **kw: str) -> OracleResult:
    return run_oracle([("sales.csv", csv(*records, **kw))])


def audit(result: OracleResult) -> dict[str, int]:
    (row,) = result.tables[contract.INGESTION_AUDIT]
    return dict(zip(contract.OUTPUT_TABLES[contract.INGESTION_AUDIT], row, strict=True))


def rejects(result: OracleResult) -> list[tuple[int, str | None, str]]:
    """(record_number, event_id, reason) of every rejected row."""
    return [(r[1], r[2], r[3]) for r in result.tables[contract.REJECTED_ROWS]]


def reason_of(**values: str) -> str | None:
    """The reason a single record with these values gets (None when accepted)."""
    found = rejects(oracle(rec(**values)))
    return found[0][2] if found else None


def conserved(result: OracleResult) -> None:
    a = audit(result)
    assert a["rows_read"] == a["rows_accepted"] + a["rows_duplicate"] + a["rows_rejected"]
    assert a["rows_rejected"] == len(result.tables[contract.REJECTED_ROWS])
    per_reason = sum(a[f"rejected_{r.lower()}"] for r in contract.REASONS)
    assert per_reason == a["rows_rejected"]


# ---------------------------------------------------------------- outputs


def test_sale_and_return_hand_checked() -> None:
    result = oracle(
        rec(event_id="s1", order_id="o1", quantity="4", unit_price="2.50", discount="0.1"),
        rec(event_id="s2", order_id="o2", quantity="-1", unit_price="2.50", discount="0.1"),
        rec(event_id="s3", order_id="o2", product_id="p2", quantity="3", unit_price="1.00",
            currency="EUR", customer_id="c2", event_time="2024-03-11T08:00:00Z"),
    )
    # s1: 4 * 2.50 * 0.9 = 9.00 USD; s2: -1 * 2.50 * 0.9 = -2.25; s3: 3.00 EUR = 3.255 -> 3.26 USD
    assert result.tables[contract.DAILY_SALES] == [
        (date(2024, 3, 10), "NA", "toys", D("9.00"), D("2.25"), D("6.75"), 4, 1, 2, 2),
        (date(2024, 3, 11), "NA", "toys", D("3.26"), D("0.00"), D("3.26"), 3, 0, 1, 1),
    ]
    assert result.tables[contract.CUSTOMER_SUMMARY] == [
        ("c1", date(2024, 3, 10), date(2024, 3, 10), 2, D("6.75")),
        ("c2", date(2024, 3, 11), date(2024, 3, 11), 1, D("3.26")),
    ]
    assert result.tables[contract.PRODUCT_PERFORMANCE] == [
        ("p1", 4, 1, D("6.75"), D("0.2500")),
        ("p2", 3, 0, D("3.26"), D("0.0000")),
    ]
    assert result.tables[contract.REJECTED_ROWS] == []
    assert audit(result)["rows_accepted"] == 3
    conserved(result)


def test_only_returns_gives_null_return_rate_and_non_negative_returns() -> None:
    result = oracle(rec(quantity="-2", unit_price="3.00"))
    assert result.tables[contract.PRODUCT_PERFORMANCE] == [("p1", 0, 2, D("-6.00"), None)]
    assert result.tables[contract.DAILY_SALES][0][3:8] == (D("0.00"), D("6.00"), D("-6.00"), 0, 2)


def test_conflicting_duplicate_rejects_every_version() -> None:
    result = oracle(
        rec(event_id="x", quantity="1"),
        rec(event_id="y"),
        rec(event_id="x", quantity="2"),
        rec(event_id="x", quantity="1"),
    )
    assert [(r[1], r[2], r[3]) for r in result.tables[contract.REJECTED_ROWS]] == [
        (1, "x", contract.CONFLICTING_DUPLICATE),
        (3, "x", contract.CONFLICTING_DUPLICATE),
        (4, "x", contract.CONFLICTING_DUPLICATE),
    ]
    # each keeps its own raw record
    assert result.tables[contract.REJECTED_ROWS][1][4] == rec(event_id="x", quantity="2")
    a = audit(result)
    assert (a["rows_accepted"], a["rows_duplicate"], a["rejected_conflicting_duplicate"]) == (1, 0, 3)
    conserved(result)


def test_rejected_version_does_not_take_part_in_duplicates() -> None:
    result = oracle(rec(event_id="x"), rec(event_id="x", quantity="0"))
    assert rejects(result) == [(2, "x", contract.OUT_OF_RANGE)]
    assert audit(result)["rows_accepted"] == 1


def test_identical_duplicates_spelled_differently_are_accepted_once() -> None:
    result = oracle(
        rec(unit_price="5.00", discount="", region="NA", currency="USD", channel="online",
            event_time="2024-01-01T10:00:00Z"),
        rec(unit_price="5.0", discount="0", region="na", currency="usd", channel="ONLINE",
            event_time="2024-01-01T12:00:00+02:00"),
        rec(unit_price="+5", discount="0.000", region="Na", currency="uSd", channel="Online",
            event_time="2024-01-01 05:30:00.000000-04:30"),
        rec(unit_price="005.00", discount="-0", quantity="+1", event_time="2024-01-01T10:00:00-00:00"),
    )
    a = audit(result)
    assert (a["rows_read"], a["rows_accepted"], a["rows_duplicate"], a["rows_rejected"]) == (4, 1, 3, 0)
    assert result.tables[contract.DAILY_SALES] == [
        (date(2024, 1, 1), "NA", "toys", D("5.00"), D("0.00"), D("5.00"), 1, 0, 1, 1)
    ]


def test_duplicate_text_is_compared_as_written() -> None:
    # category keeps its case, so these two versions differ
    result = oracle(rec(category="Toys"), rec(category="toys"))
    assert [r[2] for r in rejects(result)] == [contract.CONFLICTING_DUPLICATE] * 2


def test_duplicate_instant_differs_by_one_microsecond() -> None:
    result = oracle(
        rec(event_time="2024-01-01T10:00:00.000001Z"), rec(event_time="2024-01-01T10:00:00.000002Z")
    )
    assert [r[2] for r in rejects(result)] == [contract.CONFLICTING_DUPLICATE] * 2
    same = oracle(rec(event_time="2024-01-01T10:00:00.1Z"), rec(event_time="2024-01-01T10:00:00.100000Z"))
    assert audit(same)["rows_duplicate"] == 1


def test_same_file_twice_is_two_files() -> None:
    data = csv(rec(), rec(event_id="bad id"))
    result = run_oracle([("a.csv", data), ("a.csv", data)])
    a = audit(result)
    assert (a["rows_read"], a["rows_accepted"], a["rows_duplicate"], a["rows_rejected"]) == (4, 1, 1, 2)
    assert rejects(result) == [(2, "bad id", contract.INVALID_FORMAT)] * 2


OFFSET_CASES = [
    ("2024-01-01T23:30:00-01:00", date(2024, 1, 2)),
    ("2024-01-01T00:30:00+01:00", date(2023, 12, 31)),
    ("2024-02-28T23:00:00-14:00", date(2024, 2, 29)),
    ("2024-03-01T00:59:59.999999+01:00", date(2024, 2, 29)),
    ("2000-01-01T00:00:00+14:00", date(1999, 12, 31)),  # the year is checked as written
    ("2099-12-31T23:59:59-14:00", date(2100, 1, 1)),
    ("2024-06-30 23:59:59.999999Z", date(2024, 6, 30)),
    ("2024-06-30T00:00:00-00:00", date(2024, 6, 30)),
]


def test_offset_moves_the_sale_date() -> None:
    result = oracle(*(rec(event_id=f"e{i}", customer_id=f"c{i}", event_time=t)
                      for i, (t, _) in enumerate(OFFSET_CASES)))
    got = {row[0]: row[1] for row in result.tables[contract.CUSTOMER_SUMMARY]}
    assert got == {f"c{i}": d for i, (_, d) in enumerate(OFFSET_CASES)}


# ---------------------------------------------------------------- amounts


HALF_CENT_CASES = [
        # line 1 x 0.01 x (1 - 0.5) = 0.005 -> 0.01, then converted
        ("USD", "1", "0.01", "0.5", "0.01"),
        ("EUR", "1", "0.01", "0.5", "0.01"),  # 0.01085
        ("GBP", "1", "0.01", "0.5", "0.01"),  # 0.01265
        ("JPY", "1", "0.01", "0.5", "0.00"),  # 0.000067
        ("CAD", "1", "0.01", "0.5", "0.01"),  # 0.00738
        ("USD", "5", "0.01", "0.5", "0.03"),  # 0.025 (half-even would say 0.02)
        # conversion exactly at half a cent (half-even / binary floats would go down)
        ("EUR", "1", "1.00", "", "1.09"),  # 1.085
        ("GBP", "1", "1.00", "", "1.27"),  # 1.265
        ("JPY", "1", "150", "", "1.01"),  # 1.005
        ("JPY", "1", "350", "", "2.35"),  # 2.345
        ("CAD", "1", "2.50", "", "1.85"),  # 1.845
        ("JPY", "3", "0.15", "0.5", "0.00"),  # line 0.225 -> 0.23 JPY -> 0.001541
        ("USD", "3", "33.33", "0.333", "66.69"),  # 99.99 * 0.667 = 66.69333
]


def test_half_cent_rounds_away_from_zero() -> None:
    """(currency, quantity, unit_price, discount, expected amount_usd), as a sale
    and as a return (which must round to the negated amount)."""
    records = []
    for i, (currency, quantity, price, discount, _) in enumerate(HALF_CENT_CASES):
        for kind, q in (("s", quantity), ("r", "-" + quantity)):
            records.append(rec(event_id=f"{kind}{i}", customer_id=f"{kind}{i}", currency=currency,
                               quantity=q, unit_price=price, discount=discount))
    got = {row[0]: row[4] for row in oracle(*records).tables[contract.CUSTOMER_SUMMARY]}
    expected = {f"s{i}": D(c[4]) for i, c in enumerate(HALF_CENT_CASES)}
    expected |= {f"r{i}": -D(c[4]) for i, c in enumerate(HALF_CENT_CASES)}
    assert got == expected


def test_duckdb_round_on_decimal_is_half_away_from_zero() -> None:
    """The oracle relies on this: checked at a .005 boundary for every currency's
    rate, in the DECIMAL types the amount SQL produces."""
    con = duckdb.connect()
    for currency, rate in contract.FX_RATES_TO_USD.items():
        for line in ("0.01", "1.00", "150.00", "2.50", "0.50"):
            exact = D(line) * rate
            for sign in (1, -1):
                got, kind = con.execute(
                    "SELECT round(x, 2), typeof(round(x, 2)) FROM "
                    "(SELECT CAST(CAST(? AS VARCHAR) AS DECIMAL(20, 2)) * CAST(CAST(? AS VARCHAR) AS DECIMAL(7, 6)) AS x)",
                    [str(sign * D(line)), str(rate)],
                ).fetchone()
                cents = (abs(exact) * 100 + D("0.5")).to_integral_value(rounding="ROUND_FLOOR")
                assert got == sign * cents / 100, (currency, line, sign)
                assert kind.startswith("DECIMAL"), kind
    for text, expected in (("0.005", "0.01"), ("-0.005", "-0.01"), ("2.675", "2.68"), ("0.00500", "0.01")):
        assert con.execute(f"SELECT round(CAST('{text}' AS DECIMAL(18, 5)), 2)").fetchone()[0] == D(expected)


def _real_date(year: int, month: int, day: int) -> bool:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return 1 <= month <= 12 and 1 <= day <= days[month - 1]


def test_duckdb_timestamp_cast_accepts_exactly_the_real_local_times() -> None:
    """checked.sql relies on this: on a value of the shape its pattern admits
    (YYYY-MM-DD, T or space, HH:MM:SS, all ASCII digits), TRY_CAST(... AS
    TIMESTAMP) gives NULL unless the date and the time are real, and else the
    date and time written; 24:00:00, which DuckDB rolls over to the next day,
    is refused by the SQL itself. Checked for every month and day spelling
    00-99 in years of each leap kind, 29 February of every year 0000-9999,
    and every hour and minute spelling 00-99 with seconds 00, 59, 60 and 99,
    and every second spelling with some hours and minutes."""
    con = duckdb.connect()
    digits = "(SELECT range AS n, lpad(CAST(range AS VARCHAR), 2, '0') AS t FROM range(100))"
    years = (0, 1, 1600, 1900, 1999, 2000, 2023, 2024, 2099, 2100, 9999)
    got = con.execute(
        f"SELECT y, m.n, d.n, TRY_CAST(lpad(CAST(y AS VARCHAR), 4, '0') || '-' || m.t || '-' || d.t || "
        f"'T12:00:00' AS TIMESTAMP) FROM unnest({list(years)}) AS a(y), {digits} AS m, {digits} AS d "
        "UNION ALL "
        "SELECT y, 2, 29, TRY_CAST(lpad(CAST(y AS VARCHAR), 4, '0') || '-02-29 00:00:00' AS TIMESTAMP) "
        "FROM range(10000) AS a(y)"
    ).fetchall()
    assert len(got) == len(years) * 100 * 100 + 10000
    for year, month, day, value in got:
        assert (value is not None) == _real_date(year, month, day), (year, month, day, value)
        if value is not None and year > 0:
            assert (value.year, value.month, value.day) == (year, month, day)
    (checked, wrong) = con.execute(
        f"""
        WITH times AS (
            SELECT h.n AS h, m.n AS m, s.n AS s,
                   TRY_CAST('2024-01-31T' || h.t || ':' || m.t || ':' || s.t AS TIMESTAMP) AS t
            FROM {digits} AS h, {digits} AS m, {digits} AS s
            WHERE (s.n IN (0, 59, 60, 99) OR (h.n, m.n) IN ((0, 0), (23, 59), (24, 0), (12, 60)))
              AND NOT (h.n = 24 AND m.n = 0 AND s.n = 0)
        )
        SELECT count(*), count(*) FILTER (WHERE t IS DISTINCT FROM
            CASE WHEN h <= 23 AND m <= 59 AND s <= 59 THEN make_timestamp(2024, 1, 31, h, m, s) END)
        FROM times
        """
    ).fetchone()
    assert (checked, wrong) == (100 * 100 * 4 + 4 * 96 - 1, 0)


def test_event_time_edges() -> None:
    cases = [
        ("event_time", "2024-01-01T24:00:00Z"),
        ("event_time", "2024-01-01T23:59:60Z"),
        ("event_time", "2023-02-29T00:00:00Z"),
        ("event_time", "2024-02-29T00:00:00Z"),
        ("event_time", "0000-02-29T00:00:00Z"),
        ("event_time", "1900-02-29T00:00:00Z"),
        ("event_time", "2024-01-01T00:00:00+14:00"),
        ("event_time", "2024-01-01T00:00:00-14:01"),
        ("event_time", "2024-01-01T00:00:00+13:60"),
        ("event_time", "2024-01-01T00:00:00.1234567Z"),
        ("event_time", "2100-01-01T00:00:00+01:00"),
        ("event_time", "2099-12-31T23:59:59.999999-14:00"),
    ]
    expected = [
        contract.INVALID_FORMAT, contract.INVALID_FORMAT, contract.INVALID_FORMAT, None,
        contract.OUT_OF_RANGE, contract.INVALID_FORMAT, None, contract.INVALID_FORMAT,
        contract.INVALID_FORMAT, contract.INVALID_FORMAT, contract.OUT_OF_RANGE, None,
    ]
    assert reasons_of(cases) == expected


def test_amount_columns_never_use_double() -> None:
    con, _ = _build([("a.csv", csv(rec()))])
    try:
        for table in ("facts", "accepted"):
            types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                     "WHERE table_name = ?", [table]).fetchall())
            assert types["amount_usd"] == "DECIMAL(18,2)", table
        for table in ("product_performance", "daily_sales", "customer_summary"):
            rel = con.sql(load_sql(f"{table}.sql"))
            assert not [t for t in rel.types if str(t) in ("DOUBLE", "FLOAT")], (table, rel.types)
    finally:
        con.close()
    sql_dir = resources.files("pipeline_props.oracles").joinpath("sql")
    for path in sql_dir.iterdir():
        text = re.sub(r"--[^\n]*", "", path.read_text("utf-8")).upper()
        assert not re.search(r"\b(DOUBLE|FLOAT\d*|REAL)\b", text), path.name
        assert "/" not in text.replace("//", ""), f"{path.name}: '/' may go through DOUBLE"


def test_extreme_amounts_do_not_overflow() -> None:
    result = oracle(
        rec(event_id="a", quantity="100000", unit_price="1000000.00", currency="GBP"),
        rec(event_id="b", quantity="-100000", unit_price="1000000.00", currency="GBP"),
    )
    assert result.tables[contract.DAILY_SALES][0][3:6] == (
        D("126500000000.00"), D("126500000000.00"), D("0.00"))


@pytest.mark.parametrize(
    ("sold", "returned", "rate"),
    [
        (32, 1, "0.0313"),  # 0.03125: tie at the 5th decimal goes up
        (32, 5, "0.1563"),  # 0.15625
        (32, 3, "0.0938"),  # 0.09375
        (3, 1, "0.3333"),
        (3, 2, "0.6667"),
        (2, 3, "1.5000"),
        (20000, 1, "0.0001"),  # 0.00005: a tie again
        (200000, 1, "0.0000"),  # 0.000005 is below the tie
    ],
)
def test_return_rate_exact_rounding(sold: int, returned: int, rate: str) -> None:
    records = [rec(event_id=f"s{i}", quantity=str(q)) for i, q in enumerate(_split(sold))]
    records += [rec(event_id=f"r{i}", quantity=str(-q)) for i, q in enumerate(_split(returned))]
    (row,) = oracle(*records).tables[contract.PRODUCT_PERFORMANCE]
    assert row[1:3] == (sold, returned)
    assert row[4] == D(rate) and row[4].as_tuple().exponent == -4


def _split(total: int) -> list[int]:
    parts = [contract.QUANTITY_MAX] * (total // contract.QUANTITY_MAX)
    return parts + ([total % contract.QUANTITY_MAX] if total % contract.QUANTITY_MAX else [])


def test_value_types_and_places() -> None:
    result = oracle(rec(unit_price="3"))
    (row,) = result.tables[contract.DAILY_SALES]
    assert isinstance(row[0], date) and all(isinstance(v, int) for v in row[6:])
    assert all(isinstance(v, Decimal) and v.as_tuple().exponent == -2 for v in row[3:6])
    assert all(isinstance(v, int) and not isinstance(v, bool) for v in audit(result).values())


# ---------------------------------------------------------------- validation


def reasons_of(cases: list[tuple[str, str]]) -> list[str | None]:
    """The reason (None when accepted) of one record per (column, value), all
    in one dataset; every record gets its own event id unless it sets one."""
    records = [rec(**{"event_id": f"case{i}", column: value}) for i, (column, value) in enumerate(cases)]
    found = {number: reason for number, _, reason in rejects(oracle(*records))}
    return [found.get(i + 1) for i in range(len(cases))]


def test_missing_field() -> None:
    cases = [(column, value) for column in contract.COLUMNS for value in ("", " \t ")]
    expected = [None if c in contract.OPTIONAL_COLUMNS else contract.MISSING_FIELD for c, _ in cases]
    assert list(zip(cases, reasons_of(cases))) == list(zip(cases, expected))


INVALID = contract.INVALID_FORMAT
RANGE = contract.OUT_OF_RANGE
UNKNOWN = contract.UNKNOWN_CODE


REASON_CASES = [
        ("event_id", "a b", INVALID),
        ("event_id", "e/1", INVALID),
        ("event_id", "é", INVALID),
        ("event_id", "A" * 64, None),
        ("event_id", "A" * 65, INVALID),
        ("event_id", "a_b.c:d-E9", None),
        ("order_id", "é" * 64, None),  # 64 code points, 128 bytes
        ("order_id", "é" * 65, INVALID),
        ("customer_id", "✓" * 64, None),  # 192 bytes: length() decides, not strlen()
        ("customer_id", "✓" * 65, INVALID),
        ("product_id", "p" * 64, None),
        ("product_id", "p" * 65, INVALID),
        ("category", "ö" * 32, None),  # exactly 64 bytes
        ("category", "ö" * 33 + "x" * 32, INVALID),
        ("order_id", "o\x01", INVALID),
        ("customer_id", "c\x7f", INVALID),
        ("product_id", "p\x1f", INVALID),
        ("category", "a\tb", INVALID),
        ("category", "a\u0085b", None),  # C1 controls are not in the contract's list
        ("category", "Spielzeug & Co. ✓", None),
        ("region", "emea", None),
        ("region", "Latam", None),
        ("region", "ＮＡ", UNKNOWN),
        ("region", "nA", None),
        ("region", "LATAMS", UNKNOWN),
        ("channel", "Online", None),
        ("currency", "Cad", None),
        ("region", "N A", UNKNOWN),
        ("region", "EU", UNKNOWN),
        ("channel", "ſtore", UNKNOWN),
        ("channel", "PARTNER", None),
        ("currency", "uſd", UNKNOWN),
        ("currency", "jpy", None),
        ("currency", "USDX", UNKNOWN),
        ("quantity", "+5", None),
        ("quantity", "0", RANGE),
        ("quantity", "-0", RANGE),
        ("quantity", "100000", None),
        ("quantity", "-100000", None),
        ("quantity", "100001", RANGE),
        ("quantity", "-100001", RANGE),
        ("quantity", "999999999", RANGE),
        ("quantity", "1234567890", INVALID),
        ("quantity", "1_000", INVALID),
        ("quantity", "1e3", INVALID),
        ("quantity", "1.0", INVALID),
        ("quantity", "٣", INVALID),
        ("quantity", "+-1", INVALID),
        ("unit_price", "0", None),
        ("unit_price", "-0.00", None),
        ("unit_price", "1000000.00", None),
        ("unit_price", "1000000.01", RANGE),
        ("unit_price", "-0.01", RANGE),
        ("unit_price", "999999999.99", RANGE),
        ("unit_price", "1.", INVALID),
        ("unit_price", ".5", INVALID),
        ("unit_price", "1.234", INVALID),
        ("unit_price", "1,5", contract.MALFORMED_ROW),
        ("unit_price", "NaN", INVALID),
        ("discount", "1", None),
        ("discount", "1.000", None),
        ("discount", "1.001", RANGE),
        ("discount", "-0.001", RANGE),
        ("discount", "-0", None),
        ("discount", "0.1234", INVALID),
        ("discount", "1000", INVALID),
        ("discount", "50%", INVALID),
        ("event_time", "2024-02-29T00:00:00Z", None),
        ("event_time", "2000-02-29T00:00:00Z", None),
        ("event_time", "2023-02-29T00:00:00Z", INVALID),
        ("event_time", "2100-02-29T00:00:00Z", INVALID),
        ("event_time", "1999-02-29T00:00:00Z", INVALID),
        ("event_time", "1900-02-29T00:00:00Z", INVALID),
        ("event_time", "0000-02-29T00:00:00Z", RANGE),
        ("event_time", "1600-02-29T00:00:00Z", RANGE),
        ("event_time", "1999-12-31T23:59:59Z", RANGE),
        ("event_time", "2100-01-01T00:00:00Z", RANGE),
        ("event_time", "2024-04-31T00:00:00Z", INVALID),
        ("event_time", "2024-13-01T00:00:00Z", INVALID),
        ("event_time", "2024-00-01T00:00:00Z", INVALID),
        ("event_time", "2024-01-00T00:00:00Z", INVALID),
        ("event_time", "2024-01-01T24:00:00Z", INVALID),
        ("event_time", "2024-01-01T23:60:00Z", INVALID),
        ("event_time", "2024-12-31T23:59:60Z", INVALID),
        ("event_time", "2024-01-01T00:00:00+14:00", None),
        ("event_time", "2024-01-01T00:00:00-14:00", None),
        ("event_time", "2024-01-01T00:00:00+14:01", INVALID),
        ("event_time", "2024-01-01T00:00:00+13:60", INVALID),
        ("event_time", "2024-01-01T00:00:00+15:00", INVALID),
        ("event_time", "2024-01-01T00:00:00", INVALID),
        ("event_time", "2024-01-01T00:00:00z", INVALID),
        ("event_time", "2024-01-01t00:00:00Z", INVALID),
        ("event_time", "2024-01-01T00:00:00.1234567Z", INVALID),
        ("event_time", "2024-01-01T00:00:00.Z", INVALID),
        ("event_time", "2024-01-01T00:00Z", INVALID),
        ("event_time", "2024-1-01T00:00:00Z", INVALID),
        ("event_time", "2024-01-01T00:00:00+0100", INVALID),
        ("event_time", "2024-01-01  00:00:00Z", INVALID),
        ("event_time", "２０２４-01-01T00:00:00Z", INVALID),
        ("event_time", "0000-13-01T00:00:00Z", INVALID),
]


def test_reason() -> None:
    cases = [(column, value) for column, value, _ in REASON_CASES]
    got = reasons_of(cases)
    assert [(c, v, r) for (c, v), r in zip(cases, got, strict=True)] == REASON_CASES


def test_codes_normalised_alike_as_listed_or_folded() -> None:
    """A code written as the contract lists it and one whose case is folded
    are the same normalised value (checked reads the first without folding)."""
    con, _ = _build([("a.csv", csv(rec(event_id="a", region="EMEA", channel="store", currency="EUR"),
                                   rec(event_id="b", region="eMeA", channel="STORE", currency="eur")))])
    try:
        rows = con.execute("SELECT reason, region, channel, currency, region_code, channel_code, currency_code "
                           "FROM checked ORDER BY record_number").fetchall()
    finally:
        con.close()
    assert rows[0] == rows[1] == (None, "EMEA", "store", "EUR", 2, 2, 2)


def test_reason_order_first_failing_column_wins() -> None:
    assert reason_of(region="XX", quantity="") == contract.UNKNOWN_CODE
    assert reason_of(quantity="0", unit_price="abc") == contract.OUT_OF_RANGE
    assert reason_of(event_id="", order_id="") == contract.MISSING_FIELD
    assert reason_of(event_id="a b", order_id="") == contract.INVALID_FORMAT
    assert reason_of(currency="XXX", event_time="") == contract.UNKNOWN_CODE
    assert reason_of(discount="2", currency="") == contract.OUT_OF_RANGE


def test_rejected_event_id_as_written_or_null() -> None:
    result = oracle(rec(event_id="  bad id\t", region="XX"), rec(event_id=""), "short")
    assert rejects(result) == [
        (1, "bad id", contract.INVALID_FORMAT),
        (2, None, contract.MISSING_FIELD),
        (3, None, contract.MALFORMED_ROW),
    ]


# ---------------------------------------------------------------- records


def run_bytes(data: bytes) -> OracleResult:
    return run_oracle([("f.csv", data)])


def test_malformations() -> None:
    body = [
        rec(event_id="ok1"),
        rec(event_id='st"ray'),  # quote inside an unquoted field
        rec(event_id='"q"x'),  # text after a closing quote
        rec(event_id=' "q"'),  # quoted only when the quote is the first byte
        rec(event_id="short").rsplit(",", 1)[0],  # 11 fields
        rec(event_id="long") + ",",  # 13 fields
        " \t",  # only blanks: one field
        rec(event_id="ok2"),
    ]
    data = ("\n".join([HEADER, *body]) + "\n").encode()
    data += b"bad\xff" + rec(event_id="utf").encode()[3:] + b"\n"  # invalid UTF-8
    data += rec(event_id="ok3").encode() + b"\r\n"
    data += b'"open,' + rec(event_id="x").encode() + b"\n\n" + rec(event_id="y").encode() + b"\r\n"
    result = run_bytes(data)
    rows = result.tables[contract.REJECTED_ROWS]
    assert [(r[1], r[2], r[3]) for r in rows] == [(n, None, contract.MALFORMED_ROW) for n in (2, 3, 4, 5, 6, 7, 9, 11)]
    raws = {r[1]: r[4] for r in rows}
    assert raws[2] == body[1] and raws[7] == " \t"
    assert raws[9] == "bad\ufffd" + rec(event_id="utf")[3:]
    # an unclosed quote: the rest of the file, terminators included, is one record
    assert raws[11] == '"open,' + rec(event_id="x") + "\n\n" + rec(event_id="y") + "\r\n"
    a = audit(result)
    assert (a["rows_read"], a["rows_accepted"], a["rejected_malformed_row"]) == (11, 3, 8)
    conserved(result)


def test_gone_wrong_field_keeps_record_boundaries() -> None:
    # field 1 goes wrong (stray quote); field 2 is a proper quoted field with a line break
    bad = 'a"b,"x\ny",c'
    data = (HEADER + "\n" + bad + "\n" + rec(event_id="after") + "\n").encode()
    result = run_bytes(data)
    assert result.tables[contract.REJECTED_ROWS] == [("f.csv", 1, None, contract.MALFORMED_ROW, bad)]
    assert audit(result)["rows_accepted"] == 1
    # text after a closing quote: the rest of the field is unquoted, so a quote in it opens nothing
    bad2 = '"a"b"c,d'
    result = run_bytes((HEADER + "\n" + bad2 + "\n" + rec() + "\n").encode())
    assert [r[4] for r in result.tables[contract.REJECTED_ROWS]] == [bad2]
    assert audit(result)["rows_read"] == 2


def test_quoted_fields_and_terminators() -> None:
    fields = dict(BASE)
    quoted = ",".join('"' + v.replace('"', '""') + '"' for v in {**fields, "category": 'a "big", one'}.values())
    multi = rec(event_id="m", order_id='"o\r\n1"')
    data = (HEADER + "\r" + quoted + "\r\n\r\n" + rec(event_id="z", product_id='" p9 "') + "\n\r" + multi).encode()
    result = run_bytes(data)
    a = audit(result)
    assert (a["rows_read"], a["rows_accepted"], a["rows_rejected"]) == (3, 2, 1)
    assert {r[2] for r in result.tables[contract.DAILY_SALES]} == {'a "big", one', "toys"}
    assert {r[0] for r in result.tables[contract.PRODUCT_PERFORMANCE]} == {"p1", "p9"}
    # the quoted line break is a control character in order_id; raw keeps it
    assert result.tables[contract.REJECTED_ROWS] == [("f.csv", 3, "m", contract.INVALID_FORMAT, multi)]


def test_empty_lines_are_not_counted() -> None:
    data = csv("", rec(event_id="a"), "", "", rec(event_id="b", region="XX"), "")
    result = run_bytes(data)
    assert rejects(result) == [(2, "b", contract.UNKNOWN_CODE)]
    assert audit(result)["rows_read"] == 2


def test_last_record_needs_no_terminator() -> None:
    for end in ("", "\n", "\r\n", "\r"):
        data = (HEADER + "\n" + rec(event_id="a") + "\n" + rec(event_id="b", quantity="x") + end).encode()
        result = run_bytes(data)
        assert audit(result)["rows_read"] == 2, repr(end)
        assert result.tables[contract.REJECTED_ROWS][0][4] == rec(event_id="b", quantity="x")


# ---------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "no bytes"),
        (BOM, "no bytes"),
        (b"\n" + HEADER.encode() + b"\n", "empty"),
        (b"\r\n" + HEADER.encode(), "empty"),
        (HEADER.replace(",event_time", "").encode() + b"\n", "event_time"),
        ((HEADER + ",region").encode() + b"\n", "repeats"),
        ((HEADER + ", region \t").encode() + b"\n", "repeats"),
        ((HEADER + ",,x").encode() + b"\n", "empty"),
        ((HEADER + ', ').encode() + b"\n", "empty"),
        ((HEADER + ',ex"tra').encode() + b"\n", "malformed"),
        ((HEADER + ',"extra"x').encode() + b"\n", "malformed"),
        ((HEADER + ',"extra').encode() + b"\n" + rec().encode(), "malformed"),
        ((HEADER + ",caf").encode() + b"\xe9\n", "UTF-8"),
        (b"garbage\n", "missing"),
    ],
)
def test_header_refusals(data: bytes, problem: str) -> None:
    ok = csv(rec())
    with pytest.raises(InputError) as info:
        run_oracle([("good.csv", ok), ("bad.csv", data)])
    assert info.value.file == "bad.csv"
    assert problem in info.value.problem
    assert "bad.csv" in str(info.value)


def test_accepted_header_spellings_and_schema_drift() -> None:
    names = list(reversed(contract.COLUMNS))
    # order is free; names may be quoted or padded with spaces and tabs
    header = ",".join(f'"{n}"' if i % 2 else f" {n}\t" for i, n in enumerate(names))
    header += ",note, extra "
    values = {**BASE, "event_id": "r"}
    record = ",".join(values[n] for n in names) + ",hello,world"
    a = BOM + (header + "\r\n" + record + "\r\n").encode()
    b = (HEADER + ",note\n").encode()  # header only: valid and empty
    result = run_oracle([("a.csv", a), ("b.csv", b)])
    assert audit(result)["rows_accepted"] == 1
    assert result.schema_drift == (("a.csv", "note"), ("a.csv", "extra"), ("b.csv", "note"))
    assert oracle(rec()).schema_drift == ()


def test_extra_column_values_are_ignored_but_count_fields() -> None:
    data = (HEADER + ",extra\n" + rec(event_id="a") + ',"any, thing"\n' + rec(event_id="b") + "\n").encode()
    result = run_bytes(data)
    assert rejects(result) == [(2, None, contract.MALFORMED_ROW)]
    assert result.schema_drift == (("f.csv", "extra"),)


def test_empty_dataset() -> None:
    for files in ([], [("h.csv", csv())], [("h.csv", BOM + HEADER.encode())]):
        result = run_oracle(files)
        assert result.tables[contract.INGESTION_AUDIT] == [(0,) * 10]
        for table in contract.OUTPUT_TABLES:
            if table != contract.INGESTION_AUDIT:
                assert result.tables[table] == []
        assert result.seconds >= 0


def test_run_on_paths_uses_base_names(tmp_path: Path) -> None:
    path = tmp_path / "day1.csv"
    path.write_bytes(csv(rec(quantity="0")))
    result = run_oracle_on_paths([path, str(path)])
    assert [r[0] for r in result.tables[contract.REJECTED_ROWS]] == ["day1.csv", "day1.csv"]


# ---------------------------------------------------------------- fast path vs splitter


def _mixed_quote_free_file(seed: int, rows: int) -> bytes:
    """Deterministic quote-free, CR-free, valid UTF-8 records, good and bad."""
    rnd = random.Random(seed)
    pick = rnd.choice
    lines = [HEADER]
    for i in range(rows):
        values = {
            "event_id": pick([f"e{i % 40}", f" e{i % 40}\t", "", "bad id", f"E{i}"]),
            "order_id": pick(["o1", "o2", "ö3", "", "o\x01"]),
            "customer_id": pick(["c1", "c2", " c3 "]),
            "product_id": pick(["p1", "p2", "✓"]),
            "category": pick(["toys", "Toys", "garden"]),
            "region": pick(["NA", "emea", "ＮＡ", "apac", ""]),
            "channel": pick(["online", "STORE", "ſtore", "partner"]),
            "quantity": pick(["1", "-2", "0", "+3", "100001", "x", "7"]),
            "unit_price": pick(["1.00", "1.0", "0.01", "2.5", "-1", "abc", "999.99"]),
            "discount": pick(["", "0", "0.5", "0.125", "1.5", "x"]),
            "currency": pick(["USD", "eur", "GBP", "jpy", "CAD", "XXX"]),
            "event_time": pick([
                "2024-01-01T00:30:00+01:00", "2024-01-01 10:00:00Z", "2024-02-29T23:59:59.5-00:30",
                "2023-02-29T00:00:00Z", "1999-12-31T23:00:00Z", "2024-01-01T00:00:00",
            ]),
        }
        line = ",".join(values[c] for c in contract.COLUMNS)
        lines.append(pick([line, line, line, line, "", " ", line + ",", line.rsplit(",", 1)[0]]))
    return ("\n".join(lines) + pick(["", "\n", "\n\n"])).encode()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_path_equals_splitter_on_quote_free_files(seed: int) -> None:
    files = [("a.csv", _mixed_quote_free_file(seed, 300)), ("b.csv", _mixed_quote_free_file(seed + 10, 50))]
    assert not any(needs_full_split(data) for _, data in files)
    fast_con, _ = _build(files)
    slow_con, _ = _build(files, full_split=True)
    try:
        for table in contract.OUTPUT_TABLES:
            fast = fast_con.execute(load_sql(f"{table}.sql")).fetchall()
            slow = slow_con.execute(load_sql(f"{table}.sql")).fetchall()
            assert fast == slow, table
        # the records themselves, not only the aggregates
        query = "SELECT * EXCLUDE (rid) FROM records ORDER BY file_index, record_number"
        assert fast_con.execute(query).fetchall() == slow_con.execute(query).fetchall()
        assert fast_con.execute("SELECT count(*) FROM rejected").fetchone()[0] > 0
    finally:
        fast_con.close()
        slow_con.close()


@pytest.mark.parametrize("block", [1, 97, 4096])
def test_fast_path_blocks_equal_splitter(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    """Cut in small blocks (records numbered across blocks, malformed and
    trimmed records in any block, a last line without newline)."""
    monkeypatch.setattr(fast_path, "BLOCK_BYTES", block)
    last = b" e9 ,o,c,p,t,NA,store,1,1,,USD,2024-01-01T00:00:00Z\t"
    data = _mixed_quote_free_file(5, 200) + b"\n" + last
    files = [("a.csv", data), ("b.csv", _mixed_quote_free_file(6, 40))]
    assert not any(needs_full_split(d) for _, d in files)
    fast_con, _ = _build(files)
    slow_con, _ = _build(files, full_split=True)
    try:
        query = "SELECT * EXCLUDE (rid) FROM records ORDER BY file_index, record_number"
        fast = fast_con.execute(query).fetchall()
        assert fast == slow_con.execute(query).fetchall()
        # a.csv's last record: its raw text, not malformed, a control character (tab), trimmed
        (found,) = [row for row in fast if row[0] == 0 and row[2] == last.decode()]
        assert found[3:6] == (False, True, "e9")
    finally:
        fast_con.close()
        slow_con.close()


def test_records_can_be_joined_and_checked_is_readable() -> None:
    """Callers (the transform-vs-oracle property) join checked with records."""
    con, _ = _build([("a.csv", csv(rec(event_id="a"), rec(event_id="b", quantity="x"), "short"))])
    try:
        rows = con.execute(
            "SELECT c.record_number, c.reason, r.raw FROM checked AS c "
            "JOIN records AS r USING (file_index, record_number) ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    assert [(n, reason) for n, reason, _ in rows] == [
        (1, None), (2, contract.INVALID_FORMAT), (3, contract.MALFORMED_ROW)]
    assert rows[2][2] == "short"


def test_splitter_records() -> None:
    data = (HEADER + "\n" + rec(event_id="a") + "\n\n" + 'x,"y' + "\n").encode()
    header, records = split_file(3, "s.csv", BOM + data)
    assert header.names == contract.COLUMNS and header.extra_columns == ()
    assert [(r.file_index, r.file_name, r.record_number) for r in records] == [(3, "s.csv", 1), (3, "s.csv", 2)]
    assert records[0].fields == tuple(BASE[c] if c != "event_id" else "a" for c in contract.COLUMNS)
    assert records[0].malformed is None
    assert records[1].fields is None and records[1].raw == 'x,"y\n'
    assert "open" in (records[1].malformed or "")


def test_matches_reference_model_on_a_mixed_dataset() -> None:
    """A second, independent implementation (tests/reference_model.py) agrees."""
    model = pytest.importorskip("reference_model")
    files = [
        ("a.csv", _mixed_quote_free_file(7, 120)),
        ("b.csv", BOM + (HEADER + ",x\r\n" + rec(event_id="q1", category='"a,b"') + ',"1"\r'
                         + '"unclosed\n' + rec()).encode()),
        ("a.csv", _mixed_quote_free_file(7, 120)),
    ]
    assert run_oracle(files).tables == model.model_tables(files)
