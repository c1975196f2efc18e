"""Hand-checked values for the pure-Python reference model (tests/reference_model.py).

Every expected value below was worked out by hand from docs/SPEC.md; the
comments show the arithmetic.
"""

from __future__ import annotations

import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline_props import contract as c
from pipeline_props.errors import InputError

# tests/ is not a package; make reference_model importable from tests/unit.
_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from reference_model import (  # noqa: E402
    civil_from_days,
    days_from_civil,
    model_tables,
    split_records,
)

pytestmark = pytest.mark.unit

HEADER = ",".join(c.COLUMNS)
DEFAULTS = {
    "event_id": "e1",
    "order_id": "o1",
    "customer_id": "c1",
    "product_id": "p1",
    "category": "toys",
    "region": "NA",
    "channel": "online",
    "quantity": "2",
    "unit_price": "10.00",
    "discount": "",
    "currency": "USD",
    "event_time": "2024-03-01T10:00:00Z",
}


def rec(**fields: str) -> str:
    """One CSV record (no terminator) with the defaults overridden; no quoting."""
    values = {**DEFAULTS, **fields}
    return ",".join(values[col] for col in c.COLUMNS)


def csv(*records: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *records]) + "\n").encode("utf-8")


def run(*records: str) -> dict[str, list[tuple]]:
    return model_tables([("sales.csv", csv(*records))])


def audit(tables: dict[str, list[tuple]]) -> dict[str, int]:
    (row,) = tables[c.INGESTION_AUDIT]
    return dict(zip(c.OUTPUT_TABLES[c.INGESTION_AUDIT], row, strict=True))


def reasons(tables: dict[str, list[tuple]]) -> list[str]:
    return [r[3] for r in tables[c.REJECTED_ROWS]]


D = Decimal


# ---------------------------------------------------------------- whole outputs


def test_one_sale_and_one_return_give_every_table() -> None:
    tables = run(
        rec(),  # 2 x 10.00 USD = 20.00
        rec(event_id="e2", order_id="o2", quantity="-1", unit_price="4.00", currency="EUR"),
        # -1 x 4.00 = -4.00 EUR; x 1.085 = -4.34 USD
    )
    assert tables == {
        c.DAILY_SALES: [
            (date(2024, 3, 1), "NA", "toys", D("20.00"), D("4.34"), D("15.66"), 2, 1, 2, 2)
        ],
        c.CUSTOMER_SUMMARY: [("c1", date(2024, 3, 1), date(2024, 3, 1), 2, D("15.66"))],
        # return_rate = 1 / 2 = 0.5
        c.PRODUCT_PERFORMANCE: [("p1", 2, 1, D("15.66"), D("0.5000"))],
        c.REJECTED_ROWS: [],
        c.INGESTION_AUDIT: [(2, 2, 0, 0, 0, 0, 0, 0, 0, 0)],
    }
    # Decimals carry their scale.
    assert str(tables[c.DAILY_SALES][0][3]) == "20.00"
    assert str(tables[c.PRODUCT_PERFORMANCE][0][4]) == "0.5000"


