"""``pipeline-props cluster up / down / status / env``: the 3-broker Kafka + Spark standalone topology."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

cluster_app = typer.Typer(no_args_is_help=True, help="Start, stop and inspect the cluster topology "
                          "(3 Kafka brokers, Spark master + 2 workers, Postgres) on this machine.")
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="YAML settings file ($E2E_CONFIG).")]


def register(app: typer.Typer) -> None:
    """Add the ``cluster`` command group to the CLI app."""
    app.add_typer(cluster_app, name="cluster")


@cluster_app.command("up")
def up(config: ConfigOpt = None) -> None:
    """Start the cluster (a no-op for the parts already running), probe every process, show them."""
    from pipeline_props.commands.common import print_status as _print_status, load_cli_settings as _settings, console
    from pipeline_props.infra.cluster import ClusterServices

    settings = _settings(config)
    t0 = time.monotonic()
    with console.status("starting the cluster (3 brokers, Spark master + 2 workers, Postgres)..."):
        svc = ClusterServices(settings).up()
    _print_status(svc.status(), "cluster")
    console.print(f"up in {time.monotonic() - t0:.0f} s; point pipeline-props at it with:")
    console.print(_exports(svc), markup=False, highlight=False, soft_wrap=True)


@cluster_app.command("down")
def down(config: ConfigOpt = None) -> None:
    """Stop every cluster process on record (by pid), check no port is left open, remove the data."""
    from pipeline_props.commands.common import load_cli_settings as _settings, console
    from pipeline_props.errors import EXIT_ERROR
    from pipeline_props.infra.cluster import ClusterServices

    svc = ClusterServices.from_state(_settings(config))
    if svc.kafka is None:
        console.print("no cluster on record")
        return
    busy = svc.down()
    if busy:
        console.print(f"[red]cluster stopped, but ports still open: {busy}[/red]")
        raise typer.Exit(EXIT_ERROR)
    console.print("cluster stopped: no process, no port left")


@cluster_app.command("status")
def status(config: ConfigOpt = None,
           as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Show every cluster process: port, pid, health. Exit 2 when one is down."""
    from dataclasses import asdict

    from pipeline_props.commands.common import print_status as _print_status, load_cli_settings as _settings, console
    from pipeline_props.errors import EXIT_ERROR
    from pipeline_props.infra.cluster import ClusterServices

    statuses = ClusterServices.from_state(_settings(config)).status()
    if as_json:
        console.print_json(json.dumps({"backend": "cluster", "services": [asdict(s) for s in statuses]}))
    else:
        _print_status(statuses, "cluster")
    if not all(s.healthy for s in statuses):
        raise typer.Exit(EXIT_ERROR)


@cluster_app.command("env")
def env(config: ConfigOpt = None) -> None:
    """Print the `export E2E_...` lines that point pipeline-props and pytest at the running cluster."""
    from pipeline_props.commands.common import load_cli_settings as _settings, console
    from pipeline_props.infra.cluster import ClusterServices

    svc = ClusterServices.from_state(_settings(config))
    console.print(_exports(svc), markup=False, highlight=False, soft_wrap=True)


def _exports(svc: object) -> str:
    import shlex

    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in svc.environment().items())  # type: ignore[attr-defined]
