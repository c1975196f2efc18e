"""Throughput of the reference pipeline, per stage and end to end, on warm services.

Run with (your own home and ports, see the working agreement):

    .venv/bin/pytest benchmarks/test_bench_pipeline.py --benchmark-only \
        --benchmark-json=artifacts/bench_pipeline.json
    PP_BENCH_1M=1 .venv/bin/pytest benchmarks/test_bench_pipeline.py --benchmark-only   # adds 1M rows

The services start once per session (the plugin's ``infrastructure``
fixture) and one SparkSession serves every round; a 10,000-row warm-up run
goes through every stage first, so the figures exclude JVM start-up and
first-query compilation. Each round uses a fresh namespace (topic,
checkpoint, schema). The benchmark's own time is the end-to-end wall time;
the per-stage figures are in ``extra_info``:

* ``ingest``: read CSV, encode, produce, flush until every message is acked;
* ``transform``: the Spark query (availableNow) including the staging sink,
  split into ``spark_collect`` (the Spark job that parses, validates and
  hands Arrow batches to the driver) and ``postgres_load`` (COPY into temp
  tables and INSERT .. ON CONFLICT into staging, one transaction per batch);
  ``spark_progress_ms`` sums the query's progress durations per phase;
* ``model``: dbt build of the marts (with its data tests);
* ``export``: reading the five tables back.

Targets (for 1M rows): end to end >= 50k rows/s, producer >= 100k rows/s,
Spark transform >= 100k rows/s, Postgres load >= 200k rows/s, dbt build <= 10 s.
They are reported, not asserted: this is a measurement, not a timed test.
``test_example_latency`` times a full-tier property example instead: ten
~200-row datasets, fixed-schema mode, median (target <= 3 s).

Measured 2026-11-24 (2 cores shared with other agents, load average 5-13
during the run, so wall figures are 2-4x an idle machine's; CPU figures hold):

=========  ========  ==========================================================
rows       e2e       per stage (wall; CPU of the busiest process)
=========  ========  ==========================================================
1,000,000  151 s     ingest 33 s (Python 15.2 s), transform 90 s (Spark JVM
           6.6k/s    40 s = 40 us/row; Postgres load 26.9 s, PG 14.3 s),
                     dbt 27 s (PG 14.2 s), export 0.6 s
100,000    49.6 s    ingest 3.6 s (Python 1.5 s), transform 33 s (JVM 13.3 s,
           2.0k/s    JIT still compiling after the 10k warm-up), dbt 11.8 s
10,000     20.8 s    transform 9.5 s (JVM 4.3 s), dbt 9.8 s
200 (x10)  5.6 s     median; ingest 0.01 s, transform 3.0 s, dbt 2.6 s
=========  ========  ==========================================================

Before this round (same benchmark, load 2-5): 100k end to end 27.5 s, Spark
JVM 15.6 s CPU; a 200-row example 5.3 s median (ingest 0.5 s, transform
3.2 s, dbt 1.6 s) at load 4.
After the rounds the best round's tables are compared with the oracle, so a
figure never comes from a wrong pipeline.

This machine is shared, so wall-clock figures mostly measure the other
processes when it is loaded. ``cpu_seconds`` therefore records, per stage,
the CPU time of each process involved (this Python process, the Spark JVM,
the Postgres cluster, the Kafka broker): ``cpu_rows_per_s`` divides by the
busiest one, the stage's bottleneck on an idle machine.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import psutil
import pyarrow as pa
import pytest

from pipeline_props.compare import compare
from pipeline_props.infra import InfrastructureManager
from pipeline_props.oracles import run_oracle
from pipeline_props.pipeline import streaming_query
from pipeline_props.pipeline.reference import ReferencePipeline
from pipeline_props.pipeline.staging import StagingSink
from pipeline_props.strategies import DataGenerationConfig, DataGenerator

pytestmark = pytest.mark.integration

SIZES = [10_000, 100_000, pytest.param(
    1_000_000, marks=pytest.mark.skipif(os.environ.get("PP_BENCH_1M") != "1",
                                        reason="1M rows takes long here: set PP_BENCH_1M=1"))]
ROUNDS = {10_000: 2, 100_000: 1, 1_000_000: 1}
TARGETS = {"e2e_rows_per_s": 50_000, "ingest_rows_per_s": 100_000, "transform_rows_per_s": 100_000,
           "postgres_load_rows_per_s": 200_000, "model_seconds_max": 10.0}
#: Optional overrides for experiments: partitions and maxOffsetsPerTrigger.
PARTITIONS = int(os.environ["PP_BENCH_PARTITIONS"]) if os.environ.get("PP_BENCH_PARTITIONS") else None
MAX_OFFSETS = int(os.environ["PP_BENCH_MAX_OFFSETS"]) if os.environ.get("PP_BENCH_MAX_OFFSETS") else None


class TimedSink(StagingSink):
    """StagingSink that also times its two halves: the Spark job (collect) and the Postgres load."""

    def __init__(self, dsn: str, schema: str) -> None:
        super().__init__(dsn, schema)
        self.collect_seconds = 0.0
        self.load_seconds = 0.0
        self.rows = 0

    def _collect(self, batch_df: Any) -> tuple[pa.Table, pa.Table]:  # type: ignore[override]
        started = time.perf_counter()
        valid, rejects = super()._collect(batch_df)
        self.collect_seconds += time.perf_counter() - started
        self.rows += valid.num_rows + rejects.num_rows
        return valid, rejects

    def _write(self, batch_id: int, valid: pa.Table, rejects: pa.Table) -> bool:
        started = time.perf_counter()
        try:
            return super()._write(batch_id, valid, rejects)
        finally:
            self.load_seconds += time.perf_counter() - started


@dataclass
class Round:
    """Seconds per stage of one round, CPU per process per stage, and what the Spark query reported."""

    namespace: str
    seconds: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)
    batches: int = 0
    progress_ms: dict[str, int] = field(default_factory=dict)


def _tree_cpu(pid: int | None) -> float:
    """CPU seconds of a process, its live descendants and its reaped children (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        proc = psutil.Process(pid)
        t = proc.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in proc.children(recursive=True):
            try:
                c = child.cpu_times()
                total += c.user + c.system
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return 0.0


def _cpu_snapshot(infra: InfrastructureManager) -> dict[str, float]:
    """Cumulative CPU seconds: this process (Python), its child processes (the Spark JVM), Postgres, Kafka."""
    services = {"postgres": infra.postgres.pid if infra.postgres else None,
                "kafka": infra.kafka.pid if infra.kafka else None}
    skip: set[int] = set()
    for pid in services.values():
        if pid is not None:
            try:
                proc = psutil.Process(pid)
                skip |= {pid, *(c.pid for c in proc.children(recursive=True))}
            except psutil.Error:
                pass
    me = psutil.Process()
    t = me.cpu_times()
    jvm = 0.0  # every other descendant (the services are ours too when this session started them)
    for child in me.children(recursive=True):
        if child.pid in skip:
            continue
        try:
            c = child.cpu_times()
            jvm += c.user + c.system
        except psutil.Error:
            pass
    return {"python": t.user + t.system, "spark_jvm": jvm,
            **{name: _tree_cpu(pid) for name, pid in services.items()}}


class _Stage:
    """Context manager recording one stage's CPU per process into a Round."""

    def __init__(self, result: Round, infra: InfrastructureManager, name: str) -> None:
        self.result, self.infra, self.name = result, infra, name

    def __enter__(self) -> None:
        self.before = _cpu_snapshot(self.infra)

    def __exit__(self, *exc: object) -> None:
        after = _cpu_snapshot(self.infra)
        self.result.cpu[self.name] = {k: round(after[k] - self.before[k], 3) for k in after}


def _dataset(rows: int) -> list[tuple[str, bytes]]:
    gen = DataGenerator(DataGenerationConfig(seed=2024))
    return list(gen.generate_test_scenario_data("performance_benchmark", rows).files)


def run_round(pipeline: ReferencePipeline, namespace: str, files: list[tuple[str, bytes]]) -> Round:
    """One dataset through every stage of ``pipeline`` in ``namespace`` (already prepared), timed."""
    result = Round(namespace)
    t_all = time.perf_counter()

    infra = pipeline.infra
    with _Stage(result, infra, "ingest"):
        istats = pipeline.ingest(namespace, files)
    result.seconds["ingest"] = istats.seconds

    sink = TimedSink(infra.postgres_dsn, namespace)
    with _Stage(result, infra, "transform"):
        started = time.monotonic()
        query = streaming_query.start_stream(
            infra.spark, bootstrap_servers=infra.kafka_bootstrap, topic=namespace,
            checkpoint_dir=str(pipeline.checkpoint_dir(namespace)), sink=sink,
            max_offsets_per_trigger=pipeline.max_offsets_per_trigger)
        tstats = streaming_query.await_query(query, started)
    assert tstats.rows == istats.records, (tstats, istats.records)
    result.seconds["transform"] = tstats.seconds
    result.seconds["spark_collect"] = sink.collect_seconds
    result.seconds["postgres_load"] = sink.load_seconds
    result.batches = tstats.batches
    for progress in query.recentProgress:
        for phase, ms in (progress.durationMs or {}).items():
            result.progress_ms[phase] = result.progress_ms.get(phase, 0) + int(ms)

    with _Stage(result, infra, "model"):
        result.seconds["model"] = pipeline.model(namespace).seconds
    started_export = time.perf_counter()
    with _Stage(result, infra, "export"):
        pipeline.read_tables(namespace)
    result.seconds["export"] = time.perf_counter() - started_export
    result.seconds["e2e"] = time.perf_counter() - t_all
    return result


@pytest.fixture(scope="session")
def warm_pipeline(infrastructure: InfrastructureManager) -> ReferencePipeline:
    """The pipeline on warm services: one SparkSession, a 10,000-row run already done (JIT warm)."""
    pipeline = ReferencePipeline(infrastructure, partitions=PARTITIONS, max_offsets_per_trigger=MAX_OFFSETS)
    namespace = f"pp_bench_warm_{uuid.uuid4().hex[:6]}"
    pipeline.prepare(namespace)
    try:
        run_round(pipeline, namespace, _dataset(10_000))
    finally:
        pipeline.cleanup(namespace)
    return pipeline


def _rate(rows: int, seconds: float) -> float | None:
    return round(rows / seconds) if seconds > 0 else None


@pytest.mark.parametrize("rows", SIZES)
def test_pipeline_throughput(benchmark: Any, warm_pipeline: ReferencePipeline, rows: int) -> None:
    pipeline = warm_pipeline
    files = _dataset(rows)
    rounds: list[Round] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        namespace = f"pp_bench_{rows}_{uuid.uuid4().hex[:6]}"
        pipeline.prepare(namespace)
        return (namespace,), {}

    def one_round(namespace: str) -> None:
        rounds.append(run_round(pipeline, namespace, files))

    try:
        benchmark.pedantic(one_round, setup=setup, rounds=ROUNDS[rows], iterations=1)
        best = min(rounds, key=lambda r: r.seconds["e2e"])
        _record(benchmark.extra_info, pipeline, rows, best, rounds)
        divergence = compare(pipeline.read_tables(best.namespace), run_oracle(files).tables)
        assert divergence.ok, divergence.render(max_rows=5)
    finally:
        for r in rounds:
            pipeline.cleanup(r.namespace)


def _record(info: dict[str, Any], pipeline: ReferencePipeline, rows: int, best: Round,
            rounds: list[Round]) -> None:
    """The best round's figures (recorded before the oracle check, which then must pass)."""
    info["rows"] = rows
    info["partitions"] = pipeline.partitions
    info["max_offsets_per_trigger"] = pipeline.max_offsets_per_trigger
    info["seconds"] = {k: round(v, 3) for k, v in best.seconds.items()}
    info["rows_per_s"] = {k: _rate(rows, v) for k, v in best.seconds.items() if k != "model"}
    info["cpu_seconds"] = best.cpu
    info["cpu_rows_per_s"] = {stage: _rate(rows, max(cpu.values())) for stage, cpu in best.cpu.items()}
    info["batches"] = best.batches
    info["spark_progress_ms"] = best.progress_ms
    info["targets"] = TARGETS
    info["all_rounds_e2e_seconds"] = [round(r.seconds["e2e"], 3) for r in rounds]


#: Rows per dataset and datasets for the per-example latency (a full-tier property example's path).
EXAMPLE_ROWS = 200
EXAMPLES = 10


def test_example_latency(benchmark: Any, infrastructure: InfrastructureManager) -> None:
    """Wall time of one ~200-row dataset through every stage, as a full-tier property example runs it.

    Fixed-schema mode (``ReferencePipeline(schema=...)``: staging emptied per
    example, dbt's parsed manifest reused), fresh topic and checkpoint per
    example, services and SparkSession warm (two examples run first). The
    figure is the median of ten examples (target <= 3 s); per-stage medians
    are in ``extra_info``.
    """
    pipeline = ReferencePipeline(infrastructure, partitions=2, schema="pp_bench_examples")
    gen = DataGenerator(DataGenerationConfig(seed=7, error_rate=0.1))
    datasets = [list(DataGenerator(DataGenerationConfig(seed=100 + i, error_rate=0.1))
                     .generate_test_scenario_data("performance_benchmark", EXAMPLE_ROWS).files)
                for i in range(EXAMPLES)]
    stages: list[dict[str, float]] = []

    def one_example(files: list[tuple[str, bytes]]) -> None:
        namespace = f"pp_bench_ex_{uuid.uuid4().hex[:8]}"
        pipeline.prepare(namespace)
        try:
            pipeline.ingest(namespace, files)
            pipeline.wait_until_caught_up(namespace)
            pipeline.read_tables(namespace)
            stages.append(dict(pipeline.timings[namespace].seconds))
        finally:
            pipeline.cleanup(namespace)

    try:
        for _ in range(2):  # warm-up: JIT, dbt manifest, producer
            one_example(list(gen.generate_test_scenario_data("performance_benchmark", EXAMPLE_ROWS).files))
        stages.clear()
        queue = iter(datasets)
        benchmark.pedantic(lambda: one_example(next(queue)), rounds=EXAMPLES, iterations=1)
        files = datasets[-1]
        namespace = f"pp_bench_ex_{uuid.uuid4().hex[:8]}"
        pipeline.prepare(namespace)
        try:  # the figure must come from a correct pipeline
            pipeline.ingest(namespace, files)
            pipeline.wait_until_caught_up(namespace)
            divergence = compare(pipeline.read_tables(namespace), run_oracle(files).tables)
            assert divergence.ok, divergence.render(max_rows=5)
        finally:
            pipeline.cleanup(namespace)
    finally:
        infrastructure.drop_schema("pp_bench_examples")
    info = benchmark.extra_info
    info["rows"] = EXAMPLE_ROWS
    info["target_seconds_max"] = 3.0
    info["median_seconds_per_stage"] = {k: round(statistics.median(s.get(k, 0.0) for s in stages), 3)
                                        for k in stages[0]}
