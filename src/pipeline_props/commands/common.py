"""What every command shares: the consoles, the common options, settings with logging, a status table."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from pipeline_props.config import Settings, load_settings

__all__ = ["ConfigOpt", "LogLevelOpt", "console", "err_console", "load_cli_settings", "print_status"]

console = Console()
err_console = Console(stderr=True)

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="YAML settings file ($E2E_CONFIG).")]
LogLevelOpt = Annotated[Optional[str], typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")]


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
