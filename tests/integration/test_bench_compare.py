"""`pipeline-props bench --compare REV` on two commits of a throwaway git repo with a tiny benchmark.

Commit 1 sleeps 20 ms per call, commit 2 sleeps 40 ms (the artificial slowdown).
Sleeping keeps the benchmark's time independent of the machine's CPU load, so
the verdicts are deterministic: compared with commit 1, commit 2 is flagged
(ratio ~2); compared with itself, nothing is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_props.errors import UsageError
from pipeline_props.perf.compare import compare_commits

pytestmark = pytest.mark.integration

BENCH = '''
import slowmod


def test_work(benchmark):
    benchmark.pedantic(slowmod.work, rounds=5, iterations=1)
'''
SELECTION = ("benchmarks/test_tiny.py",)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench-repo")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.email", "bench@example.invalid")
    _git(root, "config", "user.name", "bench")
    (root / "benchmarks").mkdir()
    (root / "benchmarks" / "test_tiny.py").write_text(BENCH)
    (root / "slowmod.py").write_text("import time\n\n\ndef work():\n    time.sleep(0.02)\n")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "fast")
    (root / "slowmod.py").write_text("import time\n\n\ndef work():\n    time.sleep(0.04)  # slower\n")
    _git(root, "commit", "-q", "-am", "slow")
    return root


def test_slowdown_is_flagged(repo: Path) -> None:
    result = compare_commits("HEAD~1", repo=repo, selection=SELECTION, rounds=2, threshold=0.10)
    (delta,) = result.deltas.values()
    assert len(delta.a) == len(delta.b) == 2  # A B A B
    assert delta.ratio == pytest.approx(2.0, rel=0.25)
    assert result.failed and result.regressions == [delta]
    assert "SLOWER" in result.render()
    # the worktrees are gone again
    assert _git(repo, "worktree", "list").count("\n") == 0


def test_same_commit_is_not_flagged(repo: Path) -> None:
    result = compare_commits("HEAD", repo=repo, selection=SELECTION, rounds=2, threshold=0.10)
    (delta,) = result.deltas.values()
    assert delta.ratio == pytest.approx(1.0, abs=0.10)
    assert not result.failed
    assert "no benchmark slower than the threshold" in result.render()


def test_the_cli_exits_1_and_writes_the_comparison(repo: Path, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    cmd = [sys.executable, "-m", "pipeline_props.cli", "bench", "--compare", "HEAD~1", "--rounds", "1",
           "--select", SELECTION[0], "--threshold", "0.10", "--artifacts-dir", str(artifacts)]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "SLOWER" in proc.stdout and "benchmarks/test_tiny.py::test_work" in proc.stdout
    doc = json.loads((artifacts / "bench" / "latest_compare.json").read_text())
    assert doc["failed"] and doc["benchmarks"][0]["ratio"] > 1.5


def test_bench_from_tree_runs_a_new_benchmark_against_the_old_code(repo: Path) -> None:
    new = repo / "benchmarks" / "test_new.py"  # in the working tree only, as a benchmark written today
    new.write_text(BENCH.replace("test_work", "test_new_work"))
    try:
        selection = ("benchmarks/test_new.py",)
        with pytest.raises(UsageError, match="benchmarks failed"):  # the old tree has no such file
            compare_commits("HEAD~1", repo=repo, selection=selection, rounds=1, threshold=0.10)
        both = compare_commits("HEAD~1", repo=repo, selection=selection, rounds=1, threshold=0.10,
                               bench_from_tree=True)
        (delta,) = both.deltas.values()
        assert delta.a and delta.b  # measured on both sides
        assert delta.ratio == pytest.approx(2.0, rel=0.25)  # the old code sleeps 20 ms, the tree 40 ms
    finally:
        new.unlink()