def test_grouping_distinct_orders_and_first_last_dates() -> None:
    tables = run(
        rec(event_id="a", order_id="o1", quantity="1", unit_price="1.00"),
        rec(event_id="b", order_id="o1", quantity="1", unit_price="2.00"),
        rec(event_id="c", order_id="o2", quantity="1", unit_price="3.00", region="emea"),
        rec(event_id="d", order_id="o3", quantity="1", unit_price="4.00",
            event_time="2024-03-05T00:00:00Z", customer_id="c2", product_id="p2"),
        rec(event_id="e", order_id="o4", quantity="1", unit_price="5.00",
            event_time="2024-01-05T00:00:00Z", category="Toys"),
    )
    assert tables[c.DAILY_SALES] == [
        (date(2024, 1, 5), "NA", "Toys", D("5.00"), D("0.00"), D("5.00"), 1, 0, 1, 1),
        (date(2024, 3, 1), "EMEA", "toys", D("3.00"), D("0.00"), D("3.00"), 1, 0, 1, 1),
        (date(2024, 3, 1), "NA", "toys", D("3.00"), D("0.00"), D("3.00"), 2, 0, 1, 2),
        (date(2024, 3, 5), "NA", "toys", D("4.00"), D("0.00"), D("4.00"), 1, 0, 1, 1),
    ]
    assert tables[c.CUSTOMER_SUMMARY] == [
        ("c1", date(2024, 1, 5), date(2024, 3, 1), 3, D("11.00")),
        ("c2", date(2024, 3, 5), date(2024, 3, 5), 1, D("4.00")),
    ]
    assert tables[c.PRODUCT_PERFORMANCE] == [
        ("p1", 4, 0, D("11.00"), D("0.0000")),
        ("p2", 1, 0, D("4.00"), D("0.0000")),
    ]


def test_empty_dataset_and_header_only_file() -> None:
    empty = {
        c.DAILY_SALES: [],
        c.CUSTOMER_SUMMARY: [],
        c.PRODUCT_PERFORMANCE: [],
        c.REJECTED_ROWS: [],
        c.INGESTION_AUDIT: [(0,) * 10],
    }
    assert model_tables([]) == empty
    assert model_tables([("h.csv", HEADER.encode())]) == empty  # no terminator either
    assert model_tables([("h.csv", (HEADER + "\r\n\r\n\n").encode())]) == empty


# ---------------------------------------------------------------- duplicates


def test_identical_duplicates_respelled_are_accepted_once() -> None:
    tables = run(
        rec(),
        # Same normalised values: case of codes, price scale, missing vs 0 discount,
        # the same instant at another offset, quoting and padding.
        rec(region="na", channel="ONLINE", currency="usd", unit_price="10.0",
            discount="0", event_time="2024-03-01 12:00:00+02:00"),
        '" e1 ",o1,c1,p1,toys,"Na",online, +2 ,10,0.000,USD,\t2024-03-01T09:30:00.000000-00:30',
    )
    assert audit(tables)["rows_read"] == 3
    assert audit(tables)["rows_accepted"] == 1
    assert audit(tables)["rows_duplicate"] == 2
    assert tables[c.REJECTED_ROWS] == []
    assert tables[c.DAILY_SALES] == [
        (date(2024, 3, 1), "NA", "toys", D("20.00"), D("0.00"), D("20.00"), 2, 0, 1, 1)
    ]


def test_conflicting_duplicates_reject_every_version_with_its_own_position() -> None:
    tables = run(
        rec(),
        rec(event_id="x"),
        rec(quantity="3"),  # differs from record 1
        rec(),  # identical to record 1, still conflicting as a version of e1
        rec(event_id="e1", quantity="abc"),  # rejected: takes no part in duplicates
    )
    assert tables[c.REJECTED_ROWS] == [
        ("sales.csv", 1, "e1", c.CONFLICTING_DUPLICATE, rec()),
        ("sales.csv", 3, "e1", c.CONFLICTING_DUPLICATE, rec(quantity="3")),
        ("sales.csv", 4, "e1", c.CONFLICTING_DUPLICATE, rec()),
        ("sales.csv", 5, "e1", c.INVALID_FORMAT, rec(quantity="abc")),
    ]
    a = audit(tables)
    assert (a["rows_read"], a["rows_accepted"], a["rows_duplicate"], a["rows_rejected"]) == (5, 1, 0, 4)
    assert a["rejected_conflicting_duplicate"] == 3
    assert a["rejected_invalid_format"] == 1
    assert [r[0] for r in tables[c.CUSTOMER_SUMMARY]] == ["c1"]  # only event x


