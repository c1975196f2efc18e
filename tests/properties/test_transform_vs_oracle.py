"""Fast tier: the Spark transform on in-memory messages equals the oracle's validation, row by row.

No broker: each dataset's records are encoded as the ingest stage encodes
them (the Kafka message value), put in one DataFrame and run through
``transform.transform`` (parse + validate). For every record the reason and
the normalised values must equal the oracle's ``checked`` rows, and the raw
record its split. Each example draws a list of datasets so that one Spark
job checks many of them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from pipeline_props import contract as C
from pipeline_props.errors import InputError
from pipeline_props.oracles.duckdb_oracle import _build
from pipeline_props.pipeline.messages import encode
from pipeline_props.pipeline.reader import iter_records
from pipeline_props.strategies import SalesDataset, sales_datasets
from pipeline_props.testing.profiles import examples_for

pytestmark = [pytest.mark.properties, pytest.mark.spark]

_STRIDE = 1000  # file_index of file i of dataset k: k * _STRIDE + i
_VALUES = ("order_id", "customer_id", "product_id", "category", "region", "channel", "quantity",
           "unit_price", "discount", "currency", "event_time_us")
Row = tuple[Any, ...]


def _oracle_rows(dataset: SalesDataset, k: int) -> dict[tuple[int, int], Row]:
    con, _ = _build(dataset.files)
    try:
        rows = con.execute(
            f"""SELECT c.file_index, c.record_number, c.reason, c.event_id, r.raw,
                       {', '.join('c.' + v for v in _VALUES[:-1])}, c.event_us
                FROM checked AS c JOIN records AS r USING (file_index, record_number)"""
        ).fetchall()
    finally:
        con.close()
    out = {}
    for fi, rn, reason, event_id, raw, *values in rows:
        if reason is not None:
            event_id = None if reason == C.MALFORMED_ROW else (event_id or None)
            values = [None] * len(_VALUES)
        out[(k * _STRIDE + fi, rn)] = (reason, event_id, raw, *values)
    return out


def _messages(dataset: SalesDataset, k: int) -> list[bytes]:
    values = []
    for i, (name, data) in enumerate(dataset.files):
        for record in iter_records(data, source_file=name, file_index=k * _STRIDE + i):
            values.append(encode(record, f"d{k}")[1])
    return values


def _spark_rows(spark: Any, values: list[bytes]) -> dict[tuple[int, int], Row]:
    from pyspark.sql import functions as F

    from pipeline_props.pipeline.transform import transform

    if not values:
        return {}
    df = spark.createDataFrame([(v,) for v in values], "value binary")
    out = transform(df).select(
        "file_index", "record_number", "reason", "event_id", "raw_record",
        *_VALUES[:-1], F.unix_micros("event_time").alias("event_time_us"),
    ).collect()
    return {(r[0], r[1]): tuple(r[2:]) for r in out}


def _norm(row: Row) -> Row:
    return tuple(Decimal(v) if isinstance(v, Decimal) else v for v in row)


@settings(max_examples=max(4, examples_for("fast") // 40))
@given(st.lists(sales_datasets(max_rows=20, files=(1, 2), error_rate=0.4, duplicate_rate=0.2),
                min_size=1, max_size=20))
def test_spark_transform_equals_oracle_validation(spark: Any, datasets: list[SalesDataset]) -> None:
    expected: dict[tuple[int, int], Row] = {}
    values: list[bytes] = []
    kept: dict[int, SalesDataset] = {}
    for k, dataset in enumerate(datasets):
        try:
            rows = _oracle_rows(dataset, k)
        except InputError:
            event("refused file")
            continue
        kept[k] = dataset
        expected.update(rows)
        values.extend(_messages(dataset, k))
    event(f"datasets per Spark job: {len(kept)}")
    actual = _spark_rows(spark, values)
    problems = []
    for key in sorted(set(actual) | set(expected)):
        a, e = actual.get(key), expected.get(key)
        if a is None or e is None or _norm(a) != _norm(e):
            problems.append((key, a, e))
    if problems:
        key = problems[0][0]
        dataset = kept[key[0] // _STRIDE]
        cols = ("reason", "event_id", "raw_record", *_VALUES)
        lines = [f"  {c:<14} spark={a!r:<40} oracle={e!r}" + ("   ≠" if a != e else "")
                 for c, a, e in zip(cols, problems[0][1] or ("(no row)",) * len(cols),
                                    problems[0][2] or ("(no row)",) * len(cols), strict=True)]
        pytest.fail(f"{len(problems)} record(s) differ; first: file {key[0] % _STRIDE} record {key[1]}\n"
                    + "\n".join(lines) + f"\n\n{dataset!r}")
