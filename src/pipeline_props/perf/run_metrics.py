"""performance_metrics.json of one run: what :func:`pipeline_props.runner.run_dataset` records."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pipeline_props.perf.monitor import PerformanceMonitor

log = logging.getLogger(__name__)

__all__ = ["run_metrics"]


def run_metrics(
    monitor: PerformanceMonitor,
    *,
    run_id: str,
    namespace: str,
    pipeline: Any,
    infra: Any,
    timings: Mapping[str, float],
    validation_data: Mapping[str, Any],
) -> dict[str, Any]:
    """performance_metrics.json of one run of :func:`pipeline_props.runner.run_dataset`.

    Measures the latency while the namespace still exists (call it before
    cleanup). Never raises: on an unexpected error it logs and returns the
    per-stage seconds alone, so a measurement problem cannot fail a run.
    """
    kafka = validation_data.get("kafka", {})
    spark = validation_data.get("spark", {})
    rows_read = int(kafka.get("rows_read") or 0)
    staged = (spark.get("rows_valid") or 0) + (spark.get("rows_rejected") or 0)
    counts = {"rows_read": rows_read, "messages_produced": kafka.get("messages_produced"),
              "messages_in_topic": kafka.get("messages_in_topic"), "spark_rows_in": spark.get("rows_in"),
              "spark_batches": spark.get("batches"), "staged_rows": staged,
              "staged_valid": spark.get("rows_valid"), "staged_rejected": spark.get("rows_rejected")}
    rows = {"producer": rows_read, "broker": kafka.get("messages_in_topic"), "spark": spark.get("rows_in"),
            "postgres": staged, "dbt": staged, "oracle": rows_read}
    try:
        checkpoint = getattr(pipeline, "checkpoint_dir", None)
        latency = monitor.measure_latency(
            bootstrap_servers=infra.kafka_bootstrap, topic=namespace, dsn=infra.postgres_dsn, schema=namespace,
            checkpoint_dir=checkpoint(namespace) if callable(checkpoint) else None)
        return monitor.pipeline_report(run_id=run_id, rows=rows, stage_seconds=timings, latency=latency,
                                       counts=counts)
    except Exception:  # noqa: BLE001 - performance figures must never fail a run
        log.exception("performance metrics of %s could not be computed", run_id)
        return {"run_id": run_id, "rows_read": rows_read, "counts": counts,
                "stages": {stage: {"seconds": round(sec, 4),
                                   "rows_per_s": round(rows_read / sec, 1) if sec > 0 and rows_read else None}
                           for stage, sec in timings.items()}}


