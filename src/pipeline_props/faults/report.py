"""The fault run's machine-readable report, ``fault_report.json`` (the HTML one is reports/html.py)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from pipeline_props.faults.registry import FAULT_SCENARIOS
from pipeline_props.faults.runner import ScenarioResult


def write_fault_report(results: list[ScenarioResult], folder: Path) -> Path:
    """Write ``fault_report.json`` into ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fault_report.json"
    payload = {
        "passed": all(r.passed for r in results),
        "scenarios": [{**asdict(r), "passed": r.passed,
                       "description": FAULT_SCENARIOS[r.name].description if r.name in FAULT_SCENARIOS else ""}
                      for r in results],
    }
    path.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return path


__all__ = ["write_fault_report"]
