"""What every command shares: the consoles, the common options, settings with logging, a status table."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline_props.config import Settings, load_settings

__all__ = ["ConfigOpt", "LogLevelOpt", "VerboseOpt", "console", "err_console", "load_cli_settings",
           "print_status", "quiet_command"]

console = Console()
err_console = Console(stderr=True)

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="YAML settings file ($E2E_CONFIG).")]
LogLevelOpt = Annotated[Optional[str], typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")]
VerboseOpt = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Logs (Spark, Kafka, dbt, Python) on the terminal instead of the log file only.")]


@contextmanager
def quiet_command(folder: Path, *, verbose: bool) -> Iterator[Path]:
    """Run a command's body with a quiet terminal: its noise goes to ``folder/logs/pipeline-props.log``.

    Spark's JVM, the libraries and Python logging write to that log (``verbose``
    keeps them on the terminal); what the command prints on :data:`console` and
    :data:`err_console` still reaches the terminal. Yields the log's path and
    prints it at the end; on an error its last lines are shown with it
    (cli_display.quiet_terminal).
    """
    from pipeline_props.cli_display import quiet_terminal
    from pipeline_props.logcapture import LOG_NAME

    log_path = folder / "logs" / LOG_NAME
    with quiet_terminal(log_path, [console, err_console], verbose=verbose, err_console=err_console):
        yield log_path
    console.print(f"log: {escape(str(log_path))}", highlight=False, soft_wrap=True)


def load_cli_settings(config: Path | None, log_level: str | None = None,
                      overrides: dict[str, dict[str, Any]] | None = None) -> Settings:
    """The settings for one command (defaults < YAML < environment < options), logging configured."""
    merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (overrides or {}).items()}
    if log_level:
        merged.setdefault("run", {})["log_level"] = log_level
    settings = load_settings(config, overrides=merged)
    logging.basicConfig(level=settings.run.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "urllib3", "snowflake.connector"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return settings


def print_status(statuses: list[Any], backend: str) -> None:
    """The services' table: name, port, pid, health, detail."""
    table = Table(title=f"services ({backend} backend)")
    for col in ("service", "port", "pid", "health", "detail"):
        table.add_column(col)
    for s in statuses:
        table.add_row(s.name, str(s.port or "-"), str(s.pid or "-"),
                      "[green]healthy[/green]" if s.healthy else "[red]down[/red]", s.detail)
    console.print(table)
