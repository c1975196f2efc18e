"""The ``pipeline-props`` command line: the only module that prints for people.

Exit codes: 0 all held, 1 a divergence or failed validation, 2 usage, input or
infrastructure error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from pipeline_props.commands.common import (
    ConfigOpt,
    LogLevelOpt,
    VerboseOpt,
    console,
    err_console,
    load_cli_settings,
)
from pipeline_props.commands.common import print_status as _print_status
from pipeline_props.config import Settings
from pipeline_props.errors import EXIT_ERROR, PipelinePropsError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Property-based, differential and fault testing for sales data pipelines.")
services_app = typer.Typer(no_args_is_help=True, help="Start, stop and inspect the local services.")
app.add_typer(services_app, name="services")

_settings = load_cli_settings


@app.command()
def setup(
    config: ConfigOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print nothing when all is there.")] = False,
) -> None:
    """Fill the jar cache (Kafka broker, Spark connector, JDBC driver), the emulator venv; check the tools."""
    from pipeline_props.infra.fakesnow import ensure_venv
    from pipeline_props.infra.jars import ensure_jars
    from pipeline_props.infra.postgres import find_bindir

    settings = _settings(config)
    paths = ensure_jars(settings.infrastructure.home)
    bindir = find_bindir()
    emulator = ensure_venv(settings.infrastructure.home)
    if not quiet:
        for kind, path in paths.items():
            console.print(f"{kind} jars: {path}")
        console.print(f"postgres binaries: {bindir}")
        console.print(f"snowflake emulator (fakesnow) venv: {emulator}")


@services_app.command("up")
def services_up(config: ConfigOpt = None, log_level: LogLevelOpt = None,
                spark: Annotated[bool, typer.Option(help="Also start and probe Spark.")] = True,
                warehouse: Annotated[Optional[str], typer.Option(
                    "--warehouse", help="snowflake: also start the Snowflake emulator.")] = None) -> None:
    """Start Kafka and Postgres (a no-op when they already run), probe them, show their status."""
    from pipeline_props.infra import InfrastructureManager

    settings = _settings(config, log_level, {"run": {"warehouse": warehouse}} if warehouse else None)
    mgr = InfrastructureManager(settings)
    with console.status("starting services..."):
        mgr.start_services()
        statuses = mgr.wait_for_readiness(spark=spark)
    _print_status(statuses, mgr.backend)
    if spark:
        from pipeline_props.infra.spark import stop_spark_session

        stop_spark_session()


@services_app.command("down")
def services_down(config: ConfigOpt = None, log_level: LogLevelOpt = None) -> None:
    """Stop the local services that `services up` started (by pid) and remove their data."""
    from pipeline_props.infra import InfrastructureManager

    settings = _settings(config, log_level)
    mgr = InfrastructureManager.from_state(settings)
    if mgr.kafka is None:
        console.print("no local services on record")
        return
    mgr.cleanup(stop_all=True)
    console.print("services stopped")


@services_app.command("status")
def services_status(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show each service, its port, pid and health. Exit 2 when one is down."""
    from pipeline_props.infra import InfrastructureManager

    settings = _settings(config)
    if settings.infrastructure.backend == "external":
        mgr = InfrastructureManager(settings)
        mgr.start_services()
    else:
        mgr = InfrastructureManager.from_state(settings)
    statuses = mgr.status()
    if as_json:
        console.print_json(json.dumps(mgr.describe()))
    else:
        _print_status(statuses, mgr.backend)
    if not all(s.healthy for s in statuses):
        raise typer.Exit(EXIT_ERROR)


@services_app.command("compose")
def services_compose(
    config: ConfigOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o")] = Path("docker-compose.test.yml"),
) -> None:
    """Write docker-compose.test.yml for teams that prefer compose to the local backend."""
    from pipeline_props.infra import write_compose_file

    path = write_compose_file(output, _settings(config))
    console.print(f"wrote {path}")