def test_same_instant_different_offset_is_identical_but_other_instant_conflicts() -> None:
    same = run(rec(), rec(event_time="2024-03-01T05:00:00-05:00"))
    assert audit(same)["rows_duplicate"] == 1
    other = run(rec(), rec(event_time="2024-03-01T10:00:00.000001Z"))
    assert reasons(other) == [c.CONFLICTING_DUPLICATE] * 2


def test_result_does_not_depend_on_row_order() -> None:
    rows = [rec(), rec(quantity="3"), rec(event_id="x"), rec(event_id="x", region="na")]
    forward = run(*rows)
    backward = run(*reversed(rows))
    # Positions differ, everything else is the same.
    strip = lambda t: sorted(r[2:] for r in t[c.REJECTED_ROWS])  # noqa: E731
    assert strip(forward) == strip(backward)
    for table in (c.DAILY_SALES, c.CUSTOMER_SUMMARY, c.PRODUCT_PERFORMANCE, c.INGESTION_AUDIT):
        assert forward[table] == backward[table]


def test_the_same_file_twice_gives_duplicates_and_repeated_rejections() -> None:
    data = csv(rec(), "oops")
    tables = model_tables([("dir/a.csv", data), ("other/a.csv", data)])
    a = audit(tables)
    assert (a["rows_read"], a["rows_accepted"], a["rows_duplicate"], a["rows_rejected"]) == (4, 1, 1, 2)
    assert tables[c.REJECTED_ROWS] == [("a.csv", 2, None, c.MALFORMED_ROW, "oops")] * 2


# ---------------------------------------------------------------- dates and offsets


@pytest.mark.parametrize(
    ("event_time", "sale_date"),
    [
        ("2024-03-01T23:30:00-01:00", date(2024, 3, 2)),  # 00:30 UTC next day
        ("2024-03-01T00:30:00+01:00", date(2024, 2, 29)),  # 23:30 UTC the day before (leap)
        ("2023-03-01T00:59:59.999999+01:00", date(2023, 2, 28)),
        ("2024-03-01T01:00:00+01:00", date(2024, 3, 1)),  # exactly midnight UTC
        ("2000-01-01T00:00:00+14:00", date(1999, 12, 31)),  # local year 2000 is in range
        ("2099-12-31T23:59:59.9-14:00", date(2100, 1, 1)),
        ("2024-12-31 20:00:00-04:00", date(2025, 1, 1)),
        ("2024-06-15T12:00:00-00:00", date(2024, 6, 15)),
    ],
)
def test_offsets_move_sales_across_utc_dates(event_time: str, sale_date: date) -> None:
    tables = run(rec(event_time=event_time))
    assert reasons(tables) == []
    assert tables[c.DAILY_SALES][0][0] == sale_date
    assert tables[c.CUSTOMER_SUMMARY][0][1:3] == (sale_date, sale_date)


def test_days_from_civil_counts_like_the_proleptic_calendar() -> None:
    for d in [date(1970, 1, 1), date(2000, 2, 29), date(2099, 12, 31), date(1, 1, 1), date(1969, 12, 31)]:
        n = days_from_civil(d.year, d.month, d.day)
        assert n == d.toordinal() - date(1970, 1, 1).toordinal()
        assert civil_from_days(n) == d
    # Year 0000 is a leap year: 0000-02-29 exists and 0000-03-01 is 366 days before 0001-03-01.
    assert days_from_civil(0, 3, 1) - days_from_civil(0, 2, 29) == 1
    assert days_from_civil(1, 3, 1) - days_from_civil(0, 3, 1) == 365
    assert days_from_civil(1, 1, 1) - days_from_civil(0, 1, 1) == 366


