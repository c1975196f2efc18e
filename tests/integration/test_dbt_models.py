"""The dbt project on hand-built staging tables, checked value by value.

Each test runs against DuckDB (a temporary file, no service needed) and
Postgres (the session fixture ``postgres_dsn``); both must produce the same
marts, the ones worked out by hand below.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_props import contract
from pipeline_props.errors import PipelineStageError
from pipeline_props.pipeline.model import WarehouseTarget, dbt_project_dir, run_dbt

pytestmark = pytest.mark.integration

# DDL of docs/architecture.md (valid on Postgres and DuckDB).
STAGING_DDL = (
    """create table {s}.stg_events (file_index int, source_file text, record_number bigint,
        event_id text, order_id text, customer_id text, product_id text,
        category text, region text, channel text, quantity integer,
        unit_price numeric(11,2), discount numeric(4,3), currency text,
        event_time timestamptz, raw_record text,
        primary key (file_index, record_number))""",
    """create table {s}.stg_rejects (file_index int, source_file text, record_number bigint,
        event_id text, reason text, raw_record text,
        primary key (file_index, record_number))""",
    """create table {s}.batch_ledger (batch_id bigint primary key, rows_valid int,
        rows_rejected int, committed_at timestamptz)""",
)

A, B = "sales_a.csv", "sales_b.csv"
UTC = timezone.utc


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _event(
    pos: tuple[int, int],
    event_id: str,
    order_id: str,
    customer_id: str,
    product_id: str,
    category: str,
    region: str,
    channel: str,
    quantity: int,
    unit_price: str,
    discount: str,
    currency: str,
    event_time: str,
    raw: str | None = None,
) -> tuple[Any, ...]:
    file_index, record = pos
    return (
        file_index, (A, B)[file_index], record, event_id, order_id, customer_id, product_id,
        category, region, channel, quantity, Decimal(unit_price), Decimal(discount), currency,
        _t(event_time), raw if raw is not None else f"{event_id},{order_id},raw@{file_index}:{record}",
    )  # fmt: skip


# Already normalised, as the Spark stage writes them. Amounts worked out by hand:
EVENTS = [
    # 2024-01-15 NA Toys: e1 27.00, e2 return -9.00, e8 JPY 150.00*0.0067 = 1.005 -> 1.01,
    # e9 line 0.05*0.5 = 0.025 -> 0.03, e10 -0.025 -> -0.03. Orders o1 (twice), o2, o9, o10.
    _event((0, 1), "e1", "o1", "c1", "p1", "Toys", "NA", "online", 3, "10.00", "0.100", "USD", "2024-01-15T10:00:00Z"),
    _event((0, 2), "e2", "o2", "c1", "p1", "Toys", "NA", "store", -1, "10.00", "0.100", "USD", "2024-01-15T12:00:00Z"),
    _event((0, 12), "e8", "o1", "c1", "p6", "Toys", "NA", "online", 3, "50.00", "0", "JPY", "2024-01-15T11:00:00Z"),
    _event((0, 13), "e9", "o9", "c5", "p6", "Toys", "NA", "online", 1, "0.05", "0.500", "USD", "2024-01-15T13:00:00Z"),
    _event((0, 14), "e10", "o10", "c5", "p6", "Toys", "NA", "online", -1, "0.05", "0.5", "USD", "2024-01-15T14:00:00Z"),
    # e3: three identical copies, written differently (raw text, offset spelling):
    # one accepted, two duplicates. 2 * 19.99 = 39.98 EUR -> 43.3783 -> 43.38 USD.
    _event((1, 7), "e3", "o3", "c2", "p2", "Games", "EMEA", "online", 2, "19.99", "0", "EUR",
           "2024-01-15T23:59:59.5Z", raw="e3,o3,c2,p2,Games,emea,ONLINE,2,19.99,,eur,2024-01-15T23:59:59.5Z"),
    _event((0, 3), "e3", "o3", "c2", "p2", "Games", "EMEA", "online", 2, "19.990", "0.000", "EUR",
           "2024-01-16T00:59:59.500+01:00", raw="e3,o3,c2,p2,Games,EMEA,online,+2,19.99,0,EUR,2024-01-16T00:59:59.500+01:00"),
    _event((1, 1), "e3", "o3", "c2", "p2", "Games", "EMEA", "online", 2, "19.99", "0", "EUR",
           "2024-01-15T23:59:59.500000Z", raw='"e3",o3,c2,p2,Games,Emea,Online,2,19.99,0,Eur,2024-01-15 23:59:59.500000Z'),
    # e4: three versions, one differing in quantity: all three CONFLICTING_DUPLICATE.
    _event((0, 4), "e4", "o4", "c4", "p4", "Toys", "NA", "online", 1, "5.00", "0", "USD", "2024-01-16T00:00:00Z"),
    _event((1, 2), "e4", "o4", "c4", "p4", "Toys", "NA", "online", 2, "5.00", "0", "USD", "2024-01-16T00:00:00Z"),
    _event((1, 3), "e4", "o4", "c4", "p4", "Toys", "NA", "online", 1, "5.00", "0", "USD", "2024-01-16T00:00:00Z"),
    # e4b: two versions one microsecond apart: both CONFLICTING_DUPLICATE.
    _event((0, 15), "e4b", "o15", "c8", "p9", "Toys", "NA", "online", 1, "5.00", "0", "USD", "2024-01-16T00:00:00Z"),
    _event((1, 14), "e4b", "o15", "c8", "p9", "Toys", "NA", "online", 1, "5.00", "0", "USD", "2024-01-16T00:00:00.000001Z"),
    # e5: 2024-03-01T01:30:00+02:00 is 2024-02-29 in UTC. 100.00 GBP -> 126.50 USD.
    _event((0, 9), "e5", "o5", "c3", "p3", "Toys", "APAC", "partner", 1, "100.00", "0", "GBP", "2024-03-01T01:30:00+02:00"),
    # e6/e7: EUR half cent both ways: 1.00 * 1.085 = 1.085 -> 1.09, -1.085 -> -1.09.
    _event((0, 10), "e6", "o6", "c3", "p5", "Games", "EMEA", "store", 1, "2.00", "0.500", "EUR", "2024-02-29T10:00:00Z"),
    _event((0, 11), "e7", "o7", "c3", "p5", "Games", "EMEA", "store", -1, "2.00", "0.500", "EUR", "2024-03-02T11:00:00Z"),
    # p7: 32 sold, 1 returned: return_rate 1/32 = 0.03125 -> 0.0313 (a tie).
    _event((1, 10), "e11", "o11", "c6", "p7", "Books", "LATAM", "online", 32, "1.00", "0", "USD", "2024-02-01T00:00:00Z"),
    _event((1, 11), "e12", "o12", "c6", "p7", "Books", "LATAM", "online", -1, "1.00", "0", "USD", "2024-02-01T00:00:00.000001Z"),
    # p8: returns only (return_rate NULL): -6.00 CAD -> -4.428 -> -4.43; -150 JPY -> -1.005 -> -1.01.
    _event((1, 12), "e13", "o13", "c7", "p8", "Books", "LATAM", "partner", -2, "3.00", "0", "CAD", "2024-02-01T05:00:00Z"),
    _event((1, 13), "e14", "o14", "c7", "p8", "Books", "LATAM", "partner", -3, "50.00", "0", "JPY", "2024-02-01T06:00:00Z"),
    # the largest line: 100000 * 1000000.00 CAD = 1e11 -> 73800000000.00 USD.
    _event((0, 17), "e15", "o16", "c9", "p10", "Big", "NA", "partner", 100000, "1000000.00", "0", "CAD",
           "2099-12-31T23:59:59.999999Z"),
]  # fmt: skip

REJECTS = [
    (0, A, 5, None, "MALFORMED_ROW", 'e99,"broken'),
    (0, A, 6, "e9x", "MISSING_FIELD", "e9x,,c1,p1,Toys,NA,online,1,1.00,,USD,2024-01-15T10:00:00Z"),
    # a rejected row never takes part in duplicate detection (e3 stays accepted)
    (1, B, 4, "e3", "INVALID_FORMAT", "e3,o3,c2,p2,Games,EMEA,online,2,19.9.9,,EUR,2024-01-15T23:59:59.5Z"),
    (0, A, 16, "e20", "OUT_OF_RANGE", "e20,o20,c1,p1,Toys,NA,online,0,1.00,,USD,2024-01-15T10:00:00Z"),
    (1, B, 15, "e21", "UNKNOWN_CODE", "e21,o21,c1,p1,Toys,\uff2e\uff21,online,1,1.00,,USD,2024-01-15T10:00:00Z"),
    (1, B, 16, None, "MALFORMED_ROW", "bad \ufffd bytes"),
]

D = Decimal
EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    contract.DAILY_SALES: [
        (date(2024, 1, 15), "EMEA", "Games", D("43.38"), D("0.00"), D("43.38"), 2, 0, 1, 1),
        (date(2024, 1, 15), "NA", "Toys", D("28.04"), D("9.03"), D("19.01"), 7, 2, 4, 5),
        (date(2024, 2, 1), "LATAM", "Books", D("32.00"), D("6.44"), D("25.56"), 32, 6, 4, 4),
        (date(2024, 2, 29), "APAC", "Toys", D("126.50"), D("0.00"), D("126.50"), 1, 0, 1, 1),
        (date(2024, 2, 29), "EMEA", "Games", D("1.09"), D("0.00"), D("1.09"), 1, 0, 1, 1),
        (date(2024, 3, 2), "EMEA", "Games", D("0.00"), D("1.09"), D("-1.09"), 0, 1, 1, 1),
        (date(2099, 12, 31), "NA", "Big", D("73800000000.00"), D("0.00"), D("73800000000.00"), 100000, 0, 1, 1),
    ],
    contract.CUSTOMER_SUMMARY: [
        ("c1", date(2024, 1, 15), date(2024, 1, 15), 2, D("19.01")),
        ("c2", date(2024, 1, 15), date(2024, 1, 15), 1, D("43.38")),
        ("c3", date(2024, 2, 29), date(2024, 3, 2), 3, D("126.50")),
        ("c5", date(2024, 1, 15), date(2024, 1, 15), 2, D("0.00")),
        ("c6", date(2024, 2, 1), date(2024, 2, 1), 2, D("31.00")),
        ("c7", date(2024, 2, 1), date(2024, 2, 1), 2, D("-5.44")),
        ("c9", date(2099, 12, 31), date(2099, 12, 31), 1, D("73800000000.00")),
    ],
    contract.PRODUCT_PERFORMANCE: [
        ("p1", 3, 1, D("18.00"), D("0.3333")),
        ("p10", 100000, 0, D("73800000000.00"), D("0.0000")),
        ("p2", 2, 0, D("43.38"), D("0.0000")),
        ("p3", 1, 0, D("126.50"), D("0.0000")),
        ("p5", 1, 1, D("0.00"), D("1.0000")),
        ("p6", 4, 1, D("1.01"), D("0.2500")),
        ("p7", 32, 1, D("31.00"), D("0.0313")),
        ("p8", 0, 5, D("-5.44"), None),
    ],
    contract.REJECTED_ROWS: sorted(
        [(f, rec, eid, reason, raw) for (_, f, rec, eid, reason, raw) in REJECTS]
        + [
            (e[1], e[2], e[3], contract.CONFLICTING_DUPLICATE, e[15])
            for e in EVENTS
            if e[3] in ("e4", "e4b")
        ],
        key=lambda row: (row[0], row[1]),
    ),
    # 21 staged events + 6 rejects = 27 = 14 accepted + 2 duplicates + 11 rejected
    contract.INGESTION_AUDIT: [(27, 14, 2, 11, 2, 1, 1, 1, 1, 5)],
}

EMPTY: dict[str, list[tuple[Any, ...]]] = {
    **{name: [] for name in contract.OUTPUT_TABLES},
    contract.INGESTION_AUDIT: [(0,) * 10],
}


@dataclass
class Warehouse:
    """A staging schema on one backend, with a way to run SQL against it."""

    target: WarehouseTarget
    execute: Callable[[str, Sequence[Sequence[Any]] | None], list[tuple[Any, ...]]]

    def sql(self, statement: str, rows: Sequence[Sequence[Any]] | None = None) -> list[tuple[Any, ...]]:
        return self.execute(statement.format(s=self.target.schema), rows)

    def create_staging(self, events: Sequence[tuple[Any, ...]], rejects: Sequence[tuple[Any, ...]]) -> None:
        for ddl in STAGING_DDL:
            self.sql(ddl)
        # reversed: physical insertion order must not matter
        if events:
            self.sql("insert into {s}.stg_events values (" + ", ".join(["?"] * 16) + ")", events[::-1])
        if rejects:
            self.sql("insert into {s}.stg_rejects values (?, ?, ?, ?, ?, ?)", rejects[::-1])


def _duckdb_warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    import duckdb

    path = tmp_path / "warehouse.duckdb"
    target = WarehouseTarget(kind="duckdb", schema="pp_test_run", path=str(path))

    def execute(statement: str, rows: Sequence[Sequence[Any]] | None) -> list[tuple[Any, ...]]:
        # a short-lived connection: dbt must be able to open the file in between
        with duckdb.connect(str(path)) as con:
            if rows is not None:
                con.executemany(statement, [list(r) for r in rows])
                return []
            result = con.execute(statement)
            return result.fetchall() if result.description else []

    execute("create schema pp_test_run", None)
    yield Warehouse(target, execute)


def _postgres_warehouse(dsn: str) -> Iterator[Warehouse]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    schema = f"pp_test_{uuid.uuid4().hex[:12]}"
    target = WarehouseTarget(
        kind="postgres",
        schema=schema,
        host=str(params.get("host", "127.0.0.1")),
        port=int(params.get("port", 5432)),
        user=str(params.get("user", "postgres")),
        password=str(params.get("password", "")),
        dbname=str(params.get("dbname", "postgres")),
    )

    def execute(statement: str, rows: Sequence[Sequence[Any]] | None) -> list[tuple[Any, ...]]:
        with psycopg.connect(dsn, autocommit=True) as con, con.cursor() as cur:
            if rows is not None:
                cur.executemany(statement.replace("?", "%s"), rows)
                return []
            cur.execute(statement)
            return cur.fetchall() if cur.description else []

    execute(f"create schema {schema}", None)
    try:
        yield Warehouse(target, execute)
    finally:
        execute(f"drop schema {schema} cascade", None)


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """An empty run schema on DuckDB or on the throwaway Postgres of ``postgres_dsn``."""
    if request.param == "duckdb":
        yield from _duckdb_warehouse(tmp_path)
    else:
        try:
            dsn = request.getfixturevalue("postgres_dsn")
        except pytest.FixtureLookupError:
            pytest.skip("no postgres_dsn fixture (throwaway Postgres server) in this session")
        yield from _postgres_warehouse(dsn)


def _read_marts(wh: Warehouse) -> dict[str, list[tuple[Any, ...]]]:
    marts = {}
    for table, columns in contract.OUTPUT_TABLES.items():
        order = ", ".join(contract.OUTPUT_KEYS[table]) or "1"
        marts[table] = wh.sql(f"select {', '.join(columns)} from {{s}}.{table} order by {order}")
    return marts


def _exact(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows with Decimals as text, so that 1.0 and 1.00 differ (scale is checked too)."""
    return [tuple(str(v) if isinstance(v, Decimal) else v for v in row) for row in rows]


