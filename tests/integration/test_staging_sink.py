"""StagingSink against a real Postgres: one transaction per batch, idempotent on replay."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pyspark.sql import DataFrame, SparkSession

from pipeline_props import contract as C
from pipeline_props.errors import PipelineStageError
from pipeline_props.pipeline.staging import (
    NUL_REPLACEMENT,
    StagingSink,
    create_staging,
    drop_schema,
)
from pipeline_props.pipeline.streaming_query import await_query, start_query
from pipeline_props.pipeline.transform import transform

pytestmark = pytest.mark.integration

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
    "discount": "",
    "currency": "eur",
    "event_time": "2024-03-01T12:34:56.5+02:00",
}


def message(record: int, raw: str | None = None, file_index: int = 0, **fields: str) -> str:
    return json.dumps(
        {
            "v": 1,
            "run": "r1",
            "file": f"f{file_index}.csv",
            "file_index": file_index,
            "record": record,
            "raw": f"raw {record}" if raw is None else raw,
            "malformed": None,
            "fields": {**BASE, "event_id": f"ev-{record}", **fields},
        }
    )


@pytest.fixture
def schema(postgres_dsn: str, namespace: str) -> Iterator[str]:
    create_staging(postgres_dsn, namespace)
    create_staging(postgres_dsn, namespace)  # idempotent
    yield namespace
    drop_schema(postgres_dsn, namespace)


def batch(spark: SparkSession, values: list[str]) -> DataFrame:
    return transform(spark.createDataFrame([(v,) for v in values], "value string"))


def fetch(dsn: str, schema: str, table: str, order: str = "file_index, record_number") -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            sql.SQL("SELECT * FROM {}.{} ORDER BY " + order).format(sql.Identifier(schema), sql.Identifier(table))
        ).fetchall()


def counts(dsn: str, schema: str) -> tuple[int, int, int]:
    return (
        len(fetch(dsn, schema, "stg_events")),
        len(fetch(dsn, schema, "stg_rejects")),
        len(fetch(dsn, schema, "batch_ledger", order="batch_id")),
    )


def test_same_batch_id_twice_writes_once(spark: SparkSession, postgres_dsn: str, schema: str) -> None:
    df = batch(spark, [message(1), message(2), message(3, quantity="0"), "not json"])
    sink = StagingSink(postgres_dsn, schema)
    sink(df, 7)
    first = (fetch(postgres_dsn, schema, "stg_events"), fetch(postgres_dsn, schema, "stg_rejects"))
    sink(df, 7)
    assert (fetch(postgres_dsn, schema, "stg_events"), fetch(postgres_dsn, schema, "stg_rejects")) == first
    ledger = fetch(postgres_dsn, schema, "batch_ledger", order="batch_id")
    assert [(b, v, r) for b, v, r, _ in ledger] == [(7, 2, 2)]
    assert (sink.batches_written, sink.batches_skipped) == (1, 1)
    assert counts(postgres_dsn, schema) == (2, 2, 1)


def test_same_record_in_two_batches_writes_once(spark: SparkSession, postgres_dsn: str, schema: str) -> None:
    sink = StagingSink(postgres_dsn, schema)
    sink(batch(spark, [message(1), message(2, quantity="x")]), 0)
    # batch 1 repeats both records (a producer retry) and the same record twice in one batch
    sink(batch(spark, [message(1), message(1), message(2, quantity="x"), message(3)]), 1)
    events = fetch(postgres_dsn, schema, "stg_events")
    rejects = fetch(postgres_dsn, schema, "stg_rejects")
    assert [(e[0], e[2]) for e in events] == [(0, 1), (0, 3)]
    assert [(r[0], r[2], r[4]) for r in rejects] == [(0, 2, C.INVALID_FORMAT)]
    # the same record number in another file is another row
    sink(batch(spark, [message(1, file_index=1)]), 2)
    assert counts(postgres_dsn, schema) == (3, 1, 3)
    # a new record twice in one batch: the straight COPY fails on the key, the fallback stores it once
    sink(batch(spark, [message(7), message(7)]), 3)
    assert counts(postgres_dsn, schema) == (4, 1, 4)


def test_timestamps_arrive_exact(spark: SparkSession, postgres_dsn: str, schema: str) -> None:
    cases = {
        1: ("2024-02-29T10:00:00.123456+01:00", dt.datetime(2024, 2, 29, 9, 0, 0, 123456, tzinfo=UTC)),
        2: ("2000-01-01T00:30:00+01:00", dt.datetime(1999, 12, 31, 23, 30, tzinfo=UTC)),
        3: ("2099-12-31T23:59:59.999999-14:00", dt.datetime(2100, 1, 1, 13, 59, 59, 999999, tzinfo=UTC)),
        4: ("2024-03-31 01:59:59.000001Z", dt.datetime(2024, 3, 31, 1, 59, 59, 1, tzinfo=UTC)),
        5: ("2000-01-01T00:00:00.000001+14:00", dt.datetime(1999, 12, 31, 10, 0, 0, 1, tzinfo=UTC)),
        6: ("2038-01-19T03:14:08Z", dt.datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC)),
    }
    StagingSink(postgres_dsn, schema)(
        batch(spark, [message(rec, event_time=text) for rec, (text, _) in cases.items()]), 0
    )
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute("SET TimeZone = 'Asia/Kathmandu'")  # the session zone must not matter
        rows = conn.execute(
            sql.SQL(
                "SELECT record_number, event_time, to_char(event_time AT TIME ZONE 'UTC',"
                " 'YYYY-MM-DD HH24:MI:SS.US') FROM {}.stg_events"
            ).format(sql.Identifier(schema))
        ).fetchall()
    assert len(rows) == len(cases)
    for rec, instant, utc_text in rows:
        expected = cases[rec][1]
        assert instant == expected
        assert utc_text == expected.strftime("%Y-%m-%d %H:%M:%S.%f")


def test_values_survive_the_copy(spark: SparkSession, postgres_dsn: str, schema: str) -> None:
    tricky_raw = 'a,"b ""q""",\\N,\r\nline2\ttab,\\.,' + "\u00e9\U0001f600"
    StagingSink(postgres_dsn, schema)(
        batch(
            spark,
            [
                message(1, raw=tricky_raw, category='Cat "x", y', unit_price="1000000.00", discount="1"),
                message(2, raw="", unit_price="0", quantity="-100000", discount="0.125", region="LaTaM"),
                message(3, raw="r\x00aw", order_id="o\x00"),  # rejected: control character
                message(4, raw="\\N", event_id=""),
                message(5, raw="", order_id="\\N", customer_id="NULL", product_id='""'),
            ],
        ),
        0,
    )
    events = {r[2]: r for r in fetch(postgres_dsn, schema, "stg_events")}
    rejects = {r[2]: r for r in fetch(postgres_dsn, schema, "stg_rejects")}
    e1, e2, e5 = events[1], events[2], events[5]
    assert e1[15] == tricky_raw
    assert e1[7] == 'Cat "x", y'
    assert (e1[11], e1[12]) == (Decimal("1000000.00"), Decimal("1.000"))
    assert e2[15] == ""  # empty text, not NULL
    assert (e2[8], e2[10], e2[11], e2[12]) == ("LATAM", -100000, Decimal("0.00"), Decimal("0.125"))
    assert (e5[4], e5[5], e5[6]) == ("\\N", "NULL", '""')
    assert rejects[3][3:] == ("ev-3", C.INVALID_FORMAT, "r" + NUL_REPLACEMENT + "aw")
    assert rejects[4][3:] == (None, C.MISSING_FIELD, "\\N")


