"""The ``report``, ``bench`` and ``scaling`` commands (registered on the CLI app by :func:`register`).

* ``pipeline-props report artifacts/<run_id>``: write report.html for a run.
* ``pipeline-props bench``: run the benchmarks and save the run
  (pytest-benchmark ``--benchmark-autosave`` into ``.benchmarks/``);
  ``--compare-saved [ID]`` compares with a saved run instead (pytest-benchmark's
  own ``--benchmark-compare``); ``--compare REV`` benchmarks REV and the working
  tree A B A B and exits 1 when a median is slower by more than ``--threshold``.
* ``pipeline-props scaling``: the pipeline (or one in-process component) at
  10k and 100k rows (``--with-1m`` adds 1M), rows/s per size, super-linear flags.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from pipeline_props.commands.common import (
    VerboseOpt,
    console,
    err_console,
    quiet_command,
)
from pipeline_props.errors import UsageError


def _repo_root() -> Path:
    proc = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if proc.returncode == 0:
        return Path(proc.stdout.strip())
    return Path.cwd()


def report(
    run_dir: Annotated[Path, typer.Argument(help="A run's artifacts folder, artifacts/<run_id>.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Default: <run_dir>/report.html.")] = None,
) -> None:
    """Write the run's self-contained HTML report (verdict, counts, rejects, diffs, performance)."""
    from pipeline_props.reports.html import write_report

    path = write_report(run_dir, output)
    console.print(f"wrote {path}")