def _assert_marts(actual: dict[str, list[tuple[Any, ...]]], expected: dict[str, list[tuple[Any, ...]]]) -> None:
    for table in contract.OUTPUT_TABLES:
        assert _exact(actual[table]) == _exact(expected[table]), table


def _column_types(wh: Warehouse) -> dict[tuple[str, str], tuple[str, int | None]]:
    rows = wh.sql(
        "select table_name, column_name, lower(data_type), numeric_scale "
        "from information_schema.columns where table_schema = '{s}'"
    )
    return {(t, c): (dt, scale) for t, c, dt, scale in rows}


def test_marts_match_hand_computed_values(warehouse: Warehouse) -> None:
    warehouse.create_staging(EVENTS, REJECTS)

    result = run_dbt(warehouse.target)

    assert result.success, result.failures
    assert result.failures == []
    _assert_marts(_read_marts(warehouse), EXPECTED)
    # rejected_rows also carries file_index, the other half of a row's identity
    positions = warehouse.sql("select file_index, source_file, record_number from {s}.rejected_rows")
    assert sorted(positions) == sorted(
        [(f, n, r) for (f, n, r, *_) in REJECTS] + [e[:3] for e in EVENTS if e[3] in ("e4", "e4b")]
    )
    _assert_columns_and_types(warehouse)


