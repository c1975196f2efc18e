"""A small hand-written dataset through the real pipeline, with hand-checked tables.

Every expected value below was worked out by hand from the contract (not by
the oracle), so this test catches a bug that the pipeline and the oracle share.
The oracle must agree as well.

The dataset (two files, 16 records read):

sales_a.csv (LF line ends), records:
  1 E1   accepted  2 x 10.00 USD                              = 20.00
  2 E2   accepted  1 x 0.05 x (1 - 0.5) = 0.025 -> 0.03 USD   (half away from zero)
  3 E3   accepted  return -1 x 10.00 USD                      = -10.00
  4 E4   accepted  2024-03-02T01:30:00+05:00 is 2024-03-01T20:30Z: sale_date moves to the previous day
  5 E5   CONFLICTING_DUPLICATE (sales_b.csv record 2 has quantity 2)
  6 E6   MISSING_FIELD (order_id empty)
  7 E7   INVALID_FORMAT (quantity 1.5; every field quoted)
  8 E10  accepted  1.00 EUR x 1.085 = 1.085 -> 1.09 USD      (half away from zero)
  9 E14  accepted  return -2 x 7.50 GBP = -15.00; x 1.265 = -18.975 -> -18.98 USD

sales_b.csv (CRLF line ends, an extra column ``note``, one empty line), records:
  1 E1   identical duplicate of E1, respelled (spaces, case, +2, 10, 0.000, -05:00 offset)
  2 E5   CONFLICTING_DUPLICATE
     (empty line: skipped, not counted)
  3 E8   OUT_OF_RANGE (discount 1.5)
  4 E9   UNKNOWN_CODE (region Mars)
  5 E11  accepted  return -1 x 0.05 x 0.5 = -0.025 -> -0.03 USD (half away from zero)
  6      MALFORMED_ROW (5 fields, header has 13)
  7 E13  accepted  3 x 2.50 x 0.9 = 6.75 CAD; x 0.738 = 4.9815 -> 4.98 USD;
         2024-03-04T23:30:00-03:00 is 2024-03-05T02:30Z
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
import uuid

import pytest

from pipeline_props.compare import Divergence, compare, compare_tables
from pipeline_props.contract import (
    CUSTOMER_SUMMARY,
    DAILY_SALES,
    INGESTION_AUDIT,
    OUTPUT_TABLES,
    PRODUCT_PERFORMANCE,
    REJECTED_ROWS,
)
from pipeline_props.infra import InfrastructureManager
from pipeline_props.oracles import run_oracle
from pipeline_props.pipeline.reference import ReferencePipeline
from pipeline_props.testing.protocol import TableSet

pytestmark = pytest.mark.integration

HEADER = "event_id,order_id,customer_id,product_id,category,region,channel,quantity,unit_price,discount,currency,event_time"

A_ROWS = [
    "E1,O1,C1,P1,Books,NA,online,2,10.00,,USD,2024-03-01T10:00:00Z",
    "E2,O1,C1,P2,Toys,na,Store,1,0.05,0.5,USD,2024-03-01T11:00:00Z",
    "E3,O2,C2,P1,Books,NA,online,-1,10.00,0,USD,2024-03-01T12:00:00Z",
    "E4,O3,C2,P1,Books,NA,online,1,5.00,,USD,2024-03-02T01:30:00+05:00",
    "E5,O4,C3,P3,Games,EMEA,partner,1,20.00,,EUR,2024-03-03T09:00:00Z",
    "E6,,C4,P1,Books,NA,online,1,1.00,,USD,2024-03-01T10:00:00Z",
    '"E7","O5","C4","P1","Books","NA","online","1.5","1.00","","USD","2024-03-01T10:00:00Z"',
    "E10,O6,C3,P4,Games,EMEA,online,1,1.00,,EUR,2024-03-03T10:00:00Z",
    "E14,O12,C3,P6,Games,EMEA,online,-2,7.50,,GBP,2024-03-03T18:00:00+00:00",
]
B_ROWS = [
    " E1 , O1 ,C1,P1,Books,na,ONLINE,+2,10,0.000,usd,2024-03-01 05:00:00-05:00,respelled",
    "E5,O4,C3,P3,Games,EMEA,partner,2,20.00,,EUR,2024-03-03T09:00:00Z,conflict",
    "",  # an empty line: skipped and not counted
    "E8,O8,C5,P5,Garden,LATAM,online,1,3.00,1.5,CAD,2024-03-04T10:00:00Z,x",
    "E9,O9,C5,P5,Garden,Mars,online,1,3.00,,CAD,2024-03-04T10:00:00Z,x",
    "E11,O7,C1,P2,Toys,NA,store,-1,0.05,0.5,USD,2024-03-01T13:00:00Z,return",
    "E12,O10,C6,only,three",
    "E13,O11,C2,P5,Garden,LATAM,partner,3,2.50,0.1,CAD,2024-03-04T23:30:00-03:00,tz",
]

FILES: list[tuple[str, bytes]] = [
    ("sales_a.csv", ("\n".join([HEADER, *A_ROWS]) + "\n").encode()),
    ("sales_b.csv", ("\r\n".join([HEADER + ",note", *B_ROWS]) + "\r\n").encode()),
]


def d(text: str) -> Decimal:
    return Decimal(text)


D1, D3, D5 = date(2024, 3, 1), date(2024, 3, 3), date(2024, 3, 5)

#: The contract's five tables for FILES, by hand (column order of contract.OUTPUT_TABLES).
EXPECTED: TableSet = {
    DAILY_SALES: [
        # Books/NA on 03-01: E1 20.00, E3 -10.00 (return), E4 5.00 (moved from 03-02 local)
        (D1, "NA", "Books", d("25.00"), d("10.00"), d("15.00"), 3, 1, 3, 3),
        # Toys/NA on 03-01: E2 0.03 (order O1), E11 -0.03 (return, order O7)
        (D1, "NA", "Toys", d("0.03"), d("0.03"), d("0.00"), 1, 1, 2, 2),
        # Games/EMEA on 03-03: E10 1.09, E14 -18.98 (return); E5 is rejected
        (D3, "EMEA", "Games", d("1.09"), d("18.98"), d("-17.89"), 1, 2, 2, 2),
        # Garden/LATAM: E13 only, moved to 03-05 by its -03:00 offset
        (D5, "LATAM", "Garden", d("4.98"), d("0.00"), d("4.98"), 3, 0, 1, 1),
    ],
    CUSTOMER_SUMMARY: [
        ("C1", D1, D1, 2, d("20.00")),  # O1 (E1, E2), O7 (E11): 20.00 + 0.03 - 0.03
        ("C2", D1, D5, 3, d("-0.02")),  # O2, O3, O11: -10.00 + 5.00 + 4.98
        ("C3", D3, D3, 2, d("-17.89")),  # O6, O12: 1.09 - 18.98
    ],
    PRODUCT_PERFORMANCE: [
        ("P1", 3, 1, d("15.00"), d("0.3333")),
        ("P2", 1, 1, d("0.00"), d("1.0000")),
        ("P4", 1, 0, d("1.09"), d("0.0000")),
        ("P5", 3, 0, d("4.98"), d("0.0000")),
        ("P6", 0, 2, d("-18.98"), None),  # only returns: return_rate NULL
    ],
    REJECTED_ROWS: [
        ("sales_a.csv", 5, "E5", "CONFLICTING_DUPLICATE", A_ROWS[4]),
        ("sales_a.csv", 6, "E6", "MISSING_FIELD", A_ROWS[5]),
        ("sales_a.csv", 7, "E7", "INVALID_FORMAT", A_ROWS[6]),
        ("sales_b.csv", 2, "E5", "CONFLICTING_DUPLICATE", B_ROWS[1]),
        ("sales_b.csv", 3, "E8", "OUT_OF_RANGE", B_ROWS[3]),
        ("sales_b.csv", 4, "E9", "UNKNOWN_CODE", B_ROWS[4]),
        ("sales_b.csv", 6, None, "MALFORMED_ROW", B_ROWS[6]),
    ],
    # read 16 = accepted 8 + duplicate 1 + rejected 7
    INGESTION_AUDIT: [(16, 8, 1, 7, 1, 1, 1, 1, 1, 2)],
}


@pytest.fixture(scope="module")
def pipeline_run(infrastructure: InfrastructureManager) -> Iterator[tuple[ReferencePipeline, str, TableSet]]:
    """FILES through ingest, transform, dbt and export, once for the module."""
    pipeline = ReferencePipeline(infrastructure)
    namespace = f"pp_t_hand_{uuid.uuid4().hex[:8]}"
    pipeline.prepare(namespace)
    try:
        stats = pipeline.ingest(namespace, FILES)
        assert stats.records == 16 and stats.malformed == 1
        pipeline.transform(namespace)
        pipeline.model(namespace)
        yield pipeline, namespace, pipeline.read_tables(namespace)
    finally:
        pipeline.cleanup(namespace)


def test_expected_tables_are_consistent_by_hand() -> None:
    """Guards the hand-written numbers themselves: the audit identity and per-table cross sums."""
    audit = EXPECTED[INGESTION_AUDIT][0]
    assert audit[0] == audit[1] + audit[2] + audit[3] == len(A_ROWS) + len(B_ROWS) - 1
    assert audit[3] == sum(audit[4:]) == len(EXPECTED[REJECTED_ROWS])
    net = sum(r[5] for r in EXPECTED[DAILY_SALES])
    assert net == sum(r[4] for r in EXPECTED[CUSTOMER_SUMMARY]) == sum(r[3] for r in EXPECTED[PRODUCT_PERFORMANCE])
    assert sum(r[9] for r in EXPECTED[DAILY_SALES]) == audit[1]


@pytest.mark.parametrize("table", list(OUTPUT_TABLES))
def test_table_equals_the_hand_checked_values(pipeline_run: tuple[ReferencePipeline, str, TableSet],
                                              table: str) -> None:
    _, _, actual = pipeline_run
    divergence = Divergence(diffs={table: compare_tables(table, actual[table], EXPECTED[table])})
    assert divergence.ok, divergence.render()
    # and without compare()'s normalisation: the exported values themselves
    assert Counter(actual[table]) == Counter(EXPECTED[table])


def test_half_cent_cases_round_away_from_zero(pipeline_run: tuple[ReferencePipeline, str, TableSet]) -> None:
    _, _, actual = pipeline_run
    by_product = {r[0]: r for r in actual[PRODUCT_PERFORMANCE]}
    assert by_product["P6"][3] == Decimal("-18.98")  # -18.975; a binary float gives -18.97
    assert by_product["P4"][3] == Decimal("1.09")  # 1.085, banker's rounding would give 1.08
    toys = next(r for r in actual[DAILY_SALES] if r[2] == "Toys")
    assert (toys[3], toys[4]) == (Decimal("0.03"), Decimal("0.03"))  # +-0.025: banker's gives 0.02


def test_staging_holds_every_valid_version_and_reject(
    pipeline_run: tuple[ReferencePipeline, str, TableSet],
) -> None:
    """stg_events: the 8 accepted, the E1 copy and both E5 versions; stg_rejects: the 5 others."""
    pipeline, namespace, _ = pipeline_run
    counts = pipeline.staging_counts(namespace)
    assert counts["stg_events"] == 11
    assert counts["stg_rejects"] == 5
    assert counts["batch_ledger"] >= 1


def test_oracle_agrees(pipeline_run: tuple[ReferencePipeline, str, TableSet]) -> None:
    _, _, actual = pipeline_run
    oracle = run_oracle(FILES)
    divergence = compare(actual, oracle.tables)
    assert divergence.ok, divergence.render()
    assert oracle.schema_drift == (("sales_b.csv", "note"),)