# ---------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    ("quantity", "unit_price", "discount", "currency", "usd"),
    [
        # line_amount ties: 1 x 0.05 x 0.5 = 0.025 -> 0.03 (away from zero, not to even)
        ("1", "0.05", "0.5", "USD", "0.03"),
        ("-1", "0.05", "0.5", "USD", "-0.03"),
        # 3 x 0.35 x 0.5 = 0.525 -> 0.53
        ("3", "0.35", "0.5", "USD", "0.53"),
        # EUR: 1.00 x 1.085 = 1.085 -> 1.09
        ("1", "1.00", "", "EUR", "1.09"),
        ("-1", "1.00", "", "EUR", "-1.09"),
        # GBP: 1.00 x 1.265 = 1.265 -> 1.27
        ("1", "1.00", "", "GBP", "1.27"),
        ("-1", "1.00", "", "GBP", "-1.27"),
        # JPY: 150 x 1 = 150.00 x 0.0067 = 1.005 -> 1.01
        ("150", "1", "", "JPY", "1.01"),
        ("-150", "1", "", "JPY", "-1.01"),
        # CAD: 2.50 x 0.738 = 1.845 -> 1.85
        ("1", "2.50", "", "CAD", "1.85"),
        ("-1", "2.50", "", "CAD", "-1.85"),
        # two roundings: 1 x 0.01 x 0.5 = 0.005 -> 0.01 EUR; x 1.085 = 0.01085 -> 0.01
        ("1", "0.01", "0.5", "EUR", "0.01"),
        # JPY small: 1 x 0.74 = 0.74 x 0.0067 = 0.004958 -> 0.00
        ("1", "0.74", "", "JPY", "0.00"),
        # full discount and the largest values: 100000 x 1000000.00 x 0.001 = 100000000.00
        ("100000", "1000000.00", "0.999", "USD", "100000000.00"),
        ("-100000", "1000000", "", "GBP", "-126500000000.00"),
        ("5", "9.99", "1", "EUR", "0.00"),
    ],
)
def test_half_cent_rounding_in_each_currency(
    quantity: str, unit_price: str, discount: str, currency: str, usd: str
) -> None:
    tables = run(rec(quantity=quantity, unit_price=unit_price, discount=discount, currency=currency))
    assert reasons(tables) == []
    (customer,) = tables[c.CUSTOMER_SUMMARY]
    assert str(customer[4]) == usd
    (day,) = tables[c.DAILY_SALES]
    amount = D(usd)
    if int(quantity) > 0:
        assert (day[3], day[4]) == (amount, D("0.00"))
    else:
        assert (day[3], day[4]) == (D("0.00"), -amount)
    assert str(day[4]) in ("0.00", usd.lstrip("-"))  # never "-0.00"


def test_sums_add_rounded_lines() -> None:
    # Each line: 1 x 0.005? impossible (2 places), so use discount: 1 x 0.01 x 0.5 = 0.005 -> 0.01.
    # Three lines sum to 0.03, not round(0.015, 2) = 0.02.
    tables = run(*(rec(event_id=f"e{i}", unit_price="0.01", discount="0.5", quantity="1") for i in range(3)))
    assert tables[c.DAILY_SALES][0][3] == D("0.03")


@pytest.mark.parametrize(
    ("sold", "returned", "rate"),
    [
        ("32", "-1", "0.0313"),  # 1/32 = 0.03125 -> 0.0313 (away from zero, not to even)
        ("20000", "-1", "0.0001"),  # 0.00005 -> 0.0001
        ("3", "-1", "0.3333"),
        ("3", "-2", "0.6667"),
        ("1", "-3", "3.0000"),
        ("7", "-1", "0.1429"),  # 0.142857...
        ("16", "-1", "0.0625"),
    ],
)
def test_return_rate_ties_and_rounding(sold: str, returned: str, rate: str) -> None:
    tables = run(rec(quantity=sold), rec(event_id="r", quantity=returned))
    (product,) = tables[c.PRODUCT_PERFORMANCE]
    assert str(product[4]) == rate
    assert product[1:3] == (int(sold), -int(returned))


