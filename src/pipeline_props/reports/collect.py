"""What report.html shows, read from a run's folder (and the artifacts root beside it), and its verdict."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline_props import contract


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_table(run_dir: Path, table: str) -> list[tuple] | None:
    from pipeline_props.compare import read_table_csv
    from pipeline_props.errors import PipelinePropsError

    for sub in ("warehouse", "expected"):
        path = run_dir / sub / f"{table}.csv"
        if path.exists():
            try:
                return read_table_csv(path, table)
            except PipelinePropsError:
                return None
    return None


def collect(run_dir: Path) -> dict[str, Any]:
    """Everything the page shows, read from ``run_dir`` (and the artifacts root beside it)."""
    run_dir = Path(run_dir)
    root = run_dir.parent
    data: dict[str, Any] = {
        "run_dir": str(run_dir),
        "metadata": _load_json(run_dir / "metadata.json") or {},
        "validation": _load_json(run_dir / "validation_report.json"),
        "perf": _load_json(run_dir / "performance_metrics.json") or {},
        "divergence": _load_json(run_dir / "divergence.json"),
        "scaling": _load_json(run_dir / "scaling.json") or _load_json(root / "scaling" / "latest.json"),
        "bench": _load_json(run_dir / "bench_compare.json") or _load_json(root / "bench" / "latest_compare.json"),
        # this folder's own comparison (a `bench --compare` run), not the latest one beside it
        "bench_here": _load_json(run_dir / "bench_compare.json"),
        "bench_run": _load_json(run_dir / "bench_run.json"),
        "faults": _load_json(run_dir / "fault_report.json"),
        "steps": _load_json(run_dir / "incremental_steps.json"),
    }
    audit_rows = _read_table(run_dir, contract.INGESTION_AUDIT)
    cols = contract.OUTPUT_TABLES[contract.INGESTION_AUDIT]
    data["audit"] = dict(zip(cols, audit_rows[0])) if audit_rows else {}
    rejected = _read_table(run_dir, contract.REJECTED_ROWS)
    reasons: dict[str, int] = {}
    if rejected is not None:
        idx = contract.OUTPUT_TABLES[contract.REJECTED_ROWS].index("reason")
        for row in rejected:
            reasons[str(row[idx])] = reasons.get(str(row[idx]), 0) + 1
    elif data["audit"]:
        for reason in contract.REASONS:
            n = data["audit"].get(f"rejected_{reason.lower()}")
            if n:
                reasons[reason] = int(n)
    data["reasons"] = reasons
    return data


def verdict_of(data: Mapping[str, Any]) -> str:
    """The page's verdict.

    A pipeline run: HELD, DIVERGED, VALIDATION FAILED or INCOMPLETE (as the
    runner decides it). A fault run (``errors``): RECOVERED or FAULTS FAILED.
    A benchmark run (``bench``): NO REGRESSION or REGRESSED, or BENCHMARKED
    without a comparison.
    """
    div = data.get("divergence")
    if div is not None and not div.get("ok", False):
        return "DIVERGED"
    val = data.get("validation")
    if val is not None:
        return "HELD" if val.get("overall_passed") else "VALIDATION FAILED"
    faults = data.get("faults")
    if faults is not None:
        return "RECOVERED" if faults.get("passed") else "FAULTS FAILED"
    if data.get("bench_here") is not None:
        return "REGRESSED" if data["bench_here"].get("failed") else "NO REGRESSION"
    if data.get("bench_run") is not None:
        return "BENCHMARKED"
    return "INCOMPLETE"
