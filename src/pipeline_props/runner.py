"""The main job: one dataset through the pipeline under test and the oracle, checked and recorded.

``run_dataset`` starts or reuses the services, refuses bad input before
anything is sent, runs the four stages, compares every table with the DuckDB
oracle, runs the per-stage validators and writes the artifacts folder:

    artifacts/<run_id>/
        input/<file>                  the dataset exactly as ingested
        kafka_messages.jsonl          every message produced
        warehouse/<table>.csv         the pipeline's five tables
        expected/<table>.csv          the oracle's five tables
        divergence.txt, divergence.json   only when they differ
        validation_report.json        per-stage validator results
        performance_metrics.json      per component rows/s, CPU, memory, latency, bottlenecks
        report.html                   the page for people (pipeline_props.reports)
        metadata.json                 versions, redacted config, seed, run id
"""

from __future__ import annotations

import inspect
import json
import logging
import platform
import re
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pipeline_props.compare import Divergence, compare, write_table_csv
from pipeline_props.config import PipelineStageSettings, Settings
from pipeline_props.contract import INGESTION_AUDIT, OUTPUT_TABLES, REJECTED_ROWS
from pipeline_props.errors import PipelinePropsError, UsageError
from pipeline_props.pipeline.ingest import check_headers, count_topic_messages
from pipeline_props.protocol import (
    FullRefresh,
    IngestReport,
    PipelineUnderTest,
    StagedPipeline,
    TransformReport,
    missing_members,
    pipeline_name,
)

if TYPE_CHECKING:
    from pipeline_props.infra import InfrastructureManager
    from pipeline_props.oracles import OracleResult
    from pipeline_props.testing.arrivals import ArrivalPlan

log = logging.getLogger(__name__)

Progress = Callable[[str, str], None]  # (stage, "start" | "done")


@dataclass
class RunResult:
    """Outcome of one run. ``success`` is true when every table matched and every check held."""

    run_id: str
    namespace: str
    success: bool
    artifacts_dir: Path
    divergence: Divergence | None
    validation_summary: dict[str, Any]
    performance_metrics: dict[str, Any]
    audit: dict[str, int]
    schema_drift: list[tuple[str, str]] = field(default_factory=list)
    #: One summary per arrival batch (``--batches`` / ``--dbt-mode incremental``), else empty.
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if (self.divergence is not None and not self.divergence.ok) or not all(s["held"] for s in self.steps):
            return "DIVERGED"
        if not self.validation_summary.get("overall_passed", False):
            return "VALIDATION FAILED"
        return "HELD"


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus 6 hex digits."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "_" + uuid.uuid4().hex[:6]


def namespace_for(run_id: str) -> str:
    """Topic, checkpoint and schema name of a run (lower-case letters, digits, underscores)."""
    return "pp_" + re.sub(r"[^a-z0-9_]", "_", run_id.lower())