def test_return_rate_is_null_without_sales() -> None:
    tables = run(rec(quantity="-2"))
    assert tables[c.PRODUCT_PERFORMANCE] == [("p1", 0, 2, D("-20.00"), None)]
    assert tables[c.DAILY_SALES][0][3:8] == (D("0.00"), D("20.00"), D("-20.00"), 0, 2)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("event_id", "", c.MISSING_FIELD),
        ("event_id", "a b", c.INVALID_FORMAT),
        ("event_id", "é", c.INVALID_FORMAT),
        ("event_id", "x" * 65, c.INVALID_FORMAT),
        ("event_id", "A-z_0.9:" + "x" * 56, None),
        ("order_id", "", c.MISSING_FIELD),
        ("order_id", "a\x01b", c.INVALID_FORMAT),
        ("order_id", "a\x7fb", c.INVALID_FORMAT),
        ("order_id", "a\tb", c.INVALID_FORMAT),
        ("order_id", "é" * 65, c.INVALID_FORMAT),
        ("order_id", "é" * 64, None),
        ("order_id", "a\x80b ＮＡ 😀", None),  # only C0 controls and DEL are refused
        ("customer_id", "", c.MISSING_FIELD),
        ("customer_id", "\x1f", c.INVALID_FORMAT),
        ("product_id", "", c.MISSING_FIELD),
        ("product_id", "p" * 65, c.INVALID_FORMAT),
        ("category", "", c.MISSING_FIELD),
        ("category", "\x00", c.INVALID_FORMAT),
        ("region", "", c.MISSING_FIELD),
        ("region", "ＮＡ", c.UNKNOWN_CODE),
        ("region", "EU", c.UNKNOWN_CODE),
        ("region", "lAtAm", None),
        ("channel", "", c.MISSING_FIELD),
        ("channel", "ſtore", c.UNKNOWN_CODE),  # U+017F upper-cases to S in Unicode
        ("channel", "web", c.UNKNOWN_CODE),
        ("channel", "PARTNER", None),
        ("quantity", "", c.MISSING_FIELD),
        ("quantity", "1_0", c.INVALID_FORMAT),
        ("quantity", "１", c.INVALID_FORMAT),
        ("quantity", "٣", c.INVALID_FORMAT),
        ("quantity", "1e3", c.INVALID_FORMAT),
        ("quantity", "1.0", c.INVALID_FORMAT),
        ("quantity", "1234567890", c.INVALID_FORMAT),
        ("quantity", "+-1", c.INVALID_FORMAT),
        ("quantity", "0", c.OUT_OF_RANGE),
        ("quantity", "-0", c.OUT_OF_RANGE),
        ("quantity", "100001", c.OUT_OF_RANGE),
        ("quantity", "-100001", c.OUT_OF_RANGE),
        ("quantity", "999999999", c.OUT_OF_RANGE),
        ("quantity", "-100000", None),
        ("quantity", "+0000000007", c.INVALID_FORMAT),  # ten digits
        ("quantity", "+000000007", None),  # nine digits
        ("unit_price", "", c.MISSING_FIELD),
        ("unit_price", "1.234", c.INVALID_FORMAT),
        ("unit_price", ".5", c.INVALID_FORMAT),
        ("unit_price", "5.", c.INVALID_FORMAT),
        ("unit_price", "1,5", c.INVALID_FORMAT),  # one (quoted) field
        ("unit_price", "NaN", c.INVALID_FORMAT),
        ("unit_price", "-0.01", c.OUT_OF_RANGE),
        ("unit_price", "1000000.01", c.OUT_OF_RANGE),
        ("unit_price", "1000000.00", None),
        ("unit_price", "-0.00", None),
        ("discount", "", None),
        ("discount", "0.5000", c.INVALID_FORMAT),
        ("discount", "1234", c.INVALID_FORMAT),
        ("discount", "1.001", c.OUT_OF_RANGE),
        ("discount", "-0.001", c.OUT_OF_RANGE),
        ("discount", "2", c.OUT_OF_RANGE),
        ("discount", "1.000", None),
        ("currency", "", c.MISSING_FIELD),
        ("currency", "uſd", c.UNKNOWN_CODE),
        ("currency", "CHF", c.UNKNOWN_CODE),
        ("currency", "jPy", None),
        ("event_time", "", c.MISSING_FIELD),
        ("event_time", "2024-03-01T10:00:00", c.INVALID_FORMAT),  # no offset
        ("event_time", "2024-03-01t10:00:00Z", c.INVALID_FORMAT),
        ("event_time", "2024-03-01T10:00:00z", c.INVALID_FORMAT),
        ("event_time", "2024-03-01  10:00:00Z", c.INVALID_FORMAT),
        ("event_time", "2024-3-01T10:00:00Z", c.INVALID_FORMAT),
        ("event_time", "2024-03-01T10:00Z", c.INVALID_FORMAT),
        ("event_time", "2024-03-01T10:00:00.Z", c.INVALID_FORMAT),
        ("event_time", "2024-03-01T10:00:00.1234567Z", c.INVALID_FORMAT),
        ("event_time", "2024-03-01T10:00:00+0100", c.INVALID_FORMAT),
        ("event_time", "2024-03-01T10:00:00+01", c.INVALID_FORMAT),
        ("event_time", "２024-03-01T10:00:00Z", c.INVALID_FORMAT),
        ("event_time", "2024-13-01T10:00:00Z", c.INVALID_FORMAT),
        ("event_time", "2024-00-01T10:00:00Z", c.INVALID_FORMAT),
        ("event_time", "2024-04-00T10:00:00Z", c.INVALID_FORMAT),
        ("event_time", "2024-04-31T10:00:00Z", c.INVALID_FORMAT),
        ("event_time", "2023-02-29T10:00:00Z", c.INVALID_FORMAT),
        ("event_time", "2100-02-29T10:00:00Z", c.INVALID_FORMAT),  # not leap, so format first
        ("event_time", "1999-02-29T10:00:00Z", c.INVALID_FORMAT),
        ("event_time", "2024-02-29T10:00:00Z", None),
        ("event_time", "2000-02-29T10:00:00Z", None),
        ("event_time", "0000-02-29T10:00:00Z", c.OUT_OF_RANGE),  # year 0000 is leap
        ("event_time", "1999-12-31T23:59:59Z", c.OUT_OF_RANGE),
        ("event_time", "2100-01-01T00:00:00-14:00", c.OUT_OF_RANGE),
        ("event_time", "9999-12-31T23:59:59Z", c.OUT_OF_RANGE),
        ("event_time", "2024-03-01T24:00:00Z", c.INVALID_FORMAT),
        ("event_time", "2024-03-01T23:60:00Z", c.INVALID_FORMAT),
        ("event_time", "2024-03-01T23:59:60Z", c.INVALID_FORMAT),
        ("event_time", "2024-03-01T10:00:00+14:01", c.INVALID_FORMAT),
        ("event_time", "2024-03-01T10:00:00-15:00", c.INVALID_FORMAT),
        ("event_time", "2024-03-01T10:00:00+05:60", c.INVALID_FORMAT),
        ("event_time", "1999-03-01T10:00:00+05:60", c.INVALID_FORMAT),  # format before range
        ("event_time", "2024-03-01T10:00:00+14:00", None),
        ("event_time", "2024-03-01T10:00:00-14:00", None),
        ("event_time", "2024-03-01T23:59:59.999999+00:00", None),
    ],
)
def test_every_reason_code(column: str, value: str, reason: str | None) -> None:
    # Quote the field so commas and padding reach validation intact.
    quoted = '"' + value.replace('"', '""') + '"'
    tables = run(rec(**{column: quoted}))
    if reason is None:
        assert reasons(tables) == []
        assert audit(tables)["rows_accepted"] == 1
    else:
        expected_event_id = None if column == "event_id" and value == "" else (value if column == "event_id" else "e1")
        # SPEC section 6: U+0000 in rejected_rows text is stored as U+FFFD.
        nul = str.maketrans({"\x00": "\ufffd"})
        if expected_event_id is not None:
            expected_event_id = expected_event_id.translate(nul)
        raw = rec(**{column: quoted}).translate(nul)
        assert tables[c.REJECTED_ROWS] == [("sales.csv", 1, expected_event_id, reason, raw)]
        counter = "rejected_" + reason.lower()
        assert audit(tables)[counter] == 1
        assert audit(tables)["rows_rejected"] == 1


