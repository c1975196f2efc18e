"""A/B benchmark comparison of two commits on the same machine (``pipeline-props bench --compare REV``).

Method: REV (the baseline, *A*) is checked out into a temporary ``git
worktree``; *B* is the working tree as it is (or ``--against REV2``, a second
worktree). pytest-benchmark runs the same selection in each tree with that
tree's ``src/`` first on PYTHONPATH, alternating A B A B ... ``rounds``
times, so slow drift of the machine's load hits both sides alike. Per
benchmark, each invocation gives a median; a side's figure is the median of
its invocations' medians and ``ratio = B / A``. The comparison fails when a
ratio exceeds ``1 + threshold``. Benchmarks that exist on one side only are
listed, not judged. ``bench_from_tree`` runs the working tree's benchmarks
against both revisions' code, for a benchmark newer than the baseline.

The default selection is quick (the reader's streaming micro-benchmark);
``--select benchmarks/`` (or ``--full``) runs every benchmark, which takes
minutes per side here.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline_props.errors import UsageError

#: Quick default: one reader micro-benchmark (~10 s per invocation on this machine).
DEFAULT_SELECTION: tuple[str, ...] = ("benchmarks/test_bench_reader.py::test_iter_records_streaming",)
#: Every benchmark (minutes per side).
FULL_SELECTION: tuple[str, ...] = ("benchmarks/",)


@dataclass
class BenchmarkDelta:
    """One benchmark's medians (seconds) per invocation on each side, and the verdict."""

    name: str
    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)

    @property
    def median_a(self) -> float | None:
        return statistics.median(self.a) if self.a else None

    @property
    def median_b(self) -> float | None:
        return statistics.median(self.b) if self.b else None

    @property
    def ratio(self) -> float | None:
        """B / A of the medians (above 1: B is slower)."""
        if self.median_a and self.median_b is not None:
            return self.median_b / self.median_a
        return None

    def regressed(self, threshold: float) -> bool:
        """B is slower than A by more than ``threshold`` (a fraction: 0.10 is 10 %)."""
        r = self.ratio
        return r is not None and r > 1.0 + threshold