def _assert_columns_and_types(warehouse: Warehouse) -> None:
    """Column names in contract order; money numeric(.,2), rates (.,4), counts bigint, dates date."""
    types = _column_types(warehouse)
    for table, columns in contract.OUTPUT_TABLES.items():
        names = [r[0] for r in warehouse.sql(
            f"select column_name from information_schema.columns where table_schema = '{{s}}' "
            f"and table_name = '{table}' order by ordinal_position"
        )]  # fmt: skip
        extra = ["file_index"] if table == contract.REJECTED_ROWS else []
        assert names == [*columns, *extra], table
        for column in columns:
            data_type, scale = types[(table, column)]
            if column in contract.MONEY_COLUMNS:
                assert (data_type.split("(")[0], scale) in {("numeric", 2), ("decimal", 2)}, column
            elif column in contract.RATE_COLUMNS:
                assert (data_type.split("(")[0], scale) in {("numeric", 4), ("decimal", 4)}, column
            elif column in contract.DATE_COLUMNS:
                assert data_type == "date", column
            elif column.startswith(("rows_", "rejected_", "units_")) or column.endswith("_count"):
                assert data_type == "bigint", column
            elif column == "record_number":
                assert data_type == "bigint", column


def test_empty_dataset_has_one_audit_row(warehouse: Warehouse) -> None:
    warehouse.create_staging([], [])

    result = run_dbt(warehouse.target)

    assert result.success, result.failures
    _assert_marts(_read_marts(warehouse), EMPTY)