def test_first_failing_column_wins_and_event_id_is_kept_as_written() -> None:
    tables = run(
        rec(event_id=" bad id ", quantity="x"),  # event_id fails first, trimmed in output
        rec(event_id="e2", region="", quantity="x"),  # region before quantity
        rec(event_id="e3", quantity="0", unit_price="x"),  # quantity OUT_OF_RANGE before price
        rec(event_id="e4", currency="XXX", event_time=""),
        rec(event_id="\t", order_id=""),  # event_id empty after trimming: NULL
    )
    assert [(r[1], r[2], r[3]) for r in tables[c.REJECTED_ROWS]] == [
        (1, "bad id", c.INVALID_FORMAT),
        (2, "e2", c.MISSING_FIELD),
        (3, "e3", c.OUT_OF_RANGE),
        (4, "e4", c.UNKNOWN_CODE),
        (5, None, c.MISSING_FIELD),
    ]


def test_trimming_is_spaces_and_tabs_only() -> None:
    tables = run(rec(event_id=" \te1\t ", region="\u00a0NA"))  # no-break space is not trimmed
    assert tables[c.REJECTED_ROWS][0][2:4] == ("e1", c.UNKNOWN_CODE)


# ---------------------------------------------------------------- records


def test_every_malformation_is_malformed_row() -> None:
    good = rec()
    data = (
        HEADER + "\n"
        + rec(event_id="f1") + ",extra\n"  # 1: 13 fields
        + "a,b,c\n"  # 2: 3 fields
        + "   \n"  # 3: only spaces: one field
        + rec(event_id='e"2') + "\n"  # 4: quote inside an unquoted field
        + rec(event_id='"e3"x') + "\n"  # 5: text after a closing quote
        + rec(event_id=' "e4"') + "\n"  # 6: space then quote: unquoted field with a quote
        + rec(event_id='"e5" ') + "\n"  # 7: a space after the closing quote
        + good + "\n"  # 8: fine
    ).encode() + rec(event_id="e\xff9").encode("latin-1") + b"\n"  # 9: invalid UTF-8
    data += b'e10,"open\r\n' + good.encode() + b"\n"  # 10: unclosed quote runs to the end
    tables = model_tables([("m.csv", data)])
    rejected = tables[c.REJECTED_ROWS]
    assert [r[1] for r in rejected] == [1, 2, 3, 4, 5, 6, 7, 9, 10]
    assert {r[2] for r in rejected} == {None}
    assert {r[3] for r in rejected} == {c.MALFORMED_ROW}
    assert rejected[2][4] == "   "
    assert rejected[7][4] == rec(event_id="e\ufffd9")
    assert rejected[8][4] == 'e10,"open\r\n' + good + "\n"  # terminators included
    a = audit(tables)
    assert (a["rows_read"], a["rows_accepted"], a["rejected_malformed_row"]) == (10, 1, 9)