def test_crash_after_commit_then_replay(spark: SparkSession, postgres_dsn: str, schema: str) -> None:
    calls: list[int] = []

    def crash_once(batch_id: int) -> None:
        calls.append(batch_id)
        if len(calls) == 1:
            raise RuntimeError("simulated crash before the checkpoint commit")

    df = batch(spark, [message(1), message(2, quantity="")])
    sink = StagingSink(postgres_dsn, schema, after_commit=crash_once)
    with pytest.raises(RuntimeError):
        sink(df, 0)
    assert counts(postgres_dsn, schema) == (1, 1, 1)  # the transaction committed
    sink(df, 0)  # the replay
    assert counts(postgres_dsn, schema) == (1, 1, 1)
    assert calls == [0]  # a skipped batch does not run the hook


def test_streaming_restart_is_exactly_once(
    spark: SparkSession, postgres_dsn: str, schema: str, tmp_path: Path
) -> None:
    """foreachBatch end to end with a file source: crash after commit, restart, no double write."""
    source = tmp_path / "in"
    source.mkdir()
    checkpoint = str(tmp_path / "checkpoint")
    (source / "part-0.txt").write_text("\n".join([message(1), message(2, quantity="0"), "junk"]) + "\n")

    def crash(batch_id: int) -> None:
        raise RuntimeError(f"simulated crash after batch {batch_id}")

    def run(sink: StagingSink) -> None:
        query = start_query(
            spark.readStream.format("text").load(str(source)), checkpoint_dir=checkpoint, sink=sink
        )
        await_query(query)

    with pytest.raises(PipelineStageError):
        run(StagingSink(postgres_dsn, schema, after_commit=crash))
    assert counts(postgres_dsn, schema) == (1, 2, 1)

    (source / "part-1.txt").write_text("\n".join([message(3), message(1)]) + "\n")
    sink = StagingSink(postgres_dsn, schema)
    run(sink)
    assert sink.batches_skipped == 1  # batch 0 replayed and skipped
    assert counts(postgres_dsn, schema) == (2, 2, 2)
    assert [r[2] for r in fetch(postgres_dsn, schema, "stg_events")] == [1, 3]


def test_errors_do_not_leak_the_password(spark: SparkSession) -> None:
    dsn = "host=127.0.0.1 port=9 user=nobody password=s3cr3t-pw dbname=x connect_timeout=3"
    with pytest.raises(PipelineStageError) as info:
        StagingSink(dsn, "pp_x")(batch(spark, [message(1)]), 0)
    assert "s3cr3t-pw" not in str(info.value)
    assert "s3cr3t-pw" not in repr(StagingSink(dsn, "pp_x"))
    with pytest.raises(PipelineStageError) as info:
        create_staging("postgresql://nobody:s3cr3t-pw@127.0.0.1:9/x?connect_timeout=3", "pp_x")
    assert "s3cr3t-pw" not in str(info.value)


def test_schema_names_are_identifiers(postgres_dsn: str, namespace: str) -> None:
    odd = namespace + '"; DROP TABLE x; --'
    create_staging(postgres_dsn, odd)
    try:
        assert fetch(postgres_dsn, odd, "batch_ledger", order="batch_id") == []
    finally:
        drop_schema(postgres_dsn, odd)
    drop_schema(postgres_dsn, odd)  # no-op when absent
