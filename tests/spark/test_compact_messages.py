"""The compact Kafka message and the event_time cast, against the JSON form and the oracle.

* A record sent compact (``#2,...``) and the same record sent as JSON give
  the same transform row, whatever its fields.
* A value that starts like a compact one but is not (too few parts, an odd
  integer, invalid UTF-8) is a MALFORMED_ROW, never an error.
* event_time on a grid of every edge (each part at and past its bound, each
  offset form, fractions, both separators): the Spark stage gives the
  oracle's reason and instant for every one.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipeline_props import contract as C
from pipeline_props.oracles.duckdb_oracle import _build
from pipeline_props.pipeline.messages import encode
from pipeline_props.pipeline.reader import Record, iter_records
from pipeline_props.pipeline.transform import UNKNOWN_FILE_INDEX, transform

pytestmark = pytest.mark.spark

FIELDS = ["ev-1", "ord-1", "cust-1", "prod-1", "Garden", "EMEA", "online", "3", "19.99", "0.1", "EUR",
          "2024-03-01T12:34:56.5+02:00"]
COLUMNS = ("file_index", "source_file", "record_number", "raw_record", "event_id", "reason", *C.COLUMNS[1:])


def _rows(spark: SparkSession, values: list[bytes]) -> list[dict[str, Any]]:
    df = spark.createDataFrame([(v,) for v in values], "value binary")
    out = transform(df).select(*COLUMNS[:-1], F.unix_micros("event_time").alias("event_time_us")).collect()
    return [r.asDict() for r in out]


def _json(record: Record) -> bytes:
    """The JSON form of a record (version 1), which the producer sends when compact cannot hold it."""
    return json.dumps({"v": 1, "run": "r", "file": record.source_file, "file_index": record.file_index,
                       "record": record.record_number, "raw": record.raw, "malformed": None,
                       "fields": dict(zip(C.COLUMNS, record.fields or ()))}, ensure_ascii=False).encode("utf-8")


VARIANTS = [
    FIELDS,
    ["", *FIELDS[1:]],
    [*FIELDS[:9], "", *FIELDS[10:]],
    [*FIELDS[:5], "latam", "STORE", "-2", "0.01", "1", "jpy", "2000-02-29 23:59:59Z"],
    [*FIELDS[:7], "0", "x", "2", "EURO", "2024-02-30T00:00:00Z"],
    ["é😀", "ord\x00", "", " padded", "a\u2028b", "NA", "web", "1e3", "+5.5", "-0.001", "USD", "nope"],
]


def test_compact_and_json_give_the_same_row(spark: SparkSession) -> None:
    compact, json_values = [], []
    for i, fields in enumerate(VARIANTS, start=1):
        record = Record(3, "sales.csv", i, ",".join(fields), tuple(fields), None)
        value = encode(record, "r")[1]
        assert value.startswith(b"#2,3,%d,sales.csv," % i)
        compact.append(value)
        json_values.append(_json(record))
    assert _rows(spark, compact) == _rows(spark, json_values)


@pytest.mark.parametrize("value", [
    b"#2,", b"#2,0,1", b"#2,0,1,f.csv", b"#2,x,1,f.csv,a", b"#2,0,y,f.csv,a", b"#2,01,1,f.csv,a",
    b"#2,-1,1,f.csv,a", b"#2,0,1,f.csv,\xff\xfe," + b",".join(f.encode() for f in FIELDS[1:]),
])
def test_a_value_that_only_looks_compact_is_an_unknown_position_reject(spark: SparkSession, value: bytes) -> None:
    (row,) = _rows(spark, [value])
    assert row["reason"] == C.MALFORMED_ROW
    assert row["file_index"] == UNKNOWN_FILE_INDEX
    assert row["raw_record"] == value.decode("utf-8", "replace")


def test_a_positioned_compact_value_with_the_wrong_field_count_is_malformed_there(spark: SparkSession) -> None:
    (row,) = _rows(spark, [b"#2,4,9,f.csv,a,b,c"])
    assert (row["file_index"], row["record_number"], row["source_file"]) == (4, 9, "f.csv")
    assert (row["reason"], row["raw_record"], row["event_id"]) == (C.MALFORMED_ROW, "a,b,c", None)


def _event_times() -> list[str]:
    dates = ["2024-02-29", "2023-02-29", "2000-02-29", "1900-02-29", "2100-02-28", "1999-12-31", "2099-12-31",
             "2100-01-01", "0000-01-01", "9999-12-31", "2024-00-10", "2024-13-01", "2024-04-31", "2024-04-30",
             "2024-01-00", "2024-01-32"]
    times = ["00:00:00", "23:59:59", "24:00:00", "12:60:00", "12:00:60", "99:99:99"]
    zones = ["Z", "+00:00", "-00:00", "+14:00", "-14:00", "+14:01", "+13:59", "+05:60", "+18:00", "-18:01",
             "+99:00", "z"]
    fractions = ["", ".5", ".000001", ".123456", ".1234567", "."]
    out = [f"{d}T12:34:56Z" for d in dates]
    out += [f"2024-06-15{sep}{t}{fr}{z}" for sep, t, fr, z in
            itertools.product(("T", " "), times, ("", ".5"), zones)]
    out += [f"2024-06-15T10:00:00{fr}{z}" for fr, z in itertools.product(fractions, ("Z", "-03:30"))]
    out += ["2000-01-01T00:30:00+01:00", "2100-01-01T00:30:00+14:00", "2099-12-31T23:30:00-14:00",
            "2024-06-15T10:00:00", "2024-06-15", "2024-06-15T10:00Z", "２０２４-06-15T10:00:00Z"]
    return out


def test_event_time_equals_the_oracle_on_a_grid_of_edges(spark: SparkSession) -> None:
    times = _event_times()
    header = ",".join(C.COLUMNS)
    lines = [",".join([f"e{i}", *FIELDS[1:11], t]) for i, t in enumerate(times)]
    data = ("\n".join([header, *lines]) + "\n").encode("utf-8")
    con, _ = _build([("grid.csv", data)])
    try:
        expected = {rn: (reason, us) for rn, reason, us in con.execute(
            "SELECT record_number, reason, CASE WHEN reason IS NULL THEN event_us END FROM checked").fetchall()}
    finally:
        con.close()
    values = [encode(r, "r")[1] for r in iter_records(data, source_file="grid.csv", file_index=0)]
    assert all(v.startswith(b"#2,") for v in values)
    actual = {r["record_number"]: (r["reason"], r["event_time_us"]) for r in _rows(spark, values)}
    wrong = {times[rn - 1]: (actual.get(rn), expected[rn]) for rn in expected if actual.get(rn) != expected[rn]}
    assert not wrong, f"(spark, oracle) per event_time: {wrong}"
    assert len(expected) == len(times)
