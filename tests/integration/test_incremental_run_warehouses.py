"""`pipeline-props run --dbt-mode incremental --warehouse duckdb` as a user runs it (a subprocess): HELD.

The merge strategy on a fixed arrival plan, DuckDB and Snowflake beside
Postgres: tests/integration/test_incremental_models.py; the property:
tests/properties/test_incremental_warehouses.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.slow  # 27-28 s in ci; the DuckDB k-batch property runs there
def test_cli_incremental_run_on_duckdb_holds(infrastructure: Any, tmp_path: Path) -> None:
    """`pipeline-props run --test data_quality_issues --dbt-mode incremental --batches 4 --warehouse duckdb`: HELD."""
    artifacts = tmp_path / "artifacts"
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("E2E_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline_props.cli", "run", "--test", "data_quality_issues",
         "--dbt-mode", "incremental", "--batches", "4", "--warehouse", "duckdb",
         "--record-count", "120", "--seed", "11", "--artifacts-dir", str(artifacts)],
        capture_output=True, text=True, env=env, timeout=1500, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "verdict: HELD" in proc.stdout
    for k in range(1, 5):
        assert f"batch {k}: " in proc.stdout
    assert proc.stdout.count("held against the oracle") == 4, proc.stdout[-3000:]
    (run,) = list(artifacts.iterdir())
    assert (run / "incremental_steps.json").exists()