@dataclass
class Comparison:
    """The outcome of an A/B comparison."""

    rev_a: str
    rev_b: str
    threshold: float
    rounds: int
    selection: list[str]
    deltas: dict[str, BenchmarkDelta]
    commit_a: str = ""
    commit_b: str = ""

    @property
    def regressions(self) -> list[BenchmarkDelta]:
        return [d for d in self.deltas.values() if d.regressed(self.threshold)]

    @property
    def failed(self) -> bool:
        return bool(self.regressions)

    def render(self) -> str:
        """A plain-text table: benchmark, median A, median B, ratio, verdict."""
        lines = [f"A = {self.rev_a} ({self.commit_a[:12]})   B = {self.rev_b} ({self.commit_b[:12]})   "
                 f"threshold {self.threshold:.0%}, {self.rounds} round(s) A B alternated"]
        width = max([len(n) for n in self.deltas] + [9])
        lines.append(f"{'benchmark':<{width}}  {'median A':>10}  {'median B':>10}  {'B/A':>6}  verdict")
        for name, d in sorted(self.deltas.items()):
            ma = f"{d.median_a:.4f}s" if d.median_a is not None else "-"
            mb = f"{d.median_b:.4f}s" if d.median_b is not None else "-"
            r = f"{d.ratio:.3f}" if d.ratio is not None else "-"
            verdict = ("SLOWER" if d.regressed(self.threshold) else
                       "only in B" if not d.a else "only in A" if not d.b else
                       f"faster: {1 / d.ratio:.2f}x" if d.ratio and d.ratio < 1.0 - self.threshold else "ok")
            lines.append(f"{name:<{width}}  {ma:>10}  {mb:>10}  {r:>6}  {verdict}")
        lines.append("FAILED: " + ", ".join(d.name for d in self.regressions) if self.failed
                     else "no benchmark slower than the threshold")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """For compare.json and the HTML report."""
        return {
            "generated_at": datetime.now(timezone.utc).isoformat(),
            "rev_a": self.rev_a, "rev_b": self.rev_b, "commit_a": self.commit_a, "commit_b": self.commit_b,
            "threshold": self.threshold, "rounds": self.rounds, "selection": self.selection,
            "failed": self.failed,
            "benchmarks": [{"name": d.name, "median_a": d.median_a, "median_b": d.median_b,
                            "ratio": d.ratio, "regressed": d.regressed(self.threshold),
                            "runs_a": d.a, "runs_b": d.b} for d in sorted(self.deltas.values(), key=lambda d: d.name)],
        }


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise UsageError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def run_benchmarks(
    tree: Path,
    selection: Sequence[str],
    json_out: Path,
    *,
    python: str = sys.executable,
    pytest_args: Sequence[str] = (),
    timeout: float = 3600,
) -> dict[str, float]:
    """Run pytest-benchmark on ``selection`` inside ``tree`` (its ``src/`` and root first on the path).

    Returns benchmark fullname -> median seconds. Raises UsageError when pytest fails.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), str(tree)] +
                                        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    cmd = [python, "-m", "pytest", *selection, "--benchmark-only", f"--benchmark-json={json_out}",
           "-p", "no:cacheprovider", "-q", "--no-header", *pytest_args]
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode not in (0, 5) or not json_out.exists():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise UsageError(f"benchmarks failed in {tree} (exit {proc.returncode}):\n{tail}")
    data = json.loads(json_out.read_text())
    return {b["fullname"]: float(b["stats"]["median"]) for b in data.get("benchmarks", [])}


def compare_commits(
    rev: str,
    *,
    repo: Path,
    against: str | None = None,
    selection: Sequence[str] = DEFAULT_SELECTION,
    rounds: int = 2,
    threshold: float = 0.10,
    python: str = sys.executable,
    pytest_args: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
    bench_from_tree: bool = False,
) -> Comparison:
    """Benchmark ``rev`` (A) and the working tree or ``against`` (B) alternately; see the module docstring.

    With ``bench_from_tree`` the working tree's ``benchmarks/`` replaces each
    revision's own, so a benchmark written today measures older code too (it
    must only use what both revisions offer).
    """
    if rounds < 1:
        raise UsageError(f"rounds must be at least 1, got {rounds}")
    if threshold < 0:
        raise UsageError(f"threshold must be >= 0, got {threshold}")
    repo = Path(_git(repo, "rev-parse", "--show-toplevel"))
    commit_a = _git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}")
    commit_b = _git(repo, "rev-parse", "--verify", f"{against}^{{commit}}") if against else _git(repo, "rev-parse", "HEAD")
    say = progress or (lambda _: None)
    tmp = Path(tempfile.mkdtemp(prefix="pp-bench-"))
    worktrees: list[Path] = []
    try:
        def worktree(commit: str, name: str) -> Path:
            path = tmp / name
            _git(repo, "worktree", "add", "--detach", str(path), commit)
            worktrees.append(path)
            if bench_from_tree:
                shutil.rmtree(path / "benchmarks", ignore_errors=True)
                shutil.copytree(repo / "benchmarks", path / "benchmarks",
                                ignore=shutil.ignore_patterns("__pycache__", ".benchmarks"))
            return path

        tree_a = worktree(commit_a, "a")
        tree_b = worktree(commit_b, "b") if against else repo
        deltas: dict[str, BenchmarkDelta] = {}
        for i in range(rounds):
            for side, tree in (("a", tree_a), ("b", tree_b)):
                say(f"round {i + 1}/{rounds}: {side.upper()} ({rev if side == 'a' else against or 'working tree'})")
                medians = run_benchmarks(tree, selection, tmp / f"{side}{i}.json", python=python,
                                         pytest_args=pytest_args)
                for name, median in medians.items():
                    getattr(deltas.setdefault(name, BenchmarkDelta(name)), side).append(median)
        return Comparison(rev_a=rev, rev_b=against or "working tree", threshold=threshold, rounds=rounds,
                          selection=list(selection), deltas=deltas, commit_a=commit_a, commit_b=commit_b)
    finally:
        for path in worktrees:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(path)],
                           capture_output=True)
        subprocess.run(["git", "-C", str(repo), "worktree", "prune"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def saved_run_args(
    *, storage: Path, compare_with: str | None = None, threshold: float = 0.10, autosave: bool = True
) -> list[str]:
    """pytest-benchmark options to save a run under ``storage`` and, optionally, compare with a saved one.

    ``compare_with`` is a saved run's number or id prefix (``0001``), or ""
    for the latest; pytest-benchmark then fails the session when a median is
    slower by more than ``threshold``.
    """
    args = [f"--benchmark-storage=file://{storage}"]
    if autosave:
        args.append("--benchmark-autosave")
    if compare_with is not None:
        args.append(f"--benchmark-compare={compare_with}" if compare_with else "--benchmark-compare")
        args.append(f"--benchmark-compare-fail=median:{threshold * 100:g}%")
    return args


__all__ = ["BenchmarkDelta", "Comparison", "DEFAULT_SELECTION", "FULL_SELECTION", "compare_commits",
           "run_benchmarks", "saved_run_args"]