def test_failing_data_test_is_reported_not_raised(tmp_path: Path) -> None:
    wh = next(_duckdb_warehouse(tmp_path))
    wh.create_staging(EVENTS[:2], [(0, A, 99, None, "NOT_A_REASON", "x")])

    result = run_dbt(wh.target)

    assert not result.success
    assert any("accepted_values_rejected_rows_reason" in f for f in result.failures), result.failures
    # the mart was still built, with the bad row in it
    assert wh.sql("select reason from {s}.rejected_rows") == [("NOT_A_REASON",)]


def test_missing_staging_tables_raise_stage_error(tmp_path: Path) -> None:
    wh = next(_duckdb_warehouse(tmp_path))

    with pytest.raises(PipelineStageError) as info:
        run_dbt(wh.target)

    assert info.value.stage == "model"
    assert "int_duplicate_events" in str(info.value)


def test_sale_date_ignores_the_session_time_zone(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sale_date is the UTC date even when the session runs at UTC+14."""
    warehouse.create_staging(EVENTS, REJECTS)
    zone = "Pacific/Kiritimati"  # UTC+14: a local date would move for most events
    if warehouse.target.kind == "postgres":
        monkeypatch.setenv("PGTZ", zone)  # libpq sets the session TimeZone from it
        assert run_dbt(warehouse.target, command="run", select="+daily_sales").success
    else:
        # DuckDB takes its TimeZone from the process' zone when ICU loads, so
        # dbt runs in a child process started with TZ set.
        code = (
            "import sys; from pipeline_props.pipeline.model import WarehouseTarget, run_dbt; "
            f"r = run_dbt(WarehouseTarget(kind='duckdb', schema={warehouse.target.schema!r}, "
            f"path={warehouse.target.path!r}), command='run', select='+daily_sales'); "
            "sys.exit(0 if r.success else 1)"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "TZ": zone},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    dates = sorted({r[0] for r in warehouse.sql("select sale_date from {s}.daily_sales")})
    assert dates == sorted({r[0] for r in EXPECTED[contract.DAILY_SALES]})


def test_fx_rates_var_matches_contract() -> None:
    project = yaml.safe_load((dbt_project_dir() / "dbt_project.yml").read_text(encoding="utf-8"))
    rates = {code: Decimal(rate) for code, rate in project["vars"]["fx_rates_to_usd"].items()}
    assert rates == contract.FX_RATES_TO_USD
    assert set(rates) == set(contract.CURRENCIES)


def test_target_repr_hides_password() -> None:
    target = WarehouseTarget(kind="postgres", schema="pp_x", password="s3cr3t-value")
    assert "s3cr3t-value" not in repr(target)


def test_utc_offsets_in_fixture_are_what_the_comments_say() -> None:
    """Guards the hand-checked data: e5 is on 2024-02-29 in UTC."""
    e5 = next(e for e in EVENTS if e[3] == "e5")
    assert e5[14].astimezone(UTC).date() == date(2024, 2, 29)
    assert e5[14].utcoffset() == timedelta(hours=2)
