"""Replay a repro folder (``pipeline-props replay <folder>``): every dataset through pipeline and oracle.

The folders themselves are written and read by :mod:`pipeline_props.testing.repros`
(the property checks write them); this module re-exports that API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_props.errors import EXIT_DIVERGENCE, EXIT_OK
from pipeline_props.pipeline.factory import make_incremental_pipeline, make_pipeline
from pipeline_props.protocol import PipelineUnderTest, StagedPipeline
from pipeline_props.testing.arrivals import ArrivalPlan
from pipeline_props.testing.repros import (
    INCREMENTAL_PROPERTY,
    REPRO_ROOT,
    Repro,
    example_snippet,
    read_repro,
    replay_command,
    write_repro,
)

__all__ = ["REPRO_ROOT", "Repro", "arrival_plan_of", "example_snippet", "make_pipeline", "read_repro",
           "recorded_warehouse", "replay", "replay_command", "write_repro"]

if TYPE_CHECKING:
    from pipeline_props.config import Settings
    from pipeline_props.infra import InfrastructureManager

log = logging.getLogger(__name__)


def replay(
    folder: Path | str,
    *,
    settings: Settings | None,
    infra: InfrastructureManager | None = None,
    pipeline: PipelineUnderTest | None = None,
    warehouse: str | None = None,
    echo: Callable[[str], object] = log.info,
) -> int:
    """Run every dataset of a repro folder through the pipeline and the oracle again.

    Returns 0 when all agree, 1 when one differs (the differing rows are
    echoed). Raises PipelinePropsError (exit 2) for services or input
    problems. ``warehouse`` (postgres, duckdb or snowflake) overrides
    the warehouse of the pipeline that recorded the repro, which overrides
    ``settings.run.warehouse``; ``pipeline`` (tests) replaces them all. An
    incremental-marts repro replays through that warehouse's incremental
    pipeline (pipeline/factory.py).
    """
    from pipeline_props.errors import DivergenceError
    from pipeline_props.protocol import require
    from pipeline_props.testing.properties import check_against_oracle
    from pipeline_props.testing.runs import fresh_namespace

    if pipeline is not None:
        require(pipeline, PipelineUnderTest, "replay")
    repro = read_repro(folder)
    owns = infra is None and pipeline is None
    if owns:
        from pipeline_props.infra import InfrastructureManager

        infra = InfrastructureManager(settings).start_services()
        infra.wait_for_readiness()
    try:
        plan = arrival_plan_of(repro)
        if pipeline is None:
            chosen = warehouse or recorded_warehouse(repro) or settings.run.warehouse
            pipeline = make_pipeline(infra, chosen) if plan is None else make_incremental_pipeline(infra, chosen)
        if plan is not None:
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


def recorded_warehouse(repro: Repro) -> str | None:
    """The warehouse of the pipeline that wrote ``repro`` (its name: ``duckdb-warehouse (incremental marts)``...), or None."""
    for prefix, warehouse in (("duckdb-warehouse", "duckdb"), ("snowflake-warehouse", "snowflake")):
        if repro.pipeline.startswith(prefix):
            return warehouse
    return None


def arrival_plan_of(repro: Repro) -> ArrivalPlan | None:
    """The arrival batches of an incremental-marts repro (labels ``batch 1``, ``batch 2``...), else None."""
    if repro.property_name != INCREMENTAL_PROPERTY:
        return None
    try:
        order = sorted(repro.datasets, key=lambda label: int(label.split()[1]))
    except (IndexError, ValueError):
        from pipeline_props.errors import InputError

        raise InputError(repro.path / "repro.json", f"an incremental-marts repro whose datasets are not "
                         f"'batch N': {list(repro.datasets)}") from None
    return ArrivalPlan(batches=tuple(tuple(repro.datasets[label]) for label in order))


def _replay_arrivals(plan: ArrivalPlan, pipeline: StagedPipeline, echo: Callable[[str], object]) -> int:
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