def bench(
    compare: Annotated[Optional[str], typer.Option("--compare", help="Benchmark this git revision (A) against "
                                                   "the working tree (B), alternating A B A B.")] = None,
    against: Annotated[Optional[str], typer.Option("--against", help="B is this revision instead of the "
                                                   "working tree.")] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Fail when a median is slower by more "
                                             "than this fraction.")] = 0.10,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="A B pairs to run.")] = 2,
    select: Annotated[Optional[list[str]], typer.Option("--select", help="pytest paths or node ids "
                                                        "(repeatable); default: a quick reader micro-benchmark.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Every benchmark under benchmarks/ (slow).")] = False,
    compare_saved: Annotated[Optional[str], typer.Option("--compare-saved", help="Compare with a saved run "
                                                         "(its number, e.g. 0001, or 'latest').")] = None,
    artifacts_dir: Annotated[Path, typer.Option("--artifacts-dir")] = Path("artifacts"),
    pytest_args: Annotated[Optional[list[str]], typer.Option("--pytest-arg", help="Extra pytest argument "
                                                             "(repeatable).")] = None,
    bench_from_tree: Annotated[bool, typer.Option("--bench-from-tree", help="With --compare: run the working "
                                                  "tree's benchmarks/ against both revisions (a benchmark "
                                                  "newer than REV).")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run the benchmarks; with --compare REV, fail (exit 1) when the working tree is slower than REV.

    pytest's output and the logs go to ``<run folder>/logs/`` (``-v``: to the
    terminal too); the terminal gets the results, the reports and the log's path.
    """
    from pipeline_props.perf.compare import (
        DEFAULT_SELECTION,
        FULL_SELECTION,
        compare_commits,
        saved_run_args,
    )

    if bench_from_tree and compare is None:
        raise UsageError("--bench-from-tree goes with --compare REV")
    repo = _repo_root()
    selection = list(select or (FULL_SELECTION if full else DEFAULT_SELECTION))
    extra = list(pytest_args or [])
    from pipeline_props.reports.html import write_report

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    out = artifacts_dir / "bench"
    if compare is None:
        run_dir = out / f"run_{stamp}"
        run_dir.mkdir(parents=True, exist_ok=True)
        args = saved_run_args(storage=repo / ".benchmarks", threshold=threshold,
                              compare_with=None if compare_saved is None else
                              ("" if compare_saved == "latest" else compare_saved))
        cmd = [sys.executable, "-m", "pytest", *selection, "--benchmark-only", "-p", "no:cacheprovider", *args,
               f"--benchmark-json={(run_dir / 'bench_run.json').resolve()}", *extra]
        with quiet_command(run_dir, verbose=verbose) as log_path:
            console.print("$ " + " ".join(cmd), highlight=False, soft_wrap=True)
            code = subprocess.run(cmd, cwd=repo).returncode
            if (run_dir / "bench_run.json").is_file():
                console.print(_bench_table(json.loads((run_dir / "bench_run.json").read_text(encoding="utf-8"))))
                console.print(f"report: {write_report(run_dir)}")
            if code != 0 and not verbose:
                _show_tail(log_path, f"pytest exited {code}")
        raise typer.Exit(code)
    run_dir = out / f"compare_{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    with quiet_command(run_dir, verbose=verbose):
        result = compare_commits(compare, repo=repo, against=against, selection=selection, rounds=rounds,
                                 threshold=threshold, pytest_args=extra, bench_from_tree=bench_from_tree,
                                 progress=lambda msg: err_console.print(f"[dim]{escape(msg)}[/dim]"))
        console.print(escape(result.render()), highlight=False)
        doc = json.dumps(result.to_json(), indent=2)
        (run_dir / "bench_compare.json").write_text(doc, encoding="utf-8")
        (out / "latest_compare.json").write_text(doc, encoding="utf-8")
        console.print(f"wrote {out / 'latest_compare.json'}")
        console.print(f"report: {write_report(run_dir)}")
    raise typer.Exit(1 if result.failed else 0)


def _bench_table(run: dict[str, Any]) -> Table:
    """The benchmarks of a pytest-benchmark JSON run: min, median, max seconds, rounds, rows/s."""
    table = Table(title="benchmarks")
    for col in ("benchmark", "min (s)", "median (s)", "max (s)", "rounds", "rows/s"):
        table.add_column(col, justify="left" if col == "benchmark" else "right")
    for m in run.get("benchmarks") or []:
        st = m.get("stats") or {}
        rate = (m.get("extra_info") or {}).get("rows_per_s")
        table.add_row(str(m.get("fullname") or m.get("name")), *(f"{st.get(k, 0):.4f}" for k in ("min", "median", "max")),
                      str(st.get("rounds", "")), f"{rate:,.0f}" if rate is not None else "")
    return table


def _show_tail(log_path: Path, why: str, lines: int = 25) -> None:
    """The last lines of the log (pytest's failures, pytest-benchmark's regressions) after a failed run."""
    from pipeline_props.logcapture import tail

    console.print(f"[red]{escape(why)}[/red]; last {lines} lines of {escape(str(log_path))}:")
    for line in tail(log_path, lines):
        console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)


def scaling(
    component: Annotated[str, typer.Option("--component", help="pipeline (needs the services), reader, "
                                           "encode or oracle.")] = "pipeline",
    sizes: Annotated[Optional[str], typer.Option("--sizes", help="Comma-separated row counts "
                                                 "(default 10000,100000).")] = None,
    with_1m: Annotated[bool, typer.Option("--with-1m", help="Add 1,000,000 rows (slow here).")] = False,
    artifacts_dir: Annotated[Optional[Path], typer.Option("--artifacts-dir")] = None,
    config: Annotated[Optional[Path], typer.Option("--config")] = None,
) -> None:
    """Rows/s at each size; flags a stage whose time grows faster than linearly (exit 1 when one does)."""
    from pipeline_props.config import load_settings
    from pipeline_props.perf.monitor import PerformanceMonitor

    overrides: dict[str, dict[str, Any]] = {}
    if artifacts_dir is not None:
        overrides["run"] = {"artifacts_dir": str(artifacts_dir)}
    settings = load_settings(config, overrides=overrides)
    ns = [int(s) for s in sizes.split(",")] if sizes else [10_000, 100_000]
    if with_1m and 1_000_000 not in ns:
        ns.append(1_000_000)
    monitor = PerformanceMonitor()
    if component == "pipeline":
        from pipeline_props.infra import InfrastructureManager
        from pipeline_props.scaling import pipeline_scaling

        with InfrastructureManager(settings) as infra:
            result = pipeline_scaling(ns, settings=settings, infra=infra)
    else:
        result = monitor.run_throughput_benchmark(component, ns)
    root = Path(settings.run.artifacts_dir) / "scaling"
    root.mkdir(parents=True, exist_ok=True)
    doc = json.dumps(result, indent=2)
    (root / f"scaling_{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S')}.json").write_text(doc)
    (root / "latest.json").write_text(doc)
    analyses = result.get("stages") or {component: result}
    for name, a in analyses.items():
        pts = "  ".join(f"{p['rows']:,}: {p['rows_per_s']:,.0f} rows/s" for p in a["points"])
        flag = "  [red]faster than linear[/red]" if a["superlinear"] else ""
        console.print(f"{name:<10} {pts}  exponent {a['fitted_exponent']}{flag}")
    console.print(f"wrote {root / 'latest.json'}")
    raise typer.Exit(1 if result["superlinear"] else 0)


def register(app: typer.Typer) -> None:
    """Add ``report``, ``bench`` and ``scaling`` to the CLI app."""
    app.command("report")(report)
    app.command("bench")(bench)
    app.command("scaling")(scaling)


__all__ = ["bench", "register", "report", "scaling"]
