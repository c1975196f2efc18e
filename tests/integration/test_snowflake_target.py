"""The Snowflake target against the local emulator: sink idempotence, failures named, never a hang.

The emulator is the session's (``infrastructure.snowflake`` starts it once);
each test works in a schema of its own.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from pipeline_props.errors import EXIT_ERROR, InfrastructureError, PipelineStageError
from pipeline_props.infra.fakesnow import SERVICE, emulator_endpoint
from pipeline_props.pipeline import model
from pipeline_props.pipeline.snowflake_warehouse import SnowflakeWarehousePipeline, connection
from pipeline_props.pipeline.streaming_query import await_query, start_query
from pipeline_props.pipeline.transform import transform

pytestmark = [pytest.mark.integration, pytest.mark.snowflake]

FIELDS = {"order_id": "o1", "customer_id": "c1", "product_id": "p1", "category": "Toys",
          "region": "na", "channel": "Online", "quantity": "2", "unit_price": "1.05", "discount": "",
          "currency": "eur", "event_time": "2024-03-01T23:30:00-02:00"}


def message(record: int, **fields: str) -> str:
    """One Kafka message value of docs/architecture.md."""
    return json.dumps({"v": 1, "run": "r", "file": "f.csv", "file_index": 0, "record": record,
                       "raw": f"raw {record}", "malformed": None,
                       "fields": {**FIELDS, "event_id": f"e{record}", **fields}})


def batch(spark: SparkSession, values: list[str]) -> DataFrame:
    return transform(spark.createDataFrame([(v,) for v in values], "value string"))


@pytest.fixture
def pipeline(infrastructure: Any, namespace: str) -> Iterator[SnowflakeWarehousePipeline]:
    pipe = SnowflakeWarehousePipeline(infrastructure)
    pipe.prepare(namespace)
    yield pipe
    pipe.cleanup(namespace)


def test_a_replayed_batch_is_not_counted_twice(spark: SparkSession, pipeline: SnowflakeWarehousePipeline,
                                              namespace: str) -> None:
    df = batch(spark, [message(1), message(2, quantity="0"), "not json"])
    sink = pipeline.sink(namespace)
    sink(df, 0)
    assert pipeline.staging_counts(namespace) == {"stg_events": 1, "stg_rejects": 2, "batch_ledger": 1}
    sink(df, 0)  # Spark replays batch 0: the warehouse committed, the checkpoint did not
    assert sink.batches_skipped == 1
    sink(df, 1)  # the same records under a new batch id (offsets lost): the key guard holds
    assert pipeline.staging_counts(namespace) == {"stg_events": 1, "stg_rejects": 2, "batch_ledger": 2}


@pytest.mark.slow  # a restart of the query on the emulator; test_a_replayed_batch_... covers the replay in ci
def test_a_crash_after_the_commit_then_a_restart_writes_once(
    spark: SparkSession, pipeline: SnowflakeWarehousePipeline, namespace: str, tmp_path: Path
) -> None:
    """foreachBatch end to end: the driver dies after the warehouse COMMIT, before the checkpoint."""
    source = tmp_path / "in"
    source.mkdir()
    checkpoint = str(tmp_path / "checkpoint")
    (source / "part-0.txt").write_text("\n".join([message(1), message(2, quantity="")]) + "\n")
    real = pipeline.sink(namespace)

    def crash_after_commit(df: DataFrame, batch_id: int) -> None:
        real(df, batch_id)
        raise RuntimeError(f"simulated crash after batch {batch_id}")

    def run(sink: Any) -> None:
        await_query(start_query(spark.readStream.format("text").load(str(source)),
                                checkpoint_dir=checkpoint, sink=sink))

    with pytest.raises(PipelineStageError):
        run(crash_after_commit)
    (source / "part-1.txt").write_text("\n".join([message(3), message(1)]) + "\n")
    again = pipeline.sink(namespace)
    run(again)
    assert again.batches_skipped == 1  # batch 0 replayed and skipped
    assert pipeline.staging_counts(namespace) == {"stg_events": 2, "stg_rejects": 1, "batch_ledger": 2}
    with connection(pipeline.endpoint, what="test") as conn:
        rows = conn.cursor().execute(f"select record_number, convert_timezone('UTC', event_time)::date "
                                     f"from {namespace}.stg_events order by 1").fetchall()
    assert [r[0] for r in rows] == [1, 3]
    assert str(rows[0][1]) == "2024-03-02"  # 23:30 at -02:00 is the next day in UTC


class _Infra:
    """Just enough of InfrastructureManager to aim the pipeline at a port nobody listens on."""

    def __init__(self, real: Any, port: int) -> None:
        self.settings, self.infra = real.settings, real.infra
        self.snowflake = emulator_endpoint(port)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_emulator_not_running_is_exit_2_naming_it(infrastructure: Any, namespace: str) -> None:
    pipe = SnowflakeWarehousePipeline(_Infra(infrastructure, _free_port()))
    started = time.monotonic()
    with pytest.raises(InfrastructureError) as info:
        pipe.prepare(namespace)
    assert time.monotonic() - started < 60  # bounded by login_timeout, never a hang
    assert info.value.exit_code == EXIT_ERROR
    assert SERVICE in str(info.value) and "services status" in str(info.value)
    assert "password" not in str(info.value)


def test_a_failing_model_is_reported_by_name(infrastructure: Any, pipeline: SnowflakeWarehousePipeline,
                                             namespace: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken mart ends the build with its name; the emulator answers afterwards (no 500 storm)."""
    project = tmp_path / "dbt"
    shutil.copytree(model.dbt_project_dir(), project, ignore=shutil.ignore_patterns("target", "logs"))
    mart = project / "models" / "marts" / "product_performance.sql"
    mart.write_text(mart.read_text().replace("units_returned,\n", "no_such_column,\n", 1))
    monkeypatch.setenv(model.DBT_DIR_ENV, str(project))
    started = time.monotonic()
    with pytest.raises(PipelineStageError) as info:
        pipeline.model(namespace)
    assert time.monotonic() - started < 300
    assert "product_performance" in str(info.value) and info.value.exit_code == EXIT_ERROR
    with connection(pipeline.endpoint, what="test") as conn:
        assert conn.cursor().execute("select 1").fetchone() == (1,)


def test_the_endpoint_keeps_secrets_out_of_repr() -> None:
    from dataclasses import replace

    endpoint = replace(emulator_endpoint(1), password="s3cret-pw", private_key_passphrase="s3cret-pp")
    assert "s3cret" not in repr(endpoint) and "s3cret" not in repr(model.WarehouseTarget(
        kind="snowflake", schema="x", password="s3cret-pw", private_key_passphrase="s3cret-pp"))


def test_a_failed_statement_does_not_wedge_the_session(pipeline: SnowflakeWarehousePipeline,
                                                       namespace: str) -> None:
    """Emulator patch 1 (docs/snowflake.md, E3): stock fakesnow 0.12.1 answers HTTP 500 from here on."""
    import snowflake.connector

    with connection(pipeline.endpoint, what="test") as conn:
        cur = conn.cursor()
        cur.execute("begin")
        with pytest.raises(snowflake.connector.errors.ProgrammingError):
            cur.execute(f"select no_such_column from {namespace}.stg_events")
        started = time.monotonic()
        assert cur.execute("select 1").fetchone() == (1,)
        assert time.monotonic() - started < 10  # no retry storm
