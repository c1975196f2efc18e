"""The shared streaming query: exactly once across crashes, routing, bounded waits, compiled marts.

Each test runs its own SharedStream (the session's one must not be crashed)
on the real services.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pipeline_props import contract as C
from pipeline_props.compare import compare
from pipeline_props.errors import PipelineStageError
from pipeline_props.oracles import run_oracle
from pipeline_props.pipeline import ingest, model, staging
from pipeline_props.pipeline.compiled import CompiledProject
from pipeline_props.pipeline.reference import ReferencePipeline, postgres_target
from pipeline_props.pipeline.stream import SharedStream, StreamSettings
from pipeline_props.testing.runs import fresh_namespace

pytestmark = pytest.mark.integration

HEADER = ",".join(C.COLUMNS).encode()


def _files(*rows: str) -> list[tuple[str, bytes]]:
    return [("sales.csv", HEADER + b"\n" + "\n".join(rows).encode() + b"\n")]


FIRST = _files("e1,o1,c1,p1,toys,NA,online,2,10.00,,USD,2024-01-01T10:00:00Z",
               "e2,o1,c1,p2,books,EMEA,store,-1,5.50,0.1,EUR,2024-01-01T23:30:00-02:00",
               "e3,o2,c2,p1,toys,NA,online,x,1.00,,USD,2024-01-02T00:00:00Z",
               "e1,o1,c1,p1,toys,NA,online,2,10.00,,USD,2024-01-01T10:00:00Z")
SECOND = _files("e9,o9,c9,p9,food,APAC,mobile,1,1.00,,JPY,2024-02-29T12:00:00Z")


@pytest.fixture
def stream(infrastructure: Any) -> Iterator[SharedStream]:
    s = SharedStream.from_infra(infrastructure, StreamSettings(wait_timeout_s=60.0)).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def pipeline(infrastructure: Any, stream: SharedStream) -> ReferencePipeline:
    return ReferencePipeline(infrastructure, partitions=2, stream=stream, model_mode="compiled")


def _through(pipeline: ReferencePipeline, files: list[tuple[str, bytes]]) -> tuple[str, dict]:
    namespace = fresh_namespace()
    pipeline.prepare(namespace)
    pipeline.ingest(namespace, files)
    pipeline.wait_until_caught_up(namespace)
    return namespace, pipeline.read_tables(namespace)


def _assert_equals_oracle(tables: dict, files: list[tuple[str, bytes]]) -> None:
    divergence = compare(tables, run_oracle(files).tables)
    assert divergence.ok, divergence.render()


def test_a_crash_after_the_commit_replays_nothing_and_the_stream_goes_on(
        pipeline: ReferencePipeline, stream: SharedStream) -> None:
    crashed: list[int] = []

    def crash_once(batch_id: int) -> None:
        if not crashed:
            crashed.append(batch_id)
            raise RuntimeError("simulated driver crash after the warehouse COMMIT")

    stream.set_after_commit(crash_once)
    first, tables = _through(pipeline, FIRST)  # committed, then the query died
    _assert_equals_oracle(tables, FIRST)
    second, tables2 = _through(pipeline, SECOND)  # prepare restarted it: the batch replays
    _assert_equals_oracle(tables2, SECOND)
    stats = stream.stats()
    assert crashed and stats["restarts"] == 1 and stats["skipped"] >= 1, stats
    pipeline.model(first)
    _assert_equals_oracle(pipeline.read_tables(first), FIRST)  # nothing written twice
    for ns in (first, second):
        pipeline.cleanup(ns)


def test_a_failed_write_is_a_clear_error_and_the_restart_writes_the_batch(
        pipeline: ReferencePipeline, stream: SharedStream, monkeypatch: pytest.MonkeyPatch) -> None:
    original = staging.insert_rows
    failed: list[bool] = []

    def insert_rows(*args: Any, **kwargs: Any) -> None:
        if not failed:
            failed.append(True)
            raise PipelineStageError("staging", "simulated failure before the COMMIT")
        original(*args, **kwargs)

    monkeypatch.setattr(staging, "insert_rows", insert_rows)
    namespace = fresh_namespace()
    pipeline.prepare(namespace)
    pipeline.ingest(namespace, FIRST)
    with pytest.raises(PipelineStageError, match="shared streaming query stopped"):
        pipeline.transform(namespace)
    assert stream.ensure_running()
    pipeline.wait_until_caught_up(namespace)
    _assert_equals_oracle(pipeline.read_tables(namespace), FIRST)
    pipeline.cleanup(namespace)


def test_rows_of_an_unknown_namespace_are_filed_as_unrouted(infrastructure: Any, stream: SharedStream) -> None:
    topic = stream.topic(2)
    ingest.ingest_files(FIRST, bootstrap_servers=infrastructure.kafka_bootstrap, topic=topic, run_id="ghost",
                        headers=stream.message_headers("pp_never_registered"))
    stream.wait_for(stream.end_offsets(topic))
    with psycopg.connect(infrastructure.postgres_dsn) as conn:
        rows = conn.execute(sql.SQL("SELECT namespace, reason FROM {}.unrouted").format(
            sql.Identifier(stream.ledger_schema))).fetchall()
    assert len(rows) == 4 and {r[0] for r in rows} == {"pp_never_registered"}
    assert "not registered" in rows[0][1]
    assert stream.stats()["unrouted"] == 4


def test_every_wait_is_bounded(stream: SharedStream) -> None:
    topic = stream.topic(2)
    with pytest.raises(PipelineStageError, match="did not commit the data within 1 s"):
        stream.wait_for({(topic, 0): 10**9}, timeout=1.0)
    stream.stop(drop=False)
    with pytest.raises(PipelineStageError, match="not running"):
        stream.wait_for({(topic, 0): 10**9}, timeout=5.0)


def test_a_model_that_fails_is_named(infrastructure: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "dbt"
    shutil.copytree(model.dbt_project_dir(), project, ignore=shutil.ignore_patterns("target", "logs"))
    path = project / "models" / "marts" / "product_performance.sql"
    path.write_text(path.read_text().replace("units_returned,\n    net_revenue_usd", "units_returned / 0 AS boom,\n"
                                             "    net_revenue_usd"), encoding="utf-8")
    monkeypatch.setenv(model.DBT_DIR_ENV, str(project))
    schema = fresh_namespace("pp_cfail")
    target = postgres_target(infrastructure, schema)
    compiled = CompiledProject.compile(target)
    staging.create_staging(infrastructure.postgres_dsn, schema)
    try:
        with psycopg.connect(infrastructure.postgres_dsn) as conn:
            conn.execute(sql.SQL("INSERT INTO {}.stg_events VALUES (0, 's.csv', 1, 'e1', 'o1', 'c1', 'p1', 'toys',"
                                 " 'NA', 'online', 1, 1.00, 0, 'USD', '2024-01-01T00:00:00Z', 'raw')").format(
                sql.Identifier(schema)))
        with pytest.raises(PipelineStageError, match="model product_performance failed: division by zero"):
            compiled.run(infrastructure.postgres_dsn, schema)
    finally:
        staging.drop_schema(infrastructure.postgres_dsn, schema)


def test_a_model_that_does_not_compile_is_a_clear_error(infrastructure: Any, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "dbt"
    shutil.copytree(model.dbt_project_dir(), project, ignore=shutil.ignore_patterns("target", "logs"))
    path = project / "models" / "marts" / "daily_sales.sql"
    path.write_text(path.read_text() + "\n{{ ref('no_such_model') }}\n", encoding="utf-8")
    monkeypatch.setenv(model.DBT_DIR_ENV, str(project))
    with pytest.raises(PipelineStageError, match="daily_sales|no_such_model"):
        CompiledProject.compile(postgres_target(infrastructure, "pp_ignored"))