@app.command()
def run(
    input_files: Annotated[Optional[list[Path]], typer.Option("--input", "-i", help="CSV file(s) to run.")] = None,
    files: Annotated[list[Path] | None, typer.Argument(
        help="More CSV files: `run --input a.csv b.csv` or `run a.csv b.csv`.", show_default=False)] = None,
    test: Annotated[Optional[str], typer.Option("--test", help="Generate a scenario (or 'all').")] = None,
    record_count: Annotated[int, typer.Option("--record-count", "-n", min=0)] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    artifacts_dir: Annotated[Optional[Path], typer.Option("--artifacts-dir")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the namespace for inspection.")] = False,
    warehouse: Annotated[Optional[str], typer.Option(
        "--warehouse", help="postgres (default), duckdb (embedded, dbt-duckdb) or snowflake "
                            "(dbt-snowflake: the local fakesnow emulator, or E2E_SNOWFLAKE_* for an account)."
    )] = None,
    dbt_mode: Annotated[Optional[str], typer.Option(
        "--dbt-mode", help="full (default: the marts rebuilt from scratch) or incremental (dbt incremental "
                           "models: delete+insert on postgres, merge on duckdb and snowflake).")] = None,
    batches: Annotated[Optional[int], typer.Option(
        "--batches", min=1, help="The dataset arrives in N batches (records dealt round robin); the marts are "
                                 "built and compared with the oracle after each.")] = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Logs (Spark, Kafka, dbt, Python) on the terminal instead of "
                                "artifacts/<run_id>/logs/ only.")] = False,
) -> None:
    """Run a dataset through Kafka -> Spark -> Postgres -> dbt and the DuckDB oracle, and compare.

    Exit 0 when everything held, 1 on a divergence or failed validation, 2 when
    the input is refused or the services cannot run.
    """
    from pipeline_props.errors import UsageError

    overrides: dict[str, dict[str, Any]] = {}
    if artifacts_dir is not None:
        overrides.setdefault("run", {})["artifacts_dir"] = str(artifacts_dir)
    if warehouse is not None:
        overrides.setdefault("run", {})["warehouse"] = warehouse
    if dbt_mode is not None:
        overrides.setdefault("run", {})["dbt_mode"] = dbt_mode
    if batches is not None:
        overrides.setdefault("run", {})["batches"] = batches
    settings = _settings(config, log_level, overrides)
    input_files = [*(input_files or []), *(files or [])]
    if bool(input_files) == bool(test):
        raise UsageError("give either --input FILE [...] or --test SCENARIO (one of them)")
    datasets: list[tuple[str | None, list[tuple[str, bytes]]]] = []
    if input_files:
        from pipeline_props.pipeline.ingest import read_dataset_files

        datasets.append((None, read_dataset_files(input_files)))
    else:
        from pipeline_props.strategies import SCENARIOS, DataGenerationConfig, DataGenerator

        names = list(SCENARIOS) if test == "all" else [test]
        gen = DataGenerator(DataGenerationConfig(seed=seed))
        for name in names:
            dataset = gen.generate_test_scenario_data(name, record_count)  # raises on unknown names
            datasets.append((name, list(dataset.files)))
    failed = _run_datasets(datasets, settings, seed=seed, keep=keep, verbose=verbose)
    raise typer.Exit(1 if failed else 0)


def _run_datasets(datasets: list[tuple[str | None, list[tuple[str, bytes]]]], settings: Settings,
                  *, seed: int, keep: bool, verbose: bool = False) -> int:
    from pipeline_props.cli_display import StageProgress, quiet_terminal
    from pipeline_props.infra import InfrastructureManager
    from pipeline_props.logcapture import LOG_NAME, copy_segment
    from pipeline_props.pipeline.ingest import check_headers
    from pipeline_props.runner import new_run_id, run_dataset

    for _, files in datasets:
        check_headers(files)  # refuse bad input before starting anything
    run_ids = [new_run_id() for _ in datasets]
    # One log for the whole command, in the first run's folder: the JVM keeps the descriptors it
    # started with. Each later run gets a copy of its own part.
    artifacts = Path(settings.run.artifacts_dir)
    log_path = artifacts / run_ids[0] / "logs" / LOG_NAME
    failed = 0
    infra = InfrastructureManager(settings)
    with quiet_terminal(log_path, [console, err_console], verbose=verbose, err_console=err_console) as capture, \
            StageProgress(err_console) as bar:
        try:
            services = bar.callback("")
            services("starting services", "start")
            infra.start_services()
            # Spark too (a real job runs): its JVM start belongs here, not in the first transform.
            infra.wait_for_readiness(spark=True)
            services("starting services", "done")
            for run_id, (scenario, files) in zip(run_ids, datasets):
                label = scenario or ", ".join(n for n, _ in files)
                start = capture.offset() if capture else 0
                try:
                    result = run_dataset(files, settings=settings, infra=infra, seed=seed, run_id=run_id,
                                         scenario=scenario, keep=keep, progress=bar.callback(label))
                finally:
                    if capture is not None and run_id != run_ids[0]:
                        copy_segment(log_path, start, artifacts / run_id / "logs" / LOG_NAME)
                bar.stop()
                _print_summary(result, label)
                failed += not result.success
        finally:
            infra.cleanup()
    return failed


