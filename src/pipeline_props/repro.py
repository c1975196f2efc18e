"""Replay a repro folder (``pipeline-props replay <folder>``): every dataset through pipeline and oracle.

The folders themselves are written and read by :mod:`pipeline_props.testing.repros`
(the property checks write them); this module re-exports that API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline_props.errors import EXIT_DIVERGENCE, EXIT_OK
from pipeline_props.pipeline.factory import make_pipeline
from pipeline_props.protocol import PipelineUnderTest
from pipeline_props.testing.repros import (
    REPRO_ROOT,
    Repro,
    example_snippet,
    read_repro,
    replay_command,
    write_repro,
)

__all__ = ["REPRO_ROOT", "Repro", "example_snippet", "make_pipeline", "read_repro", "replay", "replay_command",
           "write_repro"]

log = logging.getLogger(__name__)


def replay(
    folder: Path | str,
    *,
    settings: Any,
    infra: Any = None,
    pipeline: PipelineUnderTest | None = None,
    warehouse: str | None = None,
    echo: Callable[[str], object] = log.info,
) -> int:
    """Run every dataset of a repro folder through the pipeline and the oracle again.

    Returns 0 when all agree, 1 when one differs (the differing rows are
    echoed). Raises PipelinePropsError (exit 2) for services or input
    problems. ``warehouse`` ("postgres" or "duckdb") overrides
    ``settings.run.warehouse``; ``pipeline`` (tests) replaces both.
    """
    from pipeline_props.errors import DivergenceError
    from pipeline_props.testing.properties import check_against_oracle, fresh_namespace
    from pipeline_props.protocol import require

    if pipeline is not None:
        require(pipeline, PipelineUnderTest, "replay")
    repro = read_repro(folder)
    owns = infra is None and pipeline is None
    if owns:
        from pipeline_props.infra import InfrastructureManager

        infra = InfrastructureManager(settings).start_services()
        infra.wait_for_readiness()
    try:
        if pipeline is None:
            recorded = {"duckdb-warehouse": "duckdb", "snowflake-warehouse": "snowflake"}.get(repro.pipeline)
            pipeline = make_pipeline(infra, warehouse or recorded or settings.run.warehouse)
        failed = 0
        for label, files in repro.datasets.items():
            name = label or "dataset"
            try:
                check_against_oracle(pipeline, files, fresh_namespace("pp_r"), write_repro=False,
                                     property_name=repro.property_name)
            except DivergenceError as exc:
                failed += 1
                echo(f"{name}: DIVERGED\n{exc}")
            else:
                echo(f"{name}: pipeline and oracle agree ({len(files)} file(s))")
        return EXIT_DIVERGENCE if failed else EXIT_OK
    finally:
        if owns and infra is not None:
            infra.cleanup()