def test_a_broken_field_still_ends_at_the_next_delimiter() -> None:
    # After the stray quote, the rest of the field is unquoted text: the comma
    # and the line end are still boundaries, so the next record is unaffected.
    records = list(split_records(b'a"b,c\n"x"y,"z\nw"\nnext'))
    assert [r.raw for r in records] == [b'a"b,c', b'"x"y,"z\nw"', b"next"]
    assert [r.bad_quoting for r in records] == [True, True, False]
    assert records[1].fields == (b'xy', b"z\nw")
    assert list(split_records(b'"a""b",c')) == [
        type(records[0])(raw=b'"a""b",c', fields=(b'a"b', b"c"), bad_quoting=False)
    ]


def test_quoted_fields_hold_commas_quotes_and_line_breaks() -> None:
    category = 'toys, "big"\r\nand\rsmall\n'
    quoted = '"' + category.replace('"', '""') + '"'
    tables = run(rec(category=quoted, event_id='"e1"'))
    assert reasons(tables) == [c.INVALID_FORMAT]  # control characters in category
    tables = run(rec(category='" toys, ""big"" "', event_id='"e1"'))
    assert reasons(tables) == []
    assert tables[c.DAILY_SALES][0][2] == 'toys, "big"'


def test_terminators_empty_lines_and_record_numbers() -> None:
    data = (
        b"\xef\xbb\xbf" + HEADER.encode() + b"\r\n"
        + b"\r\n"  # empty line: skipped, not counted
        + b"bad1\r\n"  # record 1
        + b"x\r"  # record 2 (lone CR)
        + b"bad2\n\n\r\r"  # record 2, then three empty lines
        + b"bad3"  # record 3, no final terminator
    )
    tables = model_tables([("t.csv", data)])
    assert [(r[1], r[4]) for r in tables[c.REJECTED_ROWS]] == [(1, "bad1"), (2, "x"), (3, "bad2"), (4, "bad3")]
    assert audit(tables)["rows_read"] == 4
    # CR then LF right after a record is one terminator; CR CR is two.
    assert [r.raw for r in split_records(b"a\r\nb\r\rc\n")] == [b"a", b"b", b"", b"c"]
    assert [r.raw for r in split_records(b"a\n")] == [b"a"]


