"""``pipeline-props replay <folder>``: a shrunk failure's datasets through pipeline and oracle again."""

from __future__ import annotations

import time
from pathlib import Path

from rich.markup import escape

from pipeline_props.commands.common import console, load_cli_settings, quiet_command
from pipeline_props.errors import UsageError
from pipeline_props.pipeline.factory import WAREHOUSES
from pipeline_props.repro import replay

__all__ = ["replay_cli"]


def replay_cli(folder: Path, warehouse: str | None, config: Path | None, *, verbose: bool = False) -> int:
    """Body of ``pipeline-props replay`` (registered in cli.py): exit 0 agree, 1 differ, 2 error.

    Spark's, the libraries' and the INFO logs go to
    ``<artifacts>/replay_<time>/logs/`` (``verbose``: to the terminal too); the
    terminal gets each dataset's verdict and the log's path.
    """
    settings = load_cli_settings(config)
    if warehouse is not None and warehouse not in WAREHOUSES:
        raise UsageError(f"--warehouse {warehouse!r}: use {', '.join(WAREHOUSES)}")
    logs = Path(settings.run.artifacts_dir) / f"replay_{time.strftime('%Y%m%dT%H%M%S')}"
    with quiet_command(logs, verbose=verbose):
        return replay(folder, settings=settings, warehouse=warehouse,
                      echo=lambda text: console.print(escape(text), highlight=False))
