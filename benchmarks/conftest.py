"""Benchmark wiring: engine versions in pytest-benchmark's machine info.

The service fixtures (``infrastructure``, ``spark``) come from the
pipeline-props pytest plugin, as in tests/.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest


def _java_version() -> str:
    java = shutil.which("java")
    if java is None:
        return "not found"
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = (out.stderr or out.stdout).splitlines()
    return lines[0].strip() if lines else "unknown"


def _jar_sets() -> dict[str, str]:
    from pipeline_props.config import load_settings
    from pipeline_props.infra.jars import _POMS, cache_dir

    try:
        home = load_settings().infrastructure.home
        return {kind: cache_dir(home, kind).name for kind in _POMS}
    except Exception as exc:  # a bad config must not break the benchmark report
        return {"error": str(exc)}


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Add the engines the figures depend on: Python packages, librdkafka, the JVM, the jar sets."""
    import confluent_kafka

    from pipeline_props.runner import versions

    engines: dict[str, Any] = dict(versions())
    engines["librdkafka"] = confluent_kafka.libversion()[0]
    engines["java"] = _java_version()
    engines["jar_sets"] = _jar_sets()
    machine_info["pipeline_props_engines"] = engines