def test_header_variants_that_are_accepted() -> None:
    columns = list(reversed(c.COLUMNS))
    header = ",".join(["extra", *[f"\t{name} " for name in columns], '"more, stuff"'])
    values = {**DEFAULTS, "quantity": "5"}
    line = ",".join(["x", *[values[name] for name in columns], "y"])
    data = b"\xef\xbb\xbf" + (header + "\r\n" + line).encode()
    tables = model_tables([("h.csv", data)])
    assert reasons(tables) == []
    assert tables[c.DAILY_SALES][0][6] == 5
    # A field count is compared with the header's, extra columns included.
    tables = model_tables([("h.csv", data + b"\n" + rec().encode())])
    assert reasons(tables) == [c.MALFORMED_ROW]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xef\xbb\xbf",
        b"\n" + HEADER.encode(),
        b"\r\n" + HEADER.encode(),
        b"\xef\xbb\xbf\n" + HEADER.encode(),
        (HEADER + ',"oops').encode(),  # unclosed quote in the header
        (HEADER + ',ex"tra').encode(),  # stray quote
        (HEADER + ',"extra"x').encode(),  # text after closing quote
        HEADER.encode() + b",\xffextra",  # invalid UTF-8
        (HEADER + ",").encode(),  # empty name
        (HEADER + ", \t").encode(),  # empty after trimming
        (HEADER + ', " "').encode(),  # quoted, empty after trimming
        (HEADER + ",event_id").encode(),  # repeated
        (HEADER + ", event_id ").encode(),  # repeated after trimming
        HEADER.replace("discount", "Discount").encode(),  # case matters
        HEADER.replace(",currency", "").encode(),  # required column missing
        b"\xef\xbb\xbf\xef\xbb\xbf" + HEADER.encode(),  # a second BOM is part of the first name
    ],
)
def test_header_refusals(data: bytes) -> None:
    with pytest.raises(InputError) as info:
        model_tables([("ok.csv", csv(rec())), ("bad.csv", data + b"\n" + rec().encode())])
    assert info.value.file == "bad.csv"


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf"])
def test_a_file_with_no_bytes_after_the_bom_is_refused(data: bytes) -> None:
    with pytest.raises(InputError, match="no header"):
        model_tables([("empty.csv", data)])
