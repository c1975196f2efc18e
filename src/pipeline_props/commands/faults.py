"""``pipeline-props errors``: run the fault scenarios against the real services and report."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from pipeline_props.commands.common import VerboseOpt


def register(app: typer.Typer) -> None:
    """Add the ``errors`` command to the CLI app."""
    app.command("errors")(errors)


def errors(
    all_: Annotated[bool, typer.Option("--all", help="Run every registered scenario.")] = False,
    scenario: Annotated[Optional[list[str]], typer.Option("--scenario", "-s",
                                                          help="Scenario name (repeatable).")] = None,
    rows: Annotated[int, typer.Option("--rows", min=1, help="Records per produced file.")] = 60,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    list_: Annotated[bool, typer.Option("--list", help="List the scenarios and exit.")] = False,
    artifacts_dir: Annotated[Optional[Path], typer.Option("--artifacts-dir")] = None,
    config: Annotated[Optional[Path], typer.Option("--config")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Inject faults into the running pipeline, recover, and prove nothing was lost or duplicated.

    Exit 1 when any scenario loses, duplicates or invents records, does not
    recover, or ends with tables that differ from the oracle. Spark's, the
    libraries' and the INFO logs go to ``<artifacts>/faults_<time>/logs/`` (``-v``:
    to the terminal too); the terminal gets the verdicts, the reports and the log's path.
    """
    from pipeline_props.commands.common import console, quiet_command
    from pipeline_props.commands.common import load_cli_settings as _settings
    from pipeline_props.errors import UsageError
    from pipeline_props.faults.cluster_scenarios import (
        CLUSTER_SCENARIOS,
        cluster_is_up,
        run_cluster_scenarios,
    )
    from pipeline_props.faults.injector import ErrorInjector
    from pipeline_props.faults.report import write_fault_report
    from pipeline_props.faults.runner import run_scenario
    from pipeline_props.faults.scenarios import FAULT_SCENARIOS
    from pipeline_props.infra import InfrastructureManager

    if list_:
        for s in FAULT_SCENARIOS.values():
            console.print(f"{s.name:26} [{s.error_type}/{s.component}] {s.description}")
        raise typer.Exit(0)
    if all_ == bool(scenario):
        raise UsageError("give either --all or --scenario NAME")
    names = list(FAULT_SCENARIOS) if all_ else list(scenario or [])
    for n in names:
        if n not in FAULT_SCENARIOS:
            raise UsageError(f"unknown scenario {n!r}; known: {', '.join(FAULT_SCENARIOS)}")
    overrides = {"run": {"artifacts_dir": str(artifacts_dir)}} if artifacts_dir else None
    settings = _settings(config, None, overrides)
    on_cluster = [n for n in names if n in CLUSTER_SCENARIOS]
    names = [n for n in names if n not in CLUSTER_SCENARIOS]
    if on_cluster and all_ and not cluster_is_up(settings):
        console.print(f"skipped (no cluster up; `pipeline-props cluster up` first): {', '.join(on_cluster)}")
        on_cluster = []
    # Injected driver crashes are expected: py4j would print each one's traceback.
    logging.getLogger("py4j.clientserver").setLevel(logging.CRITICAL)
    folder = Path(settings.run.artifacts_dir) / f"faults_{time.strftime('%Y%m%dT%H%M%S')}"
    results: list = []

    def show(r: Any) -> None:
        if getattr(r, "skipped", ""):
            console.print(f"  [yellow]SKIPPED[/yellow] {r.skipped}", markup=True)
            return
        colour = "green" if r.passed else "red"
        console.print(f"  [{colour}]{'PASSED' if r.passed else 'FAILED'}[/{colour}] "
                      f"recovered={r.recovered} in {r.recovery_seconds:.1f} s, lost={r.records_lost}, "
                      f"duplicated={r.records_duplicated}, tables_equal={r.tables_equal}")
        if r.error:
            console.print(f"  {r.error}", markup=False)

    with quiet_command(folder, verbose=verbose):
        infra = InfrastructureManager(settings)
        try:
            if names:
                infra.start_services()
                infra.wait_for_readiness()
                with ErrorInjector(infra) as injector:
                    for n in names:
                        console.print(f"scenario {n} ...")
                        r = run_scenario(n, infra, injector=injector, rows=rows, seed=seed)
                        results.append(r)
                        show(r)
                infra.cleanup()
            if on_cluster:
                console.print(f"cluster scenarios {', '.join(on_cluster)} ...")
                results += run_cluster_scenarios(on_cluster, settings, rows=rows, seed=seed, on_result=show)
        finally:
            infra.cleanup()
            if results:
                path = write_fault_report(results, folder)
                console.print(f"report: {path}")
                from pipeline_props.reports.html import write_report as write_html

                console.print(f"report: {write_html(folder)}")
        console.print(_results_table(results))
    raise typer.Exit(0 if all(r.passed or getattr(r, "skipped", "") for r in results) else 1)


def _results_table(results: list[Any]) -> Any:
    from rich.table import Table

    table = Table(title="fault scenarios")
    for col in ("scenario", "recovered", "recovery s", "lost", "duplicated", "tables = oracle", "verdict"):
        table.add_column(col)
    for r in results:
        table.add_row(r.name, str(r.recovered), f"{r.recovery_seconds:.1f}", str(r.records_lost),
                      str(r.records_duplicated), str(r.tables_equal),
                      "SKIP" if getattr(r, "skipped", "") else "PASS" if r.passed else "FAIL")
    return table
