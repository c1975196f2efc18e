"""Throughput of the DuckDB oracle on a 1M-row, quote-free file (its fast path).

Run: .venv/bin/pytest benchmarks/test_bench_oracle.py --benchmark-only -p no:cacheprovider
Target: >= 2M rows/s on this 2-core machine.
"""

from __future__ import annotations

import pytest

from pipeline_props import contract
from pipeline_props.oracles import run_oracle

ROWS = 1_000_000

_REGIONS = ("NA", "emea", "APAC", "Latam")
_CHANNELS = ("online", "STORE", "partner")
_CURRENCIES = ("USD", "EUR", "gbp", "JPY", "CAD")


def make_sales_csv(rows: int) -> bytes:
    """A deterministic sales file: mostly valid rows, with returns, identical and
    conflicting duplicates, and some rejects (bad code, bad date, short record)."""
    out = [",".join(contract.COLUMNS)]
    for i in range(rows):
        event = i if i % 50 else i - 1  # every 50th row repeats the previous event
        quantity = (i % 7) - 2 or 3
        price = f"{(i * 37) % 100000 // 100}.{i % 100:02d}"
        discount = "" if i % 3 else f"0.{i % 1000:03d}"
        day = 1 + i % 28
        offset = ("Z", "+05:30", "-08:00")[i % 3]
        region = _REGIONS[i % 4] if i % 997 else "XX"
        month = 1 + i % 12 if i % 1009 else 13
        record = (
            f"E{event},O{event // 3},C{event % 5000},P{event % 700},cat{event % 11},"
            f"{region},{_CHANNELS[i % 3]},{quantity},{price},{discount},"
            f"{_CURRENCIES[i % 5]},2024-{month:02d}-{day:02d}T{i % 24:02d}:{i % 60:02d}:00{offset}"
        )
        out.append(record if i % 4999 else "short,record")
    return ("\n".join(out) + "\n").encode()


@pytest.fixture(scope="module")
def big_file() -> bytes:
    return make_sales_csv(ROWS)


def test_oracle_rows_per_second(benchmark: pytest.FixtureRequest, big_file: bytes) -> None:
    result = benchmark.pedantic(run_oracle, args=([("sales.csv", big_file)],), rounds=3, iterations=1)
    audit = result.tables[contract.INGESTION_AUDIT][0]
    assert audit[0] == ROWS
    assert audit[0] == audit[1] + audit[2] + audit[3]
    assert audit[2] > 0 and audit[3] > 0
    best = benchmark.stats.stats.min
    benchmark.extra_info["rows_per_s"] = round(ROWS / best)