def _print_summary(result: Any, label: str) -> None:
    from pipeline_props.contract import REASONS

    audit = result.audit
    table = Table(title=f"{label}  (run {result.run_id})", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in ("rows_read", "rows_accepted", "rows_duplicate", "rows_rejected"):
        table.add_row(key.replace("_", " "), str(audit.get(key, "-")))
    for reason in REASONS:
        n = audit.get(f"rejected_{reason.lower()}", 0)
        if n:
            table.add_row(f"  rejected {reason}", str(n))
    for stage, m in result.performance_metrics["stages"].items():
        rate = f"{m['rows_per_s']:,.0f} rows/s" if m["rows_per_s"] else "-"
        table.add_row(f"{stage}", f"{m['seconds']:.2f} s  {rate}")
    console.print(table)
    if result.schema_drift:
        console.print("schema drift (ignored columns): " +
                      ", ".join(f"{f}:{c}" for f, c in result.schema_drift))
    for stage in result.validation_summary.get("stage_results", []):
        for check in stage.get("checks", []):
            if not check["passed"]:
                console.print(f"[red]check failed[/red] {stage['stage']}.{check['check_name']}: "
                              f"{escape(json.dumps(check['details'], default=str))}")
    for s in result.steps:
        mark = "[green]held[/green]" if s["held"] else "[red]DIVERGED[/red]"
        audit = s["audit"]
        console.print(f"batch {s['step']}: {s['rows_arrived']} row(s) arrived, rows_read {audit.get('rows_read')}, "
                      f"accepted {audit.get('rows_accepted')}, duplicate {audit.get('rows_duplicate')}, "
                      f"rejected {audit.get('rows_rejected')}: {mark} against the oracle over the "
                      f"{s['step']} batch(es) arrived")
        for problem in (s.get("model_error"), s.get("divergence")):
            if problem:
                console.print(escape(problem))
    if result.divergence is not None and not result.divergence.ok:
        console.print(escape(result.divergence.render()))
    colour = "green" if result.success else "red"
    console.print(f"verdict: [{colour}]{result.verdict}[/{colour}]   artifacts: {result.artifacts_dir}")


@app.command()
def replay(
    folder: Annotated[Path, typer.Argument(help="A repro folder, e.g. artifacts/repros/<id>.")],
    warehouse: Annotated[Optional[str], typer.Option("--warehouse", help="postgres, duckdb or snowflake.")] = None,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Replay a shrunk failure: its datasets through the pipeline and the oracle again (exit 0/1/2)."""
    from pipeline_props.commands.replay import replay_cli

    raise typer.Exit(replay_cli(folder, warehouse, config, verbose=verbose))


from pipeline_props.commands.reports import register as _register_report_commands  # noqa: E402

_register_report_commands(app)  # report, bench, scaling

from pipeline_props.commands.faults import register as _register_fault_commands  # noqa: E402

_register_fault_commands(app)  # errors

from pipeline_props.commands.cluster import register as _register_cluster_commands  # noqa: E402

_register_cluster_commands(app)  # cluster up / down / status / env


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: maps PipelinePropsError to its exit code."""
    try:
        rc = app(args=argv, standalone_mode=False)
    except PipelinePropsError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return EXIT_ERROR
    except Exception as exc:
        # Usage errors of the (vendored) click: bad option, unknown command.
        if callable(getattr(exc, "show", None)) and hasattr(exc, "exit_code"):
            exc.show()
            return EXIT_ERROR
        raise
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