def versions() -> dict[str, str]:
    """Versions of the engines involved, for metadata.json."""
    out = {"python": platform.python_version()}
    for dist in ("pipeline-props", "pyspark", "duckdb", "dbt-core", "dbt-postgres", "dbt-duckdb",
                 "confluent-kafka", "psycopg", "hypothesis"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _audit_dict(tables: dict[str, list[tuple]]) -> dict[str, int]:
    rows = tables.get(INGESTION_AUDIT) or []
    cols = OUTPUT_TABLES[INGESTION_AUDIT]
    return dict(zip(cols, rows[0])) if rows else {}


def write_tableset(folder: Path, tables: dict[str, list[tuple]]) -> None:
    """One CSV per table (NULL as an unquoted empty field, empty text as "")."""
    folder.mkdir(parents=True, exist_ok=True)
    for table, rows in tables.items():
        write_table_csv(folder / f"{table}.csv", table, rows)


def scenario_thresholds(thresholds: PipelineStageSettings, scenario: str | None) -> PipelineStageSettings:
    """The data checks' thresholds for a generated ``scenario``: those left at their defaults widen to
    what the scenario injects by design (generator.SCENARIO_THRESHOLDS); those set by the user hold."""
    from pipeline_props.strategies.generator import SCENARIO_THRESHOLDS

    defaults = PipelineStageSettings()
    wanted = {k: v for k, v in SCENARIO_THRESHOLDS.get(scenario or "", {}).items()
              if getattr(thresholds, k) == getattr(defaults, k)}
    return replace(thresholds, **wanted)


def run_dataset(
    files: Sequence[tuple[str, bytes]],
    *,
    settings: Settings,
    infra: InfrastructureManager | None = None,
    pipeline: PipelineUnderTest | None = None,
    run_id: str | None = None,
    seed: int | None = None,
    scenario: str | None = None,
    keep: bool = False,
    progress: Progress | None = None,
) -> RunResult:
    """Run ``files`` through the pipeline and the oracle; write the artifacts; never raise on a divergence.

    Raises InputError (exit 2) for a refused file before anything is sent, and
    InfrastructureError when the services cannot run. A pipeline that offers
    only the five methods of :class:`~pipeline_props.testing.protocol.PipelineUnderTest`
    is run with ``wait_until_caught_up`` in place of the transform and model
    stages; the Kafka and Spark validators and per-stage timings are then
    skipped, and metadata.json's ``skipped`` says why.
    """
    from pipeline_props.perf.monitor import PerformanceMonitor
    from pipeline_props.perf.run_metrics import run_metrics
    from pipeline_props.validators import PipelineValidator

    monitor = PerformanceMonitor().start()  # samples CPU/RSS; stage windows come from step()
    step = monitor.track(progress)
    run_id = run_id or new_run_id()
    namespace = namespace_for(run_id)
    headers = check_headers(files)  # refuse before any service is touched
    plan = _arrival_plan(files, settings)
    out = Path(settings.run.artifacts_dir) / run_id
    _write_inputs(out / "input", files)

    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    oracle_future = _start_oracle(files if plan is None else plan.files, out / "expected", timings, step)

    owns_infra = infra is None
    if infra is None:
        infra = _start_services(settings, step)
    monitor.watch_services(infra)
    if pipeline is None:
        pipeline = _make_pipeline(infra, settings)

    success = False
    gaps = missing_members(pipeline, StagedPipeline)
    skipped = [] if not gaps else [
        f"skipped: per-stage timings, kafka_messages.jsonl and the kafka and spark validators: "
        f"pipeline {pipeline_name(pipeline)!r} offers no {', '.join(gaps)} (the StagedPipeline layer)"]
    try:
        pipeline.prepare(namespace)
        stats = _run_pipeline(pipeline, gaps, namespace, files, plan, out, step)
        step("export", "start")
        actual = pipeline.read_tables(namespace)
        step("export", "done")
        write_tableset(out / "warehouse", actual)

        oracle = oracle_future.result()
        divergence = compare(actual, oracle.tables)
        if not divergence.ok:
            (out / "divergence.txt").write_text(divergence.render(), encoding="utf-8")
            (out / "divergence.json").write_text(json.dumps(divergence.to_json(), indent=2),
                                                 encoding="utf-8")
        audit = _audit_dict(actual)
        validation_data = _validation_data(actual, pipeline, stats, namespace, infra)
        thresholds = scenario_thresholds(settings.pipeline_stages, scenario)
        summary = PipelineValidator(thresholds).validate_pipeline_run(run_id, validation_data)
        summary.write_json(out / "validation_report.json")
        summary_dict = summary.to_dict()

        if stats is not None and namespace in cast(StagedPipeline, pipeline).timings:
            timings.update(cast(StagedPipeline, pipeline).timings[namespace].seconds)
        timings["total"] = time.perf_counter() - t_all
        perf = run_metrics(monitor, run_id=run_id, namespace=namespace, pipeline=pipeline, infra=infra,
                           timings=timings, validation_data=validation_data)
        (out / "performance_metrics.json").write_text(json.dumps(perf, indent=2), encoding="utf-8")
        drift = [(h.source_file, c) for h in headers for c in h.extra_columns]
        _write_metadata(out, run_id=run_id, namespace=namespace, scenario=scenario, seed=seed, files=files,
                        pipeline=pipeline, settings=settings, thresholds=thresholds, drift=drift, skipped=skipped)
        _write_report(out)
        steps = _steps(out)
        success = divergence.ok and bool(summary_dict.get("overall_passed")) and all(s["held"] for s in steps)
        return RunResult(run_id=run_id, namespace=namespace, success=success, artifacts_dir=out,
                         divergence=divergence, validation_summary=summary_dict,
                         performance_metrics=perf, audit=audit, schema_drift=drift, steps=steps)
    finally:
        monitor.stop()
        keep_it = keep or settings.run.preserve_test_data or (not success and not settings.run.cleanup_on_failure)
        if not keep_it:
            try:
                pipeline.cleanup(namespace)
            except PipelinePropsError as exc:  # cleanup must not hide the run's own error
                log.warning("cleanup of %s failed: %s", namespace, exc)
        if owns_infra:
            infra.cleanup()


def _write_inputs(folder: Path, files: Sequence[tuple[str, bytes]]) -> None:
    """The dataset exactly as ingested; a name given twice in one dataset gets ``<stem>.<n><suffix>``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files:
        target = folder / name
        n = 1
        while target.exists():  # the same file twice in one dataset
            target = folder / f"{Path(name).stem}.{n}{Path(name).suffix}"
            n += 1
        target.write_bytes(data)


def _start_oracle(files: Sequence[tuple[str, bytes]], expected_dir: Path, timings: dict[str, float],
                  step: Progress) -> Future[OracleResult]:
    """The oracle over ``files`` in a thread of its own; its tables are written to ``expected_dir``.

    It runs beside the pipeline: DuckDB works outside the GIL, and the
    pipeline's stages mostly wait on Kafka, Spark and Postgres.
    """
    from pipeline_props.oracles import run_oracle

    def expected() -> OracleResult:
        t0 = time.perf_counter()
        result = run_oracle(files)  # with batches: the parts, as they arrive
        timings["oracle"] = time.perf_counter() - t0
        write_tableset(expected_dir, result.tables)
        step("oracle", "done")
        return result

    step("oracle", "start")
    oracle_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pp-oracle")
    oracle_future = oracle_pool.submit(expected)
    oracle_pool.shutdown(wait=False)
    return oracle_future


def _start_services(settings: Settings, step: Progress) -> InfrastructureManager:
    from pipeline_props.infra import InfrastructureManager

    step("services", "start")
    infra = InfrastructureManager(settings).start_services()
    infra.wait_for_readiness()
    step("services", "done")
    return infra


def _run_pipeline(pipeline: PipelineUnderTest, gaps: list[str], namespace: str,
                  files: Sequence[tuple[str, bytes]], plan: ArrivalPlan | None, out: Path,
                  step: Progress) -> tuple[IngestReport, TransformReport] | None:
    """The dataset through a prepared namespace: stage by stage for a StagedPipeline (its stats),
    else ``ingest`` and ``wait_until_caught_up`` (None). ``gaps``: the StagedPipeline members it lacks."""
    if gaps and plan is not None:
        raise UsageError(f"--batches/--dbt-mode incremental need the StagedPipeline layer; "
                         f"pipeline {pipeline_name(pipeline)!r} offers no {', '.join(gaps)}")
    if gaps:
        step("ingest", "start")
        pipeline.ingest(namespace, files)
        step("ingest", "done")
        step("wait", "start")
        pipeline.wait_until_caught_up(namespace)
        step("wait", "done")
        return None
    staged = cast(StagedPipeline, pipeline)
    if plan is None:
        return _run_stages(staged, namespace, files, out, step)
    return _run_batches(staged, namespace, plan, out, step)


def _validation_data(actual: dict[str, list[tuple]], pipeline: PipelineUnderTest,
                     stats: tuple[IngestReport, TransformReport] | None, namespace: str,
                     infra: InfrastructureManager) -> dict[str, Any]:
    """What the validators check: the warehouse tables, and with a staged run's ``stats`` every stage."""
    if stats is None:
        return {"warehouse": {"tables": actual}}
    istats, tstats = stats
    staged = cast(StagedPipeline, pipeline)
    staging = staged.staging_counts(namespace)
    return {
        "raw": {"files": istats.per_file},
        "kafka": {"messages_produced": istats.acked,
                  "messages_in_topic": count_topic_messages(infra.kafka_bootstrap, namespace),
                  "rows_read": istats.records, "partitions": staged.partitions},
        "spark": {"rows_in": tstats.rows,
                  "rows_valid": staging["stg_events"], "rows_rejected": staging["stg_rejects"],
                  "batches": tstats.batches},
        "warehouse": {"tables": actual,
                      "staging_rows": staging["stg_events"] + staging["stg_rejects"]},
    }


def _write_metadata(out: Path, *, run_id: str, namespace: str, scenario: str | None, seed: int | None,
                    files: Sequence[tuple[str, bytes]], pipeline: PipelineUnderTest, settings: Settings,
                    thresholds: PipelineStageSettings, drift: list[tuple[str, str]], skipped: list[str]) -> None:
    """metadata.json: the run's identity, inputs, versions, redacted configuration, thresholds, drift."""
    meta = {
        "run_id": run_id, "namespace": namespace, "scenario": scenario, "seed": seed,
        "files": [{"name": n, "bytes": len(d)} for n, d in files],
        "approx_lines": sum(data.count(b"\n") for _, data in files),
        "pipeline": getattr(pipeline, "name", type(pipeline).__name__),
        "versions": versions(), "config": settings.redacted(),
        "thresholds": {k: getattr(thresholds, k) for k in PipelineStageSettings.__dataclass_fields__},
        "schema_drift": drift, "skipped": skipped,
        "created_at": datetime.now(timezone.utc).isoformat(),
    }
    (out / "metadata.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")


def _run_stages(pipeline: StagedPipeline, namespace: str, files: Sequence[tuple[str, bytes]], out: Path,
                step: Progress) -> tuple[IngestReport, TransformReport]:
    """ingest (messages into kafka_messages.jsonl), transform and model.

    A pipeline with ``begin_transform`` (the reference pipeline) starts its
    transform before ingest, so the two overlap; ``transform`` then waits for it.
    """
    begin = getattr(pipeline, "begin_transform", None)
    if callable(begin):
        # the size lets the reference pipeline pick its trigger; a team's own
        # begin_transform(namespace) need not take it
        sized = "input_bytes" in inspect.signature(begin).parameters
        begin(namespace, **({"input_bytes": sum(len(data) for _, data in files)} if sized else {}))
    step("ingest", "start")
    with open(out / "kafka_messages.jsonl", "w", encoding="utf-8") as messages:
        pipeline.messages_out = messages
        try:
            istats = pipeline.ingest(namespace, files)
        except BaseException:
            stop = getattr(pipeline, "stop_transform", None)
            if callable(stop):
                stop(namespace)
            raise
        finally:
            pipeline.messages_out = None
    step("ingest", "done")
    step("transform", "start")
    tstats = pipeline.transform(namespace)
    step("transform", "done")
    step("model", "start")
    pipeline.model(namespace)
    step("model", "done")
    return istats, tstats



def _arrival_plan(files: Sequence[tuple[str, bytes]], settings: Settings) -> ArrivalPlan | None:
    """The dataset's ``run.batches`` arrival batches (records dealt round robin), None for one batch, full mode."""
    if settings.run.batches <= 1 and settings.run.dbt_mode == "full":
        return None
    from pipeline_props.testing.arrivals import plan_arrivals

    return plan_arrivals(files, [0], settings.run.batches)


def _make_pipeline(infra: InfrastructureManager, settings: Settings) -> PipelineUnderTest:
    """The shipped pipeline for the settings' warehouse and dbt mode."""
    from pipeline_props.pipeline.factory import make_incremental_pipeline, make_pipeline

    if settings.run.dbt_mode == "full":
        return make_pipeline(infra, settings.run.warehouse)
    return make_incremental_pipeline(infra, settings.run.warehouse)


def _run_batches(pipeline: StagedPipeline, namespace: str, plan: ArrivalPlan, out: Path,
                 step: Progress) -> tuple[IngestReport, TransformReport]:
    """Every batch through the stages, the tables compared with the oracle after each (incremental_steps.json)."""
    from pipeline_props.testing.arrivals import run_stages_in_batches

    for k, batch in enumerate(plan.batches):
        for name, data in batch:
            target = out / "batches" / f"{k + 1}" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    with open(out / "kafka_messages.jsonl", "w", encoding="utf-8") as messages:
        pipeline.messages_out = messages
        try:
            istats, tstats, _, steps = run_stages_in_batches(pipeline, namespace, plan, progress=step)
        finally:
            pipeline.messages_out = None
    doc = {"dbt_mode": "incremental" if isinstance(pipeline, FullRefresh) else "full",
           "steps": [s.summary() for s in steps]}
    (out / "incremental_steps.json").write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    return istats, tstats


def _steps(out: Path) -> list[dict[str, Any]]:
    """The per-batch summaries _run_batches wrote (none for a run in one batch)."""
    path = out / "incremental_steps.json"
    return json.loads(path.read_text(encoding="utf-8"))["steps"] if path.is_file() else []


def rejected_by_reason(tables: dict[str, list[tuple]]) -> dict[str, int]:
    """Count rejected_rows per reason (for summaries)."""
    idx = OUTPUT_TABLES[REJECTED_ROWS].index("reason")
    counts: dict[str, int] = {}
    for row in tables.get(REJECTED_ROWS, []):
        counts[row[idx]] = counts.get(row[idx], 0) + 1
    return counts


def _write_report(run_dir: Path) -> Path | None:
    """Write report.html for a finished run; log (never raise) when it cannot."""
    try:
        from pipeline_props.reports.html import write_report

        return write_report(run_dir)
    except Exception:  # noqa: BLE001 - the report must never fail a run
        log.exception("report.html of %s could not be written", run_dir)
        return None
