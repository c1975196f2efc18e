"""`replay`, `bench` and `errors` as a user runs them: results and the log's path on the terminal, the rest in the log.

Each command runs in a subprocess, as a user would: Spark's JVM inherits file
descriptors 1 and 2, so only a separate process shows what reaches the
terminal. The log is ``<artifacts>/replay_<time>/logs/``,
``<artifacts>/bench/run_<time>/logs/`` or ``<artifacts>/faults_<time>/logs/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_props.infra import InfrastructureManager
from pipeline_props.strategies import DataGenerationConfig, DataGenerator
from pipeline_props.testing.repros import write_repro

pytestmark = pytest.mark.integration

#: What must stay in the log: Spark/log4j and Python logging lines, JVM stack traces, pytest's own output.
NOISE = ("WARN", "INFO", "log4j", "Setting default log level", "Traceback", "\tat ", "test session starts")


def _cli(*args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("E2E_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "pipeline_props.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def assert_quiet(proc: subprocess.CompletedProcess[str], cwd: Path, folder_prefix: str) -> str:
    """Nothing on stderr, no noise on stdout, and a last line naming a log that holds the noise; its text."""
    assert proc.stderr.strip() == "", proc.stderr[-3000:]
    noisy = [line for line in proc.stdout.splitlines() if any(word in line for word in NOISE)]
    assert not noisy, proc.stdout
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("log: "), proc.stdout
    log = cwd / last.removeprefix("log: ")
    assert log.name == "pipeline-props.log" and log.parent.parent.name.startswith(folder_prefix), log
    return log.read_text(encoding="utf-8")


def test_replay_prints_the_verdict_and_the_log_path(infrastructure: InfrastructureManager, tmp_path: Path) -> None:
    files = list(DataGenerator(DataGenerationConfig(seed=5)).generate_test_scenario_data("happy_path", 20).files)
    folder = write_repro({"": files}, property_name="equals the oracle", divergence_text="", dataset_repr="",
                         root=tmp_path / "repros")
    proc = _cli("replay", str(folder), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "dataset: pipeline and oracle agree (1 file(s))" in proc.stdout
    text = assert_quiet(proc, tmp_path, "replay_")
    assert "INFO pipeline_props." in text  # the stages' own logs went to the file


BENCH = '''
import sys


def test_noisy(benchmark):
    print("WARN a library's warning on stderr", file=sys.stderr)
    benchmark.pedantic(sum, args=(range(100),), rounds=3, iterations=1)
'''


def test_bench_prints_the_results_and_the_log_path(tmp_path: Path) -> None:
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "test_noisy.py").write_text(BENCH, encoding="utf-8")
    proc = _cli("bench", "--select", "benchmarks/test_noisy.py", "--pytest-arg=-s",
                "--artifacts-dir", str(tmp_path / "artifacts"), cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "benchmarks/test_noisy.py::test_noisy" in proc.stdout and "median (s)" in proc.stdout
    assert "report: " in proc.stdout
    text = assert_quiet(proc, tmp_path, "run_")
    assert "test session starts" in text and "WARN a library's warning on stderr" in text


@pytest.mark.faults
def test_errors_prints_the_verdicts_and_the_log_path(infrastructure: InfrastructureManager, tmp_path: Path) -> None:
    proc = _cli("errors", "--scenario", "spark_driver_crash", "--rows", "20",
                "--artifacts-dir", str(tmp_path / "artifacts"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "PASSED recovered=True" in proc.stdout and "fault_report.json" in proc.stdout
    text = assert_quiet(proc, tmp_path, "faults_")
    assert "injected driver crash" in text  # the failed micro-batch's error, Spark's stack trace with it
