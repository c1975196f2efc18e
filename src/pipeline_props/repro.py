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
from pipeline_props.testing.arrivals import ArrivalPlan
from pipeline_props.testing.repros import (
    REPRO_ROOT,
    Repro,
    example_snippet,
    read_repro,
    replay_command,
    write_repro,
)

__all__ = ["REPRO_ROOT", "Repro", "arrival_plan_of", "example_snippet", "make_pipeline", "read_repro", "replay", "replay_command",
           "write_repro"]

log = logging.getLogger(__name__)
INCREMENTAL_PROPERTY = "incremental marts"


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
        if pipeline is None and arrival_plan_of(repro) is None:
            recorded = {"duckdb-warehouse": "duckdb", "snowflake-warehouse": "snowflake"}.get(repro.pipeline)
            pipeline = make_pipeline(infra, warehouse or recorded or settings.run.warehouse)
        plan = arrival_plan_of(repro)
        if plan is not None:
            if pipeline is None:
                from pipeline_props.pipeline.incremental import IncrementalPipeline

                pipeline = IncrementalPipeline(infra)
            return _replay_arrivals(plan, pipeline, echo)
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


def arrival_plan_of(repro: Repro) -> ArrivalPlan | None:
    """The arrival batches of an incremental-marts repro (labels ``batch 1``, ``batch 2``...), else None."""
    if repro.property_name != INCREMENTAL_PROPERTY:  # testing.incremental.PROPERTY (heavy to import)
        return None
    try:
        order = sorted(repro.datasets, key=lambda label: int(label.split()[1]))
    except (IndexError, ValueError):
        from pipeline_props.errors import InputError

        raise InputError(repro.path / "repro.json", f"an incremental-marts repro whose datasets are not "
                         f"'batch N': {list(repro.datasets)}") from None
    return ArrivalPlan(batches=tuple(tuple(repro.datasets[label]) for label in order))


def _replay_arrivals(plan: ArrivalPlan, pipeline: Any, echo: Callable[[str], object]) -> int:
    """The batches again, in their arrival order, through the incremental-marts check."""
    from pipeline_props.errors import DivergenceError
    from pipeline_props.testing.incremental import check_incremental

    try:
        steps = check_incremental(pipeline, plan.files, plan, write_repro=False)
    except DivergenceError as exc:
        echo(f"{len(plan.batches)} arrival batch(es): DIVERGED\n{exc}")
        return EXIT_DIVERGENCE
    echo(f"{len(steps)} arrival batch(es), in arrival order: pipeline and oracle agree after each")
    return EXIT_OK
